/** Reviewer queue: submitted targets of projects where I am reviewer or above; opens the case view. */
import { roleAtLeast, type App, type View } from "../app";
import type { Case, Project, Target } from "../types";
import { errorText, fmtDate, h, statusBadge } from "../ui/dom";

export async function reviewView(root: HTMLElement, app: App): Promise<View> {
  const api = app.services.api;
  root.append(h("h1", {}, "Review queue"));
  try {
    const projects = (await api.list<Project>("/api/projects/")).filter((p) => roleAtLeast(app.roleIn(p.id), "reviewer"));
    if (!projects.length) root.append(h("p", { class: "muted" }, "You review no project."));
    for (const p of projects) {
      const [targets, cases] = await Promise.all([
        api.list<Target & { updated_at?: string }>("/api/targets/", { project: p.id, status: "submitted" }),
        api.list<Case>("/api/cases/", { project: p.id }),
      ]);
      // my own work first: targets of the cases assigned to me for review
      const mineFirst = (t: Target) => (cases.find((c) => c.id === t.case)?.reviewer === app.me?.id ? 0 : 1);
      targets.sort((a, b) => mineFirst(a) - mineFirst(b));
      root.append(
        h("h2", {}, p.name),
        targets.length
          ? h(
              "table",
              { class: "table", "data-testid": `review-queue-${p.id}` },
              h("thead", {}, h("tr", {}, ...["Target", "Case", "Status", "Mask", "Submitted"].map((t) => h("th", {}, t)))),
              h(
                "tbody",
                {},
                ...targets.map((t) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("a", { href: `#/cases/${t.case}?target=${t.id}`, "data-testid": `review-target-${t.id}` }, `${t.label} #${t.id}`)),
                    h("td", {}, cases.find((c) => c.id === t.case)?.name ?? String(t.case)),
                    h("td", {}, statusBadge(t.status)),
                    h("td", {}, t.current_revision ? `rev ${t.current_revision.number} (${t.current_revision.source})` : "—"),
                    h("td", {}, fmtDate(t.updated_at)),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "Nothing waiting for review."),
      );
    }
  } catch (err) {
    root.append(h("p", { class: "error" }, errorText(err)));
  }
  return { destroy() {} };
}
