/**
 * Manager pages: projects (create), and per project: members and roles, case upload by drag and
 * drop with upload progress (server errors shown as they are), rounds open/close, and progress
 * (targets per status per round).
 */
import { roleAtLeast, type App, type View } from "../app";
import type { ApiClient } from "../services/api";
import type { Case, Membership, Project, Role, Round, Target } from "../types";
import { append, clear, errorText, h, statusBadge, toast } from "../ui/dom";
import { exportSection } from "./exportPanel";
import { workersPanel } from "./workersPanel";

const ROLES: Role[] = ["annotator", "reviewer", "manager", "admin"];
const MODALITIES = ["CT", "MR", "PT", "US", "ES"];
const STATUSES = ["draft", "proposed", "correcting", "submitted", "accepted", "rejected"];

export async function manageView(root: HTMLElement, app: App, params: URLSearchParams): Promise<View> {
  const api = app.services.api;
  const projects = await api.list<Project>("/api/projects/");
  const selected = projects.find((p) => p.id === Number(params.get("project"))) ?? null;
  root.append(h("h1", {}, "Projects"));
  // managers and admins see whether any worker listens (propagation, ingest and training need one)
  const workers = roleAtLeast(app.topRole, "manager") ? workersPanel(api) : null;
  if (workers) root.append(workers.el);
  const list = h(
    "ul",
    { class: "projects", "data-testid": "projects" },
    ...projects.map((p) => h("li", { class: p.id === selected?.id ? "selected" : "" }, h("a", { href: `#/manage?project=${p.id}` }, p.name), ` · ${p.modality} · `, h("span", { class: "muted", "data-testid": `my-role-${p.id}` }, `you: ${p.my_role ?? "—"}`))),
  );
  const name = h("input", { placeholder: "New project name", "data-testid": "project-name" });
  const modality = h("select", {}, ...MODALITIES.map((m) => h("option", { value: m }, m)));
  const labels = h("input", { placeholder: "labels, comma separated (e.g. lesion, liver)", value: "lesion" });
  const createForm = h("form", { class: "row" }, name, modality, labels, h("button", { type: "submit" }, "Create project"));
  createForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const palette = ["#ff4d4f", "#52c41a", "#1890ff", "#faad14", "#eb2f96", "#13c2c2"];
      const p = await api.post<Project>("/api/projects/", {
        name: name.value,
        modality: modality.value,
        labels: labels.value.split(",").map((s) => s.trim()).filter(Boolean).map((n, i) => ({ name: n, color: palette[i % palette.length] })),
      });
      await app.refreshMe();
      app.go(`#/manage?project=${p.id}`);
    } catch (err) {
      toast(errorText(err), "error");
    }
  });
  const mayCreate = !!app.me?.is_superuser || !!app.me?.can_create_projects;
  const createPart = mayCreate ? createForm : h("p", { class: "muted", "data-testid": "no-create" }, "Creating projects is limited to staff and the users they allow.");
  root.append(h("div", { class: "manage" }, h("section", { class: "card" }, list, createPart), selected ? await projectPanel(api, app, selected) : h("p", { class: "muted" }, "Pick a project.")));
  return {
    destroy() {
      workers?.destroy();
    },
  };
}

async function projectPanel(api: ApiClient, app: App, p: Project): Promise<HTMLElement> {
  const canManage = roleAtLeast(app.roleIn(p.id), "manager");
  const panel = h("div", { class: "project-panel" }, h("h2", {}, p.name), p.description ? h("p", {}, p.description) : null);
  if (canManage) panel.append(h("p", {}, h("a", { href: `#/pacs?project=${p.id}`, "data-testid": "pacs-tab" }, "PACS: find and import studies")));
  const reload = () => app.go(`#/manage?project=${p.id}&t=${Date.now()}`);

  // members
  const members = await api.list<Membership>("/api/memberships/", { project: p.id });
  const membersSection = h("section", { class: "card" }, h("h3", {}, "Members"));
  const table = h("table", { class: "table", "data-testid": "members" });
  for (const m of members) {
    const sel = h("select", { disabled: !canManage }, ...ROLES.map((r) => h("option", { value: r, selected: r === m.role }, r)));
    sel.addEventListener("change", async () => {
      try {
        await api.patch(`/api/memberships/${m.id}/`, { role: sel.value });
        toast(`${m.username} is now ${sel.value}.`, "ok");
      } catch (err) {
        toast(errorText(err), "error");
      }
    });
    table.append(h("tr", {}, h("td", {}, m.username), h("td", {}, sel), h("td", {}, canManage ? h("button", { class: "link", onclick: async () => api.delete(`/api/memberships/${m.id}/`).then(reload, (e) => toast(errorText(e), "error")) }, "Remove") : "")));
  }
  membersSection.append(table);
  if (canManage) {
    const user = h("input", { placeholder: "username" });
    const role = h("select", {}, ...ROLES.map((r) => h("option", { value: r }, r)));
    const add = h("form", { class: "row" }, user, role, h("button", { type: "submit" }, "Add member"));
    add.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.post("/api/memberships/", { project: p.id, username: user.value, role: role.value });
        reload();
      } catch (err) {
        toast(errorText(err), "error");
      }
    });
    membersSection.append(add);
  }
  panel.append(membersSection);

  // upload
  if (canManage) panel.append(uploadSection(api, p, reload));

  // rounds + progress
  const [rounds, targets, cases] = await Promise.all([
    api.list<Round>("/api/rounds/", { project: p.id }),
    api.list<Target>("/api/targets/", { project: p.id }),
    api.list<Case>("/api/cases/", { project: p.id }),
  ]);
  const roundsSection = h("section", { class: "card" }, h("h3", {}, "Rounds and progress"));
  if (canManage) roundsSection.append(h("p", {}, h("a", { href: `#/rounds?project=${p.id}`, "data-testid": "rounds-tab" }, "Rounds and training"), " · ", h("a", { href: `#/registry?project=${p.id}` }, "Model registry")));
  const progress = h("table", { class: "table", "data-testid": "progress" }, h("thead", {}, h("tr", {}, h("th", {}, "Round"), h("th", {}, "Status"), ...STATUSES.map((s) => h("th", {}, s)), h("th", {}, "total"), h("th", {}, ""))));
  const rows = [...rounds.map((r) => ({ id: r.id as number | null, r })), { id: null, r: null as Round | null }];
  for (const { id, r } of rows) {
    const inRound = targets.filter((t) => t.round === id);
    if (!r && !inRound.length) continue;
    const closeBtn = r && r.status === "open" && canManage ? h("button", { onclick: () => api.post(`/api/rounds/${r.id}/close/`).then(reload, (e) => toast(errorText(e), "error")) }, "Close round") : null;
    progress.append(
      h(
        "tr",
        {},
        h("td", {}, r ? `Round ${r.number}${r.is_manual_baseline ? " (manual baseline)" : ""}` : "No round"),
        h("td", {}, r ? statusBadge(r.status) : ""),
        ...STATUSES.map((s) => h("td", {}, String(inRound.filter((t) => t.status === s).length))),
        h("td", {}, String(inRound.length)),
        h("td", {}, closeBtn ?? ""),
      ),
    );
  }
  roundsSection.append(progress);
  if (canManage && !rounds.some((r) => r.status === "open")) {
    const baseline = h("input", { type: "checkbox" });
    roundsSection.append(
      h("div", { class: "row" },
        h("label", { class: "inline" }, baseline, "manual baseline (no model help)"),
        h("button", { onclick: () => api.post("/api/rounds/", { project: p.id, is_manual_baseline: baseline.checked }).then(reload, (e) => toast(errorText(e), "error")) }, "Open next round"),
      ),
    );
  }
  panel.append(roundsSection);

  // cases
  const casesSection = h("section", { class: "card" }, h("h3", {}, `Cases (${cases.length})`));
  const caseTable = h("table", { class: "table", "data-testid": "cases" });
  const picked = new Set<number>();
  caseTable.append(h("thead", {}, h("tr", {}, ...[canManage ? "" : null, "Case", "Kind", "Status", "Targets", "Annotator", "Reviewer"].filter((x) => x !== null).map((t) => h("th", {}, t as string)))));
  for (const c of cases) {
    const pick = canManage ? h("input", { type: "checkbox", "data-testid": `pick-case-${c.id}`, onchange: (e: Event) => ((e.target as HTMLInputElement).checked ? picked.add(c.id) : picked.delete(c.id)) }) : null;
    append(
      caseTable,
      h("tr", { "data-testid": `case-${c.id}` },
        pick ? h("td", {}, pick) : null,
        h("td", {}, c.status === "ready" ? h("a", { href: `#/cases/${c.id}` }, c.name) : c.name),
        h("td", {}, `${c.kind} ${c.modality}`),
        h("td", {}, statusBadge(c.status), c.error ? h("div", { class: "error" }, c.error) : ""),
        h("td", {}, String(c.targets_count ?? "")),
        h("td", { "data-testid": `assignee-${c.id}` }, c.assignee_username ?? "—"),
        h("td", { "data-testid": `reviewer-${c.id}` }, c.reviewer_username ?? "—"),
      ),
    );
  }
  casesSection.append(caseTable);
  if (canManage) casesSection.append(assignForm(api, p, members, picked, reload));
  panel.append(casesSection);
  if (canManage) panel.append(exportSection(api, p, cases).element);
  return panel;
}

/** Assign the picked cases to an annotator and/or a reviewer, and the project's edit policy. */
function assignForm(api: ApiClient, p: Project, members: Membership[], picked: Set<number>, reload: () => void): HTMLElement {
  const options = (least: Role) => [
    h("option", { value: "keep" }, "(keep)"),
    h("option", { value: "none" }, "— nobody —"),
    ...members.filter((m) => roleAtLeast(m.role, least)).map((m) => h("option", { value: String(m.user) }, `${m.username} (${m.role})`)),
  ];
  const annotator = h("select", { "data-testid": "assign-annotator" }, ...options("annotator"));
  const reviewer = h("select", { "data-testid": "assign-reviewer" }, ...options("reviewer"));
  const form = h("form", { class: "row" }, "Assign selected to ", annotator, " reviewed by ", reviewer, h("button", { type: "submit", "data-testid": "assign" }, "Assign"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!picked.size) return toast("Tick the cases to assign first.", "error");
    const body: Record<string, unknown> = { project: p.id, cases: [...picked] };
    for (const [key, sel] of [["annotator", annotator], ["reviewer", reviewer]] as const) {
      if (sel.value !== "keep") body[key] = sel.value === "none" ? null : Number(sel.value);
    }
    try {
      const res = await api.post<{ updated: number }>("/api/cases/assign/", body);
      toast(`${res.updated} case(s) assigned.`, "ok");
      reload();
    } catch (err) {
      toast(errorText(err), "error");
    }
  });
  const open = h("input", { type: "checkbox", "data-testid": "edit-unassigned", checked: !!p.settings.annotators_edit_unassigned });
  open.addEventListener("change", async () => {
    try {
      await api.patch(`/api/projects/${p.id}/`, { settings: { ...p.settings, annotators_edit_unassigned: open.checked } });
      p.settings = { ...p.settings, annotators_edit_unassigned: open.checked };
      toast(open.checked ? "Annotators may now edit any target of this project." : "Annotators edit only the targets assigned to them.", "ok");
    } catch (err) {
      toast(errorText(err), "error");
    }
  });
  return h("div", {}, form, h("label", { class: "inline" }, open, "Annotators may edit targets not assigned to them"));
}

function uploadSection(api: ApiClient, p: Project, reload: () => void): HTMLElement {
  const section = h("section", { class: "card" }, h("h3", {}, "Upload cases"));
  const zone = h("div", { class: "dropzone", "data-testid": "dropzone", tabindex: "0" }, "Drop NIfTI / NRRD / MHA / DICOM (zip) / MP4 files here, or click to choose");
  const input = h("input", { type: "file", multiple: true, style: { display: "none" } });
  const status = h("div", { class: "uploads" });
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer?.files.length) start(e.dataTransfer.files);
  });
  input.addEventListener("change", () => input.files && start(input.files));

  function start(files: FileList): void {
    const form = new FormData();
    form.set("project", String(p.id));
    for (const f of Array.from(files)) form.append("file", f, f.name);
    const bar = h("div", { class: "bar" });
    const text = h("span", { class: "text" }, `Uploading ${files.length} file(s)…`);
    const row = h("div", { class: "progress", "data-testid": "upload-progress" }, bar, text);
    clear(status);
    status.append(row);
    const { promise } = api.upload<Case[] | Case>("/api/cases/upload/", form, (f) => {
      bar.style.width = `${Math.round(f * 100)}%`;
      text.textContent = `Uploading… ${Math.round(f * 100)}%`;
    });
    promise.then(
      (res) => {
        const created = Array.isArray(res) ? res : [res];
        bar.style.width = "100%";
        text.textContent = `Uploaded: ${created.map((c) => `${c.name} (${c.status})`).join(", ")}. Ingesting in the background.`;
        setTimeout(reload, 1500);
      },
      (err) => {
        row.classList.add("failed");
        text.textContent = errorText(err); // the server's message as it is
      },
    );
  }
  section.append(zone, input, status);
  return section;
}
