/**
 * Annotator worklist: cases assigned to me, every ready case of my projects, and the targets of the
 * projects' current (open) rounds with their status.
 */
import type { App, View } from "../app";
import type { Case, Project, Round, Target } from "../types";
import { errorText, h, statusBadge } from "../ui/dom";

export async function worklistView(root: HTMLElement, app: App): Promise<View> {
  const api = app.services.api;
  root.append(h("h1", {}, "Worklist"));
  const body = h("div", { class: "worklist" });
  root.append(body);
  let projects: Project[] = [];
  let cases: Case[] = [];
  let mine: Case[] = [];
  let reviewing: Case[] = [];
  try {
    [projects, cases, mine, reviewing] = await Promise.all([
      api.list<Project>("/api/projects/"),
      api.list<Case>("/api/cases/"),
      api.list<Case>("/api/cases/", { mine: 1 }),
      api.list<Case>("/api/cases/", { reviewing: 1 }),
    ]);
  } catch (err) {
    body.append(h("p", { class: "error" }, errorText(err)));
    return { destroy() {} };
  }
  if (!projects.length) {
    body.append(h("p", {}, "You are not a member of any project yet. ", h("a", { href: "#/manage" }, "Create one")));
  }
  const caseRow = (c: Case) =>
    h(
      "tr",
      { "data-testid": `case-row-${c.id}` },
      h("td", {}, c.status === "ready" ? h("a", { href: `#/cases/${c.id}`, class: "case-link" }, c.name) : c.name),
      h("td", {}, projects.find((p) => p.id === c.project)?.name ?? String(c.project)),
      h("td", {}, `${c.kind} ${c.modality}`),
      h("td", {}, c.shape?.join("×") ?? ""),
      h("td", {}, statusBadge(c.status), c.error ? h("span", { class: "error" }, ` ${c.error}`) : null),
      h("td", {}, String(c.targets_count ?? "")),
    );
  const table = (rows: Case[], testid: string) =>
    rows.length
      ? h(
          "table",
          { class: "table", "data-testid": testid },
          h("thead", {}, h("tr", {}, ...["Case", "Project", "Kind", "Shape", "Status", "Targets"].map((t) => h("th", {}, t)))),
          h("tbody", {}, ...rows.map(caseRow)),
        )
      : h("p", { class: "muted" }, "Nothing here.");
  // my own work first: cases I annotate, then cases I review, then everything else
  if (projects.length)
    body.append(h("p", { class: "muted", "data-testid": "my-roles" }, "Your role: ", projects.map((p) => `${p.name}: ${p.my_role ?? "—"}`).join(" · ")));
  body.append(h("h2", {}, "Assigned to me"), table(mine, "mine-cases"));
  if (reviewing.length) body.append(h("h2", {}, "To review"), table(reviewing, "reviewing-cases"));
  body.append(h("h2", {}, "All cases in my projects"), table(cases, "all-cases"));

  // targets of the current round, per project
  const roundSection = h("section", {}, h("h2", {}, "Targets in the current round"));
  body.append(roundSection);
  for (const p of projects) {
    try {
      const rounds = await api.list<Round>("/api/rounds/", { project: p.id });
      const open = rounds.find((r) => r.status === "open");
      if (!open) {
        roundSection.append(h("p", { class: "muted" }, `${p.name}: no open round.`));
        continue;
      }
      const targets = await api.list<Target>("/api/targets/", { project: p.id, round: open.id });
      roundSection.append(
        h("h3", {}, `${p.name} — round ${open.number}${open.is_manual_baseline ? " (manual baseline)" : ""}`),
        targets.length
          ? h(
              "table",
              { class: "table" },
              h("thead", {}, h("tr", {}, ...["Target", "Case", "Status", "Mask"].map((t) => h("th", {}, t)))),
              h(
                "tbody",
                {},
                ...targets.map((t) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("a", { href: `#/cases/${t.case}?target=${t.id}` }, `${t.label} #${t.id}`)),
                    h("td", {}, cases.find((c) => c.id === t.case)?.name ?? String(t.case)),
                    h("td", {}, statusBadge(t.status)),
                    h("td", {}, t.current_revision ? `rev ${t.current_revision.number} (${t.current_revision.source}, ${t.current_revision.voxel_count} vox)` : "—"),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No targets yet: open a case and draw a box."),
      );
    } catch (err) {
      roundSection.append(h("p", { class: "error" }, `${p.name}: ${errorText(err)}`));
    }
  }
  return { destroy() {} };
}
