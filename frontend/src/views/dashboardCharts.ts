/**
 * ECharts options for the timing dashboard, built from the server's report (no DOM, no echarts
 * import: unit-testable). Box plots use the server's five-number summaries, so a chart can never
 * disagree with the tables or the CSV export.
 */
import { PHASES, roundName, type ReportGroup, type RoundReport, type Summary, type TimingReport } from "../services/timing";

export type ChartOption = Record<string, unknown>;

const TEXT = "#c9d1e6";
const LINE = "#394056";
const PHASE_COLORS: Record<string, string> = { prompting: "#40a9ff", waiting: "#faad14", correcting: "#73d13d", reviewing: "#b37feb" };
const PALETTE = ["#40a9ff", "#ff7a45", "#73d13d", "#b37feb", "#ffd666", "#36cfc9"];

export function groupKey(g: Pick<ReportGroup, "modality" | "label" | "unit">): string {
  return `${g.modality} ${g.label} (per ${g.unit})`;
}

/** Rounds that have at least one completed lesion, in order. */
export function roundsWithData(report: TimingReport): RoundReport[] {
  return report.rounds.filter((r) => r.n > 0);
}

function groupKeys(rounds: RoundReport[]): string[] {
  const keys: string[] = [];
  for (const r of rounds) for (const g of r.groups) if (!keys.includes(groupKey(g))) keys.push(groupKey(g));
  return keys;
}

function find(r: RoundReport, key: string): ReportGroup | undefined {
  return r.groups.find((g) => groupKey(g) === key);
}

function roundLabel(r: RoundReport): string {
  const model = r.is_manual_baseline ? "" : r.model_version ?? r.models_used.join(", ");
  return model ? `${roundName(r)}\n${model}` : roundName(r);
}

function base(title: string, yName: string, categories: string[]): ChartOption {
  return {
    backgroundColor: "transparent",
    color: PALETTE,
    textStyle: { color: TEXT },
    title: { text: title, left: 8, top: 4, textStyle: { color: TEXT, fontSize: 14, fontWeight: 600 } },
    grid: { left: 64, right: 24, top: 56, bottom: 64 },
    legend: { top: 26, right: 8, textStyle: { color: TEXT } },
    tooltip: { trigger: "item", confine: true },
    xAxis: { type: "category", data: categories, axisLine: { lineStyle: { color: LINE } }, axisLabel: { color: TEXT, lineHeight: 16, margin: 10 } },
    yAxis: { type: "value", name: yName, nameTextStyle: { color: TEXT }, axisLabel: { color: TEXT }, splitLine: { lineStyle: { color: LINE } } },
  };
}

const MISSING = ["-", "-", "-", "-", "-"];

function boxItem(s: Summary | undefined, digits: number): { value: (number | string)[]; n: number; mean: number | null } {
  if (!s || !s.n || s.min === null) return { value: MISSING, n: 0, mean: null };
  const r = (v: number | null) => (v === null ? "-" : Number(v.toFixed(digits)));
  return { value: [r(s.min), r(s.q1), r(s.median), r(s.q3), r(s.max)], n: s.n, mean: s.mean };
}

function boxTooltip(unit: string) {
  return (p: { seriesName: string; name: string; data: { value: (number | string)[]; n: number; mean: number | null } }) => {
    const [min, q1, med, q3, max] = p.data.value;
    if (!p.data.n) return `${p.name}: no data`;
    return `${p.seriesName}<br/>${p.name.replace("\n", " · ")}<br/>n ${p.data.n} · median ${med}${unit} · mean ${p.data.mean}${unit}<br/>IQR ${q1}–${q3}${unit} · range ${min}–${max}${unit}`;
  };
}

/** Box plots of time per lesion (per frame for videos), one box per round and group. */
export function timeBoxplot(report: TimingReport): ChartOption {
  const rounds = roundsWithData(report);
  const keys = groupKeys(rounds);
  return {
    ...base("Time per lesion by round", "seconds", rounds.map(roundLabel)),
    tooltip: { trigger: "item", confine: true, formatter: boxTooltip(" s") },
    series: keys.map((key) => ({
      name: key,
      type: "boxplot",
      data: rounds.map((r) => boxItem(find(r, key)?.time_s, 1)),
    })),
  };
}

/** Less time than the manual baseline, in percent of its mean (the article's figure), per round. */
export function reductionLine(report: TimingReport): ChartOption {
  const rounds = roundsWithData(report);
  const keys = groupKeys(rounds);
  const option = base("Reduction against the manual baseline", "% less time", rounds.map(roundLabel));
  const subtext = report.baseline_round === null ? "no manual-baseline round in this project yet" : `baseline: round ${report.baseline_round}`;
  return {
    ...option,
    title: { ...(option.title as object), subtext, subtextStyle: { color: "#8a93ab", fontSize: 12 } },
    grid: { ...(option.grid as object), top: 68 }, // room for the subtext above the axis name
    yAxis: { ...(option.yAxis as object), min: 0, max: 100 },
    tooltip: { trigger: "axis", confine: true, valueFormatter: (v: unknown) => (typeof v === "number" ? `${v.toFixed(2)} %` : "—") },
    series: keys.map((key) => ({
      name: key,
      type: "line",
      symbolSize: 8,
      connectNulls: true,
      label: { show: true, color: TEXT, formatter: (p: { value: unknown }) => (typeof p.value === "number" ? `${p.value.toFixed(1)}%` : "") },
      data: rounds.map((r) => find(r, key)?.reduction_pct ?? "-"),
    })),
  };
}

/** Mean seconds per lesion in each phase, per round (groups weighted by their lesion counts). */
export function phaseBars(report: TimingReport): ChartOption {
  const rounds = roundsWithData(report);
  const mean = (r: RoundReport, phase: string) => {
    // weighted by the lesions that have a time (a lesion without events has none)
    const n = r.groups.reduce((a, g) => a + g.time_s.n, 0);
    const total = r.groups.reduce((a, g) => a + g.time_s.n * (g.phases_mean_s[phase as keyof typeof g.phases_mean_s] ?? 0), 0);
    return n ? Number((total / n).toFixed(1)) : 0;
  };
  return {
    ...base("Where the time goes (mean per lesion)", "seconds", rounds.map(roundLabel)),
    tooltip: { trigger: "axis", confine: true, axisPointer: { type: "shadow" }, valueFormatter: (v: unknown) => `${v} s` },
    series: PHASES.map((phase) => ({
      name: phase,
      type: "bar",
      stack: "phases",
      itemStyle: { color: PHASE_COLORS[phase] },
      data: rounds.map((r) => mean(r, phase)),
    })),
  };
}

/** Dice(first model proposal, final mask) per round; manual rounds have no proposal. */
export function diceBoxplot(report: TimingReport): ChartOption {
  const rounds = roundsWithData(report);
  const keys = groupKeys(rounds);
  const option = base("Dice(first proposal, final)", "Dice", rounds.map(roundLabel));
  return {
    ...option,
    yAxis: { ...(option.yAxis as object), min: 0, max: 1 },
    tooltip: { trigger: "item", confine: true, formatter: boxTooltip("") },
    series: keys.map((key) => ({
      name: key,
      type: "boxplot",
      data: rounds.map((r) => boxItem(find(r, key)?.dice, 3)),
    })),
  };
}
