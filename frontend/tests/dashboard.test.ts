import { describe, expect, it } from "vitest";
import { fmtSeconds, type ReportGroup, type RoundReport, type TimingReport } from "../src/services/timing";
import { diceBoxplot, phaseBars, reductionLine, timeBoxplot } from "../src/views/dashboardCharts";
import { sortRows } from "../src/views/review";

const summary = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, median: s[1], q1: (s[0] + s[1]) / 2, q3: (s[1] + s[2]) / 2, iqr: (s[2] - s[0]) / 2, min: s[0], max: s[2], values: s };
};
const empty = { n: 0, mean: null, median: null, q1: null, q3: null, iqr: null, min: null, max: null, values: [] };

function group(times: number[], dice: number[] | null, reduction: number): ReportGroup {
  return {
    modality: "CT",
    label: "lesion",
    kind: "volume",
    unit: "lesion",
    n: times.length,
    time_s: summary(times),
    reduction_pct: reduction,
    reduction_median_pct: reduction,
    edit_fraction: dice ? 0.3 : 1,
    dice: dice ? summary(dice) : empty,
    hd95_mm: empty,
    voxels_changed_mean: null,
    phases_mean_s: dice ? { prompting: 6, waiting: 10, correcting: 74, reviewing: 20 } : { prompting: 0, waiting: 0, correcting: 526.7, reviewing: 20 },
    edits_mean: 3,
    annotators: [],
  };
}

function round(number: number, groups: ReportGroup[], manual = false): RoundReport {
  return { id: number, number, status: "closed", is_manual_baseline: manual, model_version: manual ? null : `v${number - 1}`, models_used: [], n: groups.reduce((a, g) => a + g.n, 0), groups };
}

const report: TimingReport = {
  project: { id: 1, name: "Liver", idle_threshold_s: 30 },
  filters: {},
  baseline_round: 1,
  rounds: [
    round(1, [group([500, 520, 560], null, 0)], true),
    round(2, [group([80, 90, 100], [0.8, 0.8, 1], 82.91)]),
    round(3, []), // an open round with nothing submitted yet
  ],
  options: { modalities: ["CT"], labels: ["lesion"], annotators: [] },
};

type Series = { name: string; type: string; data: unknown[] };

describe("dashboard charts", () => {
  it("draws one box per round from the server's five-number summaries", () => {
    const option = timeBoxplot(report) as { xAxis: { data: string[] }; series: Series[] };
    expect(option.xAxis.data).toEqual(["Round 1 (manual)", "Round 2\nv1"]);
    expect(option.series).toHaveLength(1);
    expect(option.series[0].type).toBe("boxplot");
    expect(option.series[0].data.map((d) => (d as { value: unknown[] }).value)).toEqual([
      [500, 510, 520, 540, 560],
      [80, 85, 90, 95, 100],
    ]);
  });

  it("plots the reduction per round and leaves Dice out where no model proposed", () => {
    const line = reductionLine(report) as { series: Series[] };
    expect(line.series[0].data).toEqual([0, 82.91]);
    const dice = diceBoxplot(report) as { series: Series[] };
    expect(dice.series[0].data.map((d) => (d as { value: unknown[] }).value)).toEqual([
      ["-", "-", "-", "-", "-"],
      [0.8, 0.8, 0.8, 0.9, 1],
    ]);
  });

  it("stacks the mean seconds of each phase", () => {
    const bars = phaseBars(report) as { series: Series[] };
    expect(bars.series.map((s) => [s.name, s.data])).toEqual([
      ["prompting", [0, 6]],
      ["waiting", [0, 10]],
      ["correcting", [526.7, 74]],
      ["reviewing", [20, 20]],
    ]);
  });
});

describe("review queue sorting", () => {
  const rows = [
    { id: 1, time: 90 as number | null },
    { id: 2, time: null },
    { id: 3, time: 40 },
    { id: 4, time: 90 },
  ];
  it("sorts both ways with missing values last and ties in their earlier order", () => {
    expect(sortRows(rows, (r) => r.time, 1).map((r) => r.id)).toEqual([3, 1, 4, 2]);
    expect(sortRows(rows, (r) => r.time, -1).map((r) => r.id)).toEqual([1, 4, 3, 2]);
  });
});

describe("fmtSeconds", () => {
  it("shows seconds under a minute and m:ss above", () => {
    expect([fmtSeconds(8.44), fmtSeconds(74.3), fmtSeconds(525.9), fmtSeconds(null)]).toEqual(["8.4 s", "1:14", "8:46", "—"]);
  });
});
