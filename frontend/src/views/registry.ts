/**
 * The model registry (#/registry?project=1&a=<id>&b=<id>): every model version as a lineage tree
 * with its provenance (round, snapshot hash, config, code version, checksum) and held-out metrics;
 * two versions side by side with per-target Dice differences (table and ECharts bars); promote and
 * roll back with a confirmation and a reason (admins; the activation log below says who and why);
 * upload of a checkpoint file (verified by a worker's strict load before it can be used).
 */
import { roleAtLeast, type App, type View } from "../app";
import {
  diffSummary,
  diffTargets,
  fmt,
  heldOut,
  lineage,
  versionActions,
  type ModelActivation,
  type ModelVersion,
  type TrainingRun,
} from "../services/learning";
import type { Membership, Project } from "../types";
import { mountChart, type Chart } from "../ui/charts";
import { errorText, fmtDate, h, statusBadge, toast } from "../ui/dom";
import { diffBars } from "./learningCharts";
import { managedProjects, projectPicker } from "./rounds";

export async function registryView(root: HTMLElement, app: App, params: URLSearchParams): Promise<View> {
  const api = app.services.api;
  const charts: Chart[] = [];
  const view: View = { destroy: () => charts.forEach((c) => c.destroy()) };
  root.append(h("h1", {}, "Model registry"));
  const projects = await managedProjects(app);
  if (!projects.length) {
    root.append(h("p", { class: "muted" }, "You manage no project: the registry is for project managers and admins."));
    return view;
  }
  const project: Project = projects.find((p) => p.id === Number(params.get("project"))) ?? projects[0];
  const isAdmin = roleAtLeast(app.roleIn(project.id), "admin");
  const here = (extra: Record<string, string | number> = {}) => {
    const q = new URLSearchParams({ project: String(project.id), ...(params.get("a") ? { a: params.get("a")! } : {}), ...(params.get("b") ? { b: params.get("b")! } : {}) });
    for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
    return `#/registry?${q}`;
  };
  const reload = () => app.go(here({ t: Date.now() }));
  const [versions, activations, runs, members] = await Promise.all([
    api.list<ModelVersion>("/api/model-versions/", { project: project.id }),
    api.list<ModelActivation>("/api/model-activations/", { project: project.id, ordering: "-created_at" }),
    api.list<TrainingRun>("/api/training-runs/", { project: project.id }),
    api.list<Membership>("/api/memberships/", { project: project.id }),
  ]);
  const who = (user: number | null) => (user === null ? "the gate" : members.find((m) => m.user === user)?.username ?? `user ${user}`);
  const byId = new Map(versions.map((v) => [v.id, v]));
  const name = (id: number | null) => (id === null ? "—" : byId.get(id)?.name ?? `#${id}`);
  root.append(h("div", { class: "row" }, "Project ", projectPicker(app, projects, project, "registry"), " · ", h("a", { href: `#/rounds?project=${project.id}` }, "Rounds and training")));

  // --- lineage
  const table = h("table", { class: "table", "data-testid": "versions" });
  table.append(h("thead", {}, h("tr", {}, ...["Version", "Status", "Round", "Held-out Dice", "Parent's", "Config", "Snapshot", "Code", "sha256", "Created", ""].map((t) => h("th", {}, t)))));
  const confirmBox = h("div", { "data-testid": "confirm-box" });
  for (const { version: v, depth } of lineage(versions)) {
    const mine = heldOut(v, versions);
    const parents = v.metrics?.held_out?.parent;
    const acts = versionActions(v, activations);
    const run = runs.find((r) => r.id === v.training_run);
    table.append(
      h("tr", { "data-testid": `version-${v.id}`, "data-name": v.name },
        h("td", { style: { paddingLeft: `${0.5 + depth * 1.4}em` } }, depth ? "└ " : "", h("strong", {}, v.name), run ? h("div", { class: "muted" }, h("a", { href: `#/training-runs/${run.id}` }, `run ${run.id}`)) : null),
        h("td", { title: v.status_reason }, statusBadge(v.status), v.status_reason ? h("div", { class: "muted small", "data-testid": `reason-${v.id}` }, v.status_reason) : null),
        h("td", {}, v.round ? String(v.round) : "—"),
        h("td", { "data-testid": `dice-${v.id}` }, fmt(mine?.mean_dice)),
        h("td", {}, fmt(parents?.mean_dice)),
        h("td", {}, v.config_name),
        h("td", { title: v.snapshot_hash }, v.snapshot_hash ? v.snapshot_hash.slice(0, 10) : "—"),
        h("td", {}, v.code_version || "—"),
        h("td", { title: v.sha256 }, v.sha256 ? v.sha256.slice(0, 10) : "—"),
        h("td", {}, fmtDate(v.created_at)),
        h("td", {},
          isAdmin && acts.promote ? h("button", { "data-testid": `promote-${v.id}`, onclick: () => ask(v, "promote") }, "Promote") : null,
          isAdmin && acts.rollback ? h("button", { "data-testid": `rollback-${v.id}`, onclick: () => ask(v, "rollback") }, "Roll back to this") : null,
        ),
      ),
    );
  }
  root.append(h("section", { class: "card" }, h("h3", {}, "Versions (lineage)"), versions.length ? table : h("p", { class: "muted", "data-testid": "no-versions" }, "No model version yet: the project uses the bootstrap model. Train a closed round or upload a checkpoint."), confirmBox));

  /** The confirmation: what changes, a reason (required), Confirm / Cancel. */
  function ask(v: ModelVersion, action: "promote" | "rollback"): void {
    const current = versions.find((x) => x.status === "active");
    const reason = h("textarea", { rows: 2, cols: 60, placeholder: "Why (kept in the activation log)", "data-testid": "action-reason" });
    const verb = action === "promote" ? "Promote" : "Roll back to";
    const confirmBtn = h("button", { "data-testid": "action-confirm", onclick: () => {
      if (!reason.value.trim()) return toast("Give a reason: it is kept with your name in the activation log.", "error");
      confirmBtn.setAttribute("disabled", "");
      api.post<ModelVersion>(`/api/model-versions/${v.id}/${action}/`, { reason: reason.value.trim() }).then((done) => {
        toast(`${done.name} is now the active model.`, "ok");
        reload();
      }, (err) => {
        confirmBtn.removeAttribute("disabled");
        toast(errorText(err), "error");
      });
    } }, `Confirm: ${verb.toLowerCase()} ${v.name}`);
    confirmBox.replaceChildren(
      h("div", { class: "card confirm" },
        h("p", { "data-testid": "action-question" }, `${verb} ${v.name}? It becomes the active model for new rounds and jobs${current ? `, replacing ${current.name}` : ""}.`),
        reason,
        h("div", { class: "row" }, confirmBtn, h("button", { class: "link", "data-testid": "action-cancel", onclick: () => confirmBox.replaceChildren() }, "Cancel")),
      ),
    );
    reason.focus();
  }

  // --- compare two versions
  root.append(compareSection());

  function compareSection(): HTMLElement {
    const section = h("section", { class: "card", "data-testid": "compare" }, h("h3", {}, "Compare two versions"));
    if (versions.length < 2) {
      section.append(h("p", { class: "muted" }, "Two versions are needed to compare."));
      return section;
    }
    const newest = [...versions].sort((x, y) => y.created_at.localeCompare(x.created_at) || y.id - x.id);
    const b = byId.get(Number(params.get("b"))) ?? newest[0];
    const a = byId.get(Number(params.get("a"))) ?? (b.parent !== null ? byId.get(b.parent) : undefined) ?? newest.find((v) => v.id !== b.id)!;
    const pick = (which: "a" | "b", chosen: ModelVersion) => {
      const sel = h("select", { "data-testid": `compare-${which}`, "aria-label": `version ${which.toUpperCase()}` }, ...versions.map((v) => h("option", { value: String(v.id), selected: v.id === chosen.id }, `${v.name} (${v.status})`)));
      sel.addEventListener("change", () => app.go(here({ [which]: sel.value })));
      return sel;
    };
    section.append(h("div", { class: "row" }, "A ", pick("a", a), " B ", pick("b", b)));
    const ma = heldOut(a, versions);
    const mb = heldOut(b, versions);
    const modalities = [...new Set([...Object.keys(ma?.by_modality ?? {}), ...Object.keys(mb?.by_modality ?? {})])].sort();
    const delta = (x: number | null | undefined, y: number | null | undefined) => (typeof x === "number" && typeof y === "number" ? signed(y - x) : "—");
    const row = (label: string, x: string, y: string, d = "") => h("tr", {}, h("th", {}, label), h("td", {}, x), h("td", {}, y), h("td", {}, d));
    const side = h("table", { class: "table", "data-testid": "compare-metrics" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, `A: ${a.name}`), h("th", {}, `B: ${b.name}`), h("th", {}, "B − A"))),
      row("status", a.status, b.status),
      row("parent", name(a.parent), name(b.parent)),
      row("held-out mean Dice", fmt(ma?.mean_dice), fmt(mb?.mean_dice), delta(ma?.mean_dice, mb?.mean_dice)),
      row("held-out mean NSD (2 mm)", fmt(ma?.mean_nsd), fmt(mb?.mean_nsd), delta(ma?.mean_nsd, mb?.mean_nsd)),
      ...modalities.map((m) => row(`Dice ${m}`, fmt(ma?.by_modality?.[m]?.dice), fmt(mb?.by_modality?.[m]?.dice), delta(ma?.by_modality?.[m]?.dice, mb?.by_modality?.[m]?.dice))),
      row("training steps", String(a.metrics?.train?.steps ?? "—"), String(b.metrics?.train?.steps ?? "—")),
      row("final loss", fmt(a.metrics?.train?.final_loss), fmt(b.metrics?.train?.final_loss)),
      row("gate", a.metrics?.gate?.reason || a.status_reason || "—", b.metrics?.gate?.reason || b.status_reason || "—"),
    );
    section.append(side);
    const rows = diffTargets(a, b, versions);
    const sum = diffSummary(rows);
    section.append(h("h4", {}, "Per held-out target"));
    if (!rows.length) {
      section.append(h("p", { class: "muted", "data-testid": "no-targets" }, "Neither version has a per-target evaluation (versions made by training carry one; an uploaded checkpoint is evaluated as a parent when a round trains on it)."));
      return section;
    }
    section.append(h("p", { "data-testid": "diff-summary" }, `${sum.n} targets compared: mean ΔDice ${sum.meanDelta === null ? "—" : signed(sum.meanDelta)}; ${sum.better} better, ${sum.worse} worse in B.`));
    const diffTable = h("table", { class: "table", "data-testid": "target-diff" }, h("thead", {}, h("tr", {}, ...["Target", "Case", "Modality", "Dice A", "Dice B", "B − A"].map((t) => h("th", {}, t)))));
    for (const r of rows) {
      diffTable.append(h("tr", { "data-testid": `diff-${r.target}` }, h("td", {}, String(r.target)), h("td", {}, h("a", { href: `#/cases/${r.case}?target=${r.target}` }, String(r.case))), h("td", {}, r.modality), h("td", {}, fmt(r.a)), h("td", {}, fmt(r.b)), h("td", { class: r.delta === null ? "" : r.delta >= 0 ? "better" : "worse" }, r.delta === null ? "—" : signed(r.delta))));
    }
    const chartEl = h("div", { class: "chart", style: { height: "260px" }, "data-testid": "diff-chart" });
    section.append(chartEl, diffTable);
    charts.push(mountChart(chartEl, diffBars(rows, "A", "B")));
    return section;
  }

  // --- activation log
  const log = h("table", { class: "table", "data-testid": "activations" }, h("thead", {}, h("tr", {}, ...["When", "Change", "Version", "Previous", "By", "Reason"].map((t) => h("th", {}, t)))));
  for (const a of activations) log.append(h("tr", {}, h("td", {}, fmtDate(a.created_at)), h("td", {}, a.kind), h("td", {}, name(a.version)), h("td", {}, name(a.previous)), h("td", {}, a.kind === "gate" || a.by !== null ? who(a.by) : "—"), h("td", {}, a.reason)));
  root.append(h("section", { class: "card" }, h("h3", {}, "Activation log"), activations.length ? log : h("p", { class: "muted" }, "No activation yet.")));

  if (isAdmin) root.append(uploadSection());

  function uploadSection(): HTMLElement {
    const section = h("section", { class: "card" }, h("h3", {}, "Upload a checkpoint"), h("p", { class: "muted" }, "A torch.save file in the official {\"model\": state_dict} format (e.g. MedSAM2_latest.pt). It is stored in the project's storage and becomes usable once a worker has loaded it strictly."));
    const nameIn = h("input", { placeholder: "version name", required: true, "data-testid": "upload-name" });
    const config = h("input", { value: "medsam2_t512", "data-testid": "upload-config", "aria-label": "config" });
    const parent = h("select", { "data-testid": "upload-parent", "aria-label": "parent" }, h("option", { value: "" }, "(no parent)"), ...versions.map((v) => h("option", { value: String(v.id) }, v.name)));
    const file = h("input", { type: "file", accept: ".pt,.pth", required: true, "data-testid": "upload-file" });
    const status = h("div", { "data-testid": "upload-status" });
    const form = h("form", { class: "row" }, nameIn, config, parent, file, h("button", { type: "submit", "data-testid": "upload-submit" }, "Upload"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!file.files?.length) return toast("Choose a checkpoint file.", "error");
      const body = new FormData();
      body.set("project", String(project.id));
      body.set("name", nameIn.value);
      body.set("config_name", config.value);
      if (parent.value) body.set("parent", parent.value);
      body.set("file", file.files[0], file.files[0].name);
      status.textContent = "Uploading… 0 %";
      api.upload<ModelVersion>("/api/model-versions/upload/", body, (f) => (status.textContent = `Uploading… ${Math.round(f * 100)} %`)).promise.then((v) => {
        status.textContent = `${v.name} uploaded (${v.status}): a worker verifies it now.`;
        setTimeout(reload, 1500);
      }, (err) => (status.textContent = errorText(err)));
    });
    section.append(form, status);
    return section;
  }
  return view;
}

function signed(x: number): string {
  return `${x > 0 ? "+" : ""}${x.toFixed(4)}`;
}
