/**
 * The learning loop's API shapes (rounds, training runs, model versions and their activation log,
 * from annotation_app/rounds/api) and the pure computations its admin pages show: ETA and progress
 * text, the chart points of a run's history, a registry's lineage, and two versions' held-out
 * metrics side by side with per-target Dice differences. No DOM here: unit-tested in Vitest.
 */

export interface LoopRound {
  id: number;
  project: number;
  number: number;
  status: "open" | "closed" | "training" | "done" | string;
  model_version: number | null;
  is_manual_baseline: boolean;
  opened_at: string;
  closed_at: string | null;
  snapshot: { train?: number[]; held_out?: number[] } | Record<string, unknown>;
  snapshot_hash: string;
}

/** A point of a run's history: a training step or a validation. */
export interface HistoryPoint {
  step: number;
  loss?: number | null;
  lr?: number | null;
  val_dice?: number | null;
  val_nsd?: number | null;
}

export interface TrainingRun {
  id: number;
  project: number;
  round: number | null;
  base_model: number | null;
  status: "queued" | "running" | "succeeded" | "failed" | "cancelled" | string;
  progress: number;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown> & { model_version?: number; gate?: GateDecision };
  log: string;
  cancel_requested: boolean;
  requested_by: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  step: number;
  total_steps: number;
  loss: number | null;
  learning_rate: number | null;
  eta_s: number | null;
  last_validation: { step?: number; mean_dice?: number | null; mean_nsd?: number | null };
  history: HistoryPoint[];
  worker: string;
  heartbeat_at: string | null;
  attempts: number;
  checkpoint_key: string;
  error: string;
}

export interface GateDecision {
  passed: boolean | null;
  candidate_dice?: number;
  parent_dice?: number;
  margin: number;
  reason: string;
}

export interface HeldOutSummary {
  mean_dice?: number | null;
  mean_nsd?: number | null;
  by_modality?: Record<string, { dice: number | null; nsd: number | null; targets: number }>;
}

export interface PerTarget {
  target: number;
  case: number;
  modality: string;
  dice: number | null;
  nsd: number | null;
  parent_dice?: number | null;
  parent_nsd?: number | null;
}

export interface VersionMetrics {
  held_out?: { candidate?: HeldOutSummary; parent?: HeldOutSummary };
  per_target?: PerTarget[];
  train?: { steps?: number; final_loss?: number | null; wall_s?: number; resumed_from?: number | null };
  gate?: GateDecision;
  [key: string]: unknown;
}

export interface ModelVersion {
  id: number;
  project: number;
  name: string;
  checkpoint_key: string;
  sha256: string;
  config_name: string;
  parent: number | null;
  training_run: number | null;
  metrics: VersionMetrics;
  status: "pending" | "candidate" | "active" | "retired" | "rejected" | string;
  status_reason: string;
  verified_at: string | null;
  round: number | null;
  snapshot_hash: string;
  hyperparameters: Record<string, unknown>;
  code_version: string;
  created_by: number | null;
  created_at: string;
}

export interface ModelActivation {
  id: number;
  project: number;
  version: number;
  previous: number | null;
  kind: "activate" | "gate" | "promote" | "rollback" | string;
  by: number | null;
  reason: string;
  created_at: string;
}

export const RUN_FINISHED = ["succeeded", "failed", "cancelled"];

export function runFinished(run: Pick<TrainingRun, "status">): boolean {
  return RUN_FINISHED.includes(run.status);
}

/** "45 s", "12 min 05 s", "3 h 07 min"; "—" when unknown. */
export function fmtEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** Fraction done in [0, 1] (step/total when known, else the row's progress). */
export function runFraction(run: Pick<TrainingRun, "step" | "total_steps" | "progress" | "status">): number {
  if (run.status === "succeeded") return 1;
  const f = run.total_steps > 0 ? run.step / run.total_steps : run.progress;
  return Math.max(0, Math.min(1, Number.isFinite(f) ? f : 0));
}

/** The one line under the progress bar. */
export function progressText(run: TrainingRun): string {
  switch (run.status) {
    case "queued":
      return run.cancel_requested ? "Queued; cancel requested" : "Queued: waiting for a training worker";
    case "running": {
      const steps = run.total_steps ? `step ${run.step} / ${run.total_steps}` : "starting";
      const pct = `${(runFraction(run) * 100).toFixed(1)} %`;
      const cancel = run.cancel_requested ? " · cancel requested" : "";
      return `${steps} · ${pct} · ETA ${fmtEta(run.eta_s)}${cancel}`;
    }
    case "succeeded":
      return `Finished: ${run.total_steps || run.step} steps`;
    case "cancelled":
      return `Cancelled at step ${run.step}${run.total_steps ? ` / ${run.total_steps}` : ""}`;
    case "failed":
      return `Failed at step ${run.step}: ${run.error || "no reason recorded"}`;
    default:
      return run.status;
  }
}

/** A number with `digits` decimals, or "—". */
export function fmt(value: number | null | undefined, digits = 4): string {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** A learning rate: 3 significant digits in exponent form when small. */
export function fmtLr(value: number | null | undefined): string {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return value !== 0 && Math.abs(value) < 1e-3 ? value.toExponential(2) : value.toPrecision(3);
}

/** The run's history split into the chart's series: [step, loss] and [step, validation Dice]. */
export function historySeries(history: HistoryPoint[]): { loss: [number, number][]; dice: [number, number][]; nsd: [number, number][] } {
  const loss: [number, number][] = [];
  const dice: [number, number][] = [];
  const nsd: [number, number][] = [];
  for (const p of history ?? []) {
    if (typeof p.loss === "number") loss.push([p.step, p.loss]);
    if (typeof p.val_dice === "number") dice.push([p.step, p.val_dice]);
    if (typeof p.val_nsd === "number") nsd.push([p.step, p.val_nsd]);
  }
  const byStep = (a: [number, number], b: [number, number]) => a[0] - b[0];
  return { loss: loss.sort(byStep), dice: dice.sort(byStep), nsd: nsd.sort(byStep) };
}

/** Versions as a tree: roots (no parent, or a parent not listed) first, children under their parent,
 * each level by creation time; depth for indentation. */
export function lineage(versions: ModelVersion[]): { version: ModelVersion; depth: number }[] {
  const ids = new Set(versions.map((v) => v.id));
  const children = new Map<number | null, ModelVersion[]>();
  for (const v of versions) {
    const key = v.parent !== null && ids.has(v.parent) ? v.parent : null;
    children.set(key, [...(children.get(key) ?? []), v]);
  }
  for (const list of children.values()) list.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id - b.id);
  const out: { version: ModelVersion; depth: number }[] = [];
  const seen = new Set<number>();
  const walk = (parent: number | null, depth: number) => {
    for (const v of children.get(parent) ?? []) {
      if (seen.has(v.id)) continue;
      seen.add(v.id);
      out.push({ version: v, depth });
      walk(v.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

/** A version's held-out summary: its own (as the candidate of its run's evaluation), else the one a
 * child's run measured for it as the parent (same targets, same protocol). */
export function heldOut(v: ModelVersion, all: ModelVersion[] = []): HeldOutSummary | null {
  const own = v.metrics?.held_out?.candidate;
  if (own) return own;
  const child = [...all].reverse().find((c) => c.parent === v.id && c.metrics?.held_out?.parent);
  return child?.metrics?.held_out?.parent ?? null;
}

/** Per-target Dice of a version: its own evaluation, plus its parent's from the same evaluation
 * (a version evaluated only as a parent is known through its child's rows). */
export function targetDice(v: ModelVersion, all: ModelVersion[] = []): Map<number, { dice: number | null; modality: string; case: number }> {
  const out = new Map<number, { dice: number | null; modality: string; case: number }>();
  for (const child of all) {
    if (child.parent !== v.id) continue;
    for (const row of child.metrics?.per_target ?? []) {
      if (row.parent_dice !== undefined && !out.has(row.target)) out.set(row.target, { dice: row.parent_dice ?? null, modality: row.modality, case: row.case });
    }
  }
  for (const row of v.metrics?.per_target ?? []) out.set(row.target, { dice: row.dice, modality: row.modality, case: row.case });
  return out;
}

export interface TargetDiff {
  target: number;
  case: number;
  modality: string;
  a: number | null;
  b: number | null;
  /** b - a, when both are known */
  delta: number | null;
}

/** Per-target Dice of two versions side by side, B minus A, sorted by target. */
export function diffTargets(a: ModelVersion, b: ModelVersion, all: ModelVersion[] = []): TargetDiff[] {
  const da = targetDice(a, all);
  const db = targetDice(b, all);
  const targets = [...new Set([...da.keys(), ...db.keys()])].sort((x, y) => x - y);
  return targets.map((t) => {
    const ra = da.get(t);
    const rb = db.get(t);
    const va = ra?.dice ?? null;
    const vb = rb?.dice ?? null;
    return {
      target: t,
      case: (ra ?? rb)!.case,
      modality: (ra ?? rb)!.modality,
      a: va,
      b: vb,
      delta: va !== null && vb !== null ? Number((vb - va).toFixed(4)) : null,
    };
  });
}

/** Mean of the known differences and how many targets improved / got worse. */
export function diffSummary(rows: TargetDiff[]): { n: number; meanDelta: number | null; better: number; worse: number } {
  const known = rows.filter((r) => r.delta !== null).map((r) => r.delta as number);
  const mean = known.length ? known.reduce((s, d) => s + d, 0) / known.length : null;
  return { n: known.length, meanDelta: mean === null ? null : Number(mean.toFixed(4)), better: known.filter((d) => d > 0).length, worse: known.filter((d) => d < 0).length };
}

/** Whether promote / roll back apply: promote any verified version that is not active; roll back to
 * one that was active before (the server has the last word). */
export function versionActions(v: ModelVersion, activations: ModelActivation[]): { promote: boolean; rollback: boolean } {
  const verified = v.verified_at !== null && v.status !== "pending";
  const wasActive = v.status === "retired" || activations.some((a) => a.version === v.id);
  return { promote: verified && v.status !== "active" && !wasActive, rollback: verified && v.status !== "active" && wasActive };
}
