/**
 * A training run live (#/training-runs/<id>): a progress bar with step/total and ETA, the latest loss,
 * learning rate and held-out validation, the loss and validation-Dice curves (ECharts, updated with
 * each new point), the worker's log and, when it ends, the gate's decision and the version it made.
 * Polls GET /api/training-runs/<id>/ every 2 s until the run is finished; admins may cancel it.
 */
import { roleAtLeast, type App, type View } from "../app";
import { fmt, fmtEta, fmtLr, historySeries, progressText, runFinished, runFraction, type ModelVersion, type TrainingRun } from "../services/learning";
import { mountChart, type Chart } from "../ui/charts";
import { clear, errorText, fmtDate, h, statusBadge, toast } from "../ui/dom";
import { trainingCurves } from "./learningCharts";

export const POLL_MS = 2000;

export async function trainingRunView(root: HTMLElement, app: App, _params: URLSearchParams, match: RegExpMatchArray): Promise<View> {
  const api = app.services.api;
  const id = Number(match[1]);
  let run = await api.get<TrainingRun>(`/api/training-runs/${id}/`);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let chart: Chart | null = null;
  let destroyed = false;
  let shownPoints = -1;

  const status = h("span", { "data-testid": "run-status" });
  const bar = h("div", { class: "bar" });
  const barText = h("span", { class: "text", "data-testid": "run-progress" });
  const progress = h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "data-testid": "run-progress-bar" }, bar, barText);
  const facts = h("dl", { class: "facts", "data-testid": "run-facts", style: { display: "grid", gridTemplateColumns: "max-content 1fr", columnGap: "1.2em", rowGap: "0.2em" } });
  const chartEl = h("div", { class: "chart", style: { height: "340px" }, "data-testid": "run-chart" });
  const points = h("p", { class: "muted", "data-testid": "run-points" });
  const outcome = h("div", { "data-testid": "run-outcome" });
  const log = h("pre", { class: "log", "data-testid": "run-log", style: { maxHeight: "16em", overflow: "auto", whiteSpace: "pre-wrap" } });
  const cancel = h("button", { "data-testid": "run-cancel", onclick: () => {
    if (!confirm(`Cancel training run ${id}? Its last checkpoint is kept.`)) return;
    api.post<TrainingRun>(`/api/training-runs/${id}/cancel/`).then((r) => {
      toast("Cancel requested.", "ok");
      render(r);
    }, (err) => toast(errorText(err), "error"));
  } }, "Cancel run");
  const canCancel = roleAtLeast(app.roleIn(run.project), "admin");

  root.append(
    h("h1", {}, `Training run ${id} `, status),
    h("p", {}, h("a", { href: `#/rounds?project=${run.project}` }, "← Rounds"), " · ", h("a", { href: `#/registry?project=${run.project}` }, "Model registry")),
    h("section", { class: "card" }, progress, facts, canCancel ? cancel : null),
    h("section", { class: "card" }, chartEl, points),
    outcome,
    h("section", { class: "card" }, h("h3", {}, "Log"), log),
  );

  function fact(term: string, value: string, testid: string): HTMLElement[] {
    return [h("dt", { class: "muted" }, term), h("dd", { "data-testid": testid, style: { margin: "0" } }, value)];
  }

  async function render(next: TrainingRun): Promise<void> {
    run = next;
    clear(status);
    status.append(statusBadge(run.status));
    const pct = runFraction(run) * 100;
    bar.style.width = `${pct.toFixed(1)}%`;
    progress.setAttribute("aria-valuenow", pct.toFixed(1));
    progress.classList.toggle("failed", run.status === "failed");
    barText.textContent = progressText(run);
    clear(facts);
    const v = run.last_validation ?? {};
    facts.append(
      ...fact("Step", run.total_steps ? `${run.step} / ${run.total_steps}` : String(run.step), "fact-step"),
      ...fact("ETA", runFinished(run) ? "—" : fmtEta(run.eta_s), "fact-eta"),
      ...fact("Loss", fmt(run.loss), "fact-loss"),
      ...fact("Learning rate", fmtLr(run.learning_rate), "fact-lr"),
      ...fact("Last validation", v.step !== undefined ? `step ${v.step}: Dice ${fmt(v.mean_dice)} · NSD ${fmt(v.mean_nsd)}` : "—", "fact-validation"),
      ...fact("Worker", run.worker ? `${run.worker} (attempt ${run.attempts})` : "—", "fact-worker"),
      ...fact("Started", fmtDate(run.started_at) || "—", "fact-started"),
      ...fact("Settings", Object.keys(run.hyperparameters ?? {}).length ? JSON.stringify(run.hyperparameters) : "the published recipe", "fact-settings"),
    );
    cancel.toggleAttribute("disabled", runFinished(run) || run.cancel_requested);
    const series = historySeries(run.history ?? []);
    const n = series.loss.length + series.dice.length;
    if (n !== shownPoints) {
      shownPoints = n;
      const option = trainingCurves(run.history ?? [], run.total_steps);
      if (chart) chart.update(option);
      else chart = mountChart(chartEl, option);
      chartEl.dataset.lossPoints = String(series.loss.length);
      chartEl.dataset.dicePoints = String(series.dice.length);
    }
    points.textContent = `${series.loss.length} loss points · ${series.dice.length} validations`;
    if (log.textContent !== run.log) {
      log.textContent = run.log || "(no log line yet)";
      log.scrollTop = log.scrollHeight;
    }
    if (runFinished(run)) await renderOutcome();
  }

  async function renderOutcome(): Promise<void> {
    clear(outcome);
    if (run.status !== "succeeded") {
      if (run.error) outcome.append(h("section", { class: "card" }, h("h3", {}, "Error"), h("p", { class: "error" }, run.error)));
      return;
    }
    const gate = run.metrics?.gate;
    const versionId = run.metrics?.model_version;
    const version = versionId ? await api.get<ModelVersion>(`/api/model-versions/${versionId}/`).catch(() => null) : null;
    outcome.append(
      h("section", { class: "card", "data-testid": "gate" },
        h("h3", {}, "The gate"),
        h("p", {}, gate ? (gate.passed === true ? "Passed: " : gate.passed === false ? "Rejected: " : "Undecided: ") : "", gate?.reason ?? "no decision recorded"),
        version ? h("p", {}, "New version ", h("a", { href: `#/registry?project=${run.project}&b=${version.id}${version.parent ? `&a=${version.parent}` : ""}` }, version.name), " ", statusBadge(version.status)) : null,
      ),
    );
  }

  async function poll(): Promise<void> {
    if (destroyed) return;
    try {
      await render(await api.get<TrainingRun>(`/api/training-runs/${id}/`));
    } catch (err) {
      barText.textContent = errorText(err);
    }
    if (!destroyed && !runFinished(run)) timer = setTimeout(() => void poll(), POLL_MS);
  }

  await render(run);
  if (!runFinished(run)) timer = setTimeout(() => void poll(), POLL_MS);
  return {
    destroy() {
      destroyed = true;
      if (timer) clearTimeout(timer);
      chart?.destroy();
    },
  };
}
