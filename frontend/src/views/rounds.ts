/**
 * The learning loop's rounds page (#/rounds?project=1): every round with its status, manual-baseline
 * flag, pinned model and frozen training snapshot; managers open and close rounds and set the flag
 * of the open one, admins start a training run on a closed round (optionally with its steps) and
 * follow it on #/training-runs/<id>. Everything goes through /api/rounds/ and /api/training-runs/.
 */
import { roleAtLeast, type App, type View } from "../app";
import { fmt, fmtEta, runFinished, type LoopRound, type ModelVersion, type TrainingRun } from "../services/learning";
import type { Project } from "../types";
import { errorText, fmtDate, h, statusBadge, toast } from "../ui/dom";

export function projectPicker(app: App, projects: Project[], current: Project, page: string): HTMLElement {
  const sel = h("select", { "data-testid": "project-picker", "aria-label": "project" }, ...projects.map((p) => h("option", { value: String(p.id), selected: p.id === current.id }, p.name)));
  sel.addEventListener("change", () => app.go(`#/${page}?project=${sel.value}`));
  return sel;
}

export async function managedProjects(app: App): Promise<Project[]> {
  const projects = await app.services.api.list<Project>("/api/projects/");
  return projects.filter((p) => roleAtLeast(app.roleIn(p.id), "manager"));
}

export async function roundsView(root: HTMLElement, app: App, params: URLSearchParams): Promise<View> {
  const api = app.services.api;
  const view: View = { destroy() {} };
  root.append(h("h1", {}, "Rounds and training"));
  const projects = await managedProjects(app);
  if (!projects.length) {
    root.append(h("p", { class: "muted" }, "You manage no project: rounds are opened and closed by project managers."));
    return view;
  }
  const project = projects.find((p) => p.id === Number(params.get("project"))) ?? projects[0];
  const isAdmin = roleAtLeast(app.roleIn(project.id), "admin");
  const reload = () => app.go(`#/rounds?project=${project.id}&t=${Date.now()}`);
  const fail = (err: unknown) => toast(errorText(err), "error");
  const [rounds, runs, versions] = await Promise.all([
    api.list<LoopRound>("/api/rounds/", { project: project.id, ordering: "number" }),
    api.list<TrainingRun>("/api/training-runs/", { project: project.id }),
    api.list<ModelVersion>("/api/model-versions/", { project: project.id }),
  ]);
  const versionName = (id: number | null) => (id === null ? "—" : versions.find((v) => v.id === id)?.name ?? `#${id}`);
  const active = versions.find((v) => v.status === "active") ?? null;

  root.append(
    h("div", { class: "row" }, "Project ", projectPicker(app, projects, project, "rounds"), " · active model: ", h("strong", { "data-testid": "active-model" }, active?.name ?? "none (the bootstrap model)"), " · ", h("a", { href: `#/registry?project=${project.id}`, "data-testid": "registry-link" }, "Model registry")),
  );

  const table = h("table", { class: "table", "data-testid": "rounds" });
  table.append(h("thead", {}, h("tr", {}, ...["Round", "Status", "Manual baseline", "Model", "Opened", "Closed", "Snapshot", "Training runs", ""].map((t) => h("th", {}, t)))));
  for (const r of rounds) {
    const baseline = h("input", { type: "checkbox", checked: r.is_manual_baseline, disabled: r.status !== "open", "data-testid": `baseline-${r.number}`, title: r.status === "open" ? "no model proposals in this round" : "only an open round can change" });
    baseline.addEventListener("change", () => {
      api.patch(`/api/rounds/${r.id}/`, { is_manual_baseline: baseline.checked }).then(() => {
        toast(baseline.checked ? `Round ${r.number} is the manual baseline: no model proposals.` : `Round ${r.number} gets model proposals again.`, "ok");
        reload();
      }, (err) => {
        baseline.checked = !baseline.checked;
        fail(err);
      });
    });
    const snap = r.snapshot as { train?: number[]; held_out?: number[] };
    const snapshot = r.snapshot_hash ? `${snap.train?.length ?? 0} train · ${snap.held_out?.length ?? 0} held-out masks · ${r.snapshot_hash.slice(0, 10)}` : "—";
    const roundRuns = runs.filter((x) => x.round === r.id);
    const runLinks = h("div", { class: "runs" }, ...roundRuns.map((x) => h("div", {}, h("a", { href: `#/training-runs/${x.id}`, "data-testid": `run-link-${x.id}` }, `run ${x.id}`), " ", statusBadge(x.status), runFinished(x) ? "" : ` ${Math.round(x.progress * 100)} % · ETA ${fmtEta(x.eta_s)}`, x.last_validation?.mean_dice !== undefined ? ` · val Dice ${fmt(x.last_validation.mean_dice, 3)}` : "")));
    const actions = h("td", {});
    if (r.status === "open") {
      actions.append(h("button", { "data-testid": `close-round-${r.number}`, onclick: () => {
        if (!confirm(`Close round ${r.number}? Its accepted masks are frozen as the training snapshot.`)) return;
        api.post<LoopRound>(`/api/rounds/${r.id}/close/`).then((closed) => {
          toast(`Round ${closed.number} closed: ${(closed.snapshot as { train?: number[] }).train?.length ?? 0} training masks frozen.`, "ok");
          reload();
        }, fail);
      } }, "Close round"));
    } else if (isAdmin && (r.status === "closed" || r.status === "done")) {
      actions.append(trainForm(app, r, fail));
    }
    table.append(
      h("tr", { "data-testid": `round-${r.number}` },
        h("td", {}, `Round ${r.number}`),
        h("td", {}, statusBadge(r.status)),
        h("td", {}, baseline),
        h("td", {}, r.is_manual_baseline ? "none (manual)" : versionName(r.model_version)),
        h("td", {}, fmtDate(r.opened_at)),
        h("td", {}, fmtDate(r.closed_at)),
        h("td", { "data-testid": `snapshot-${r.number}` }, snapshot),
        h("td", {}, runLinks),
        actions,
      ),
    );
  }
  root.append(h("section", { class: "card" }, rounds.length ? table : h("p", { class: "muted" }, "No round yet."), openForm()));

  function openForm(): HTMLElement | null {
    if (rounds.some((r) => r.status === "open")) return h("p", { class: "muted" }, "Close the open round to open the next one (one open round per project).");
    const baseline = h("input", { type: "checkbox", "data-testid": "open-baseline" });
    return h("div", { class: "row" },
      h("label", { class: "inline" }, baseline, " manual baseline (no model help)"),
      h("button", { "data-testid": "open-round", onclick: () => api.post<LoopRound>("/api/rounds/", { project: project.id, is_manual_baseline: baseline.checked }).then((r) => {
        toast(`Round ${r.number} is open${r.is_manual_baseline ? " as the manual baseline" : ` with ${versionName(r.model_version)}`}.`, "ok");
        reload();
      }, fail) }, "Open next round"),
    );
  }
  return view;
}

/** Start training on a closed round: steps (empty = the recipe's default), then the live run page. */
function trainForm(app: App, r: LoopRound, fail: (err: unknown) => void): HTMLElement {
  const steps = h("input", { type: "number", min: "1", placeholder: "steps (default)", style: { width: "9em" }, "data-testid": `train-steps-${r.number}` });
  const form = h("form", { class: "row" }, steps, h("button", { type: "submit", "data-testid": `train-${r.number}` }, "Start training"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const hyperparameters = steps.value ? { steps: Number(steps.value) } : {};
    app.services.api.post<TrainingRun>(`/api/rounds/${r.id}/train/`, { hyperparameters }).then((run) => app.go(`#/training-runs/${run.id}`), fail);
  });
  return form;
}
