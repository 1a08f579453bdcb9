/** Types of the time-per-lesion API (GET /api/timing-report/, /api/target-timings/); see the README. */

export const PHASES = ["prompting", "waiting", "correcting", "reviewing"] as const;
export type Phase = (typeof PHASES)[number];

export interface Summary {
  n: number;
  mean: number | null;
  median: number | null;
  q1: number | null;
  q3: number | null;
  iqr: number | null;
  min: number | null;
  max: number | null;
}

export interface Distribution extends Summary {
  values: number[];
}

export interface AnnotatorStats {
  user: number | null;
  username: string;
  n: number;
  time_s: Distribution;
  edit_fraction: number | null;
  dice: Distribution;
}

export interface ReportGroup {
  modality: string;
  label: string;
  kind: "volume" | "video";
  unit: "lesion" | "frame";
  n: number;
  time_s: Distribution;
  reduction_pct: number | null;
  reduction_median_pct: number | null;
  edit_fraction: number | null;
  dice: Distribution;
  hd95_mm: Summary;
  voxels_changed_mean: number | null;
  phases_mean_s: Record<Phase, number>;
  edits_mean: number | null;
  annotators: AnnotatorStats[];
}

export interface RoundReport {
  id: number | null;
  number: number | null;
  status: string | null;
  is_manual_baseline: boolean;
  model_version: string | null;
  models_used: string[];
  n: number;
  groups: ReportGroup[];
}

export interface TimingReport {
  project: { id: number; name: string; idle_threshold_s: number };
  filters: Record<string, string | number>;
  baseline_round: number | null;
  rounds: RoundReport[];
  options: { modalities: string[]; labels: string[]; annotators: { id: number; username: string }[] };
}

export interface TargetTiming {
  id: number;
  target: number;
  case: number;
  case_name: string;
  project: number;
  round: number | null;
  round_number: number | null;
  modality: string;
  label: string;
  case_kind: "volume" | "video";
  status: string;
  submitted_by: number | null;
  submitted_by_username: string | null;
  time_s: number;
  per_frame_s: number | null;
  prompting_s: number;
  waiting_s: number;
  correcting_s: number;
  reviewing_s: number;
  idle_left_out_s: number;
  hidden_left_out_s: number;
  n_prompts: number;
  n_strokes: number;
  n_undos: number;
  n_redos: number;
  n_edits: number;
  n_events: number;
  n_frames: number;
  n_corrected_frames: number;
  edit_fraction: number | null;
  model_name: string;
  voxels_changed: number | null;
  dice: number | null;
  hd95_mm: number | null;
  last_event_at: string | null;
}

/** "1:02" style for seconds; one decimal under a minute. */
export function fmtSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || Number.isNaN(s)) return "—";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return rest === 60 ? `${m + 1}:00` : `${m}:${String(rest).padStart(2, "0")}`;
}

export function fmtNumber(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? "—" : v.toFixed(digits);
}

export function roundName(r: Pick<RoundReport, "number" | "is_manual_baseline">): string {
  if (r.number === null) return "No round";
  return `Round ${r.number}${r.is_manual_baseline ? " (manual)" : ""}`;
}
