/**
 * ECharts options for the learning loop's pages (no DOM, no echarts import: unit-testable): a
 * training run's loss and held-out validation Dice against the step, and two model versions'
 * per-target Dice differences.
 */
import { historySeries, type HistoryPoint, type TargetDiff } from "../services/learning";
import type { ChartOption } from "./dashboardCharts";

const TEXT = "#c9d1e6";
const LINE = "#394056";
const LOSS = "#40a9ff";
const DICE = "#73d13d";

/** Loss (left axis) and validation Dice (right axis, 0..1) per step; x spans the whole run. */
export function trainingCurves(history: HistoryPoint[], totalSteps: number): ChartOption {
  const { loss, dice } = historySeries(history);
  const lastStep = Math.max(totalSteps || 0, loss.at(-1)?.[0] ?? 0, dice.at(-1)?.[0] ?? 0, 1);
  return {
    backgroundColor: "transparent",
    animation: false,
    textStyle: { color: TEXT },
    title: { text: "Loss and held-out Dice", left: 8, top: 4, textStyle: { color: TEXT, fontSize: 14, fontWeight: 600 } },
    legend: { top: 26, right: 8, textStyle: { color: TEXT }, data: ["loss", "validation Dice"] },
    grid: { left: 64, right: 64, top: 60, bottom: 48 },
    tooltip: { trigger: "axis", confine: true, valueFormatter: (v: unknown) => (typeof v === "number" ? v.toFixed(4) : "—") },
    xAxis: { type: "value", name: "step", min: 0, max: lastStep, nameTextStyle: { color: TEXT }, axisLabel: { color: TEXT }, axisLine: { lineStyle: { color: LINE } }, splitLine: { show: false } },
    yAxis: [
      { type: "value", name: "loss", scale: true, nameTextStyle: { color: TEXT }, axisLabel: { color: TEXT }, splitLine: { lineStyle: { color: LINE } } },
      { type: "value", name: "Dice", min: 0, max: 1, nameTextStyle: { color: TEXT }, axisLabel: { color: TEXT }, splitLine: { show: false } },
    ],
    series: [
      { name: "loss", type: "line", yAxisIndex: 0, showSymbol: false, lineStyle: { width: 1.5 }, itemStyle: { color: LOSS }, data: loss },
      { name: "validation Dice", type: "line", yAxisIndex: 1, symbolSize: 7, itemStyle: { color: DICE }, label: { show: dice.length <= 12, color: TEXT, formatter: (p: { value: [number, number] }) => p.value[1].toFixed(3) }, data: dice },
    ],
  };
}

/** Per-target Dice difference (B - A), one bar per target, green when B is better. */
export function diffBars(rows: TargetDiff[], nameA: string, nameB: string): ChartOption {
  const known = rows.filter((r) => r.delta !== null);
  return {
    backgroundColor: "transparent",
    animation: false,
    textStyle: { color: TEXT },
    title: { text: `Dice per held-out target: ${nameB} − ${nameA}`, left: 8, top: 4, textStyle: { color: TEXT, fontSize: 14, fontWeight: 600 } },
    grid: { left: 64, right: 24, top: 48, bottom: 56 },
    tooltip: { trigger: "axis", confine: true, axisPointer: { type: "shadow" }, valueFormatter: (v: unknown) => (typeof v === "number" ? `${v > 0 ? "+" : ""}${v.toFixed(4)}` : "—") },
    xAxis: { type: "category", data: known.map((r) => `${r.modality} #${r.target}`), axisLabel: { color: TEXT, rotate: known.length > 8 ? 40 : 0 }, axisLine: { lineStyle: { color: LINE } } },
    yAxis: { type: "value", name: "ΔDice", nameTextStyle: { color: TEXT }, axisLabel: { color: TEXT }, splitLine: { lineStyle: { color: LINE } } },
    series: [
      {
        name: "ΔDice",
        type: "bar",
        data: known.map((r) => ({ value: r.delta, itemStyle: { color: (r.delta as number) >= 0 ? DICE : "#ff4d4f" } })),
      },
    ],
  };
}
