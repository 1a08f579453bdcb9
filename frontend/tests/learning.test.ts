import { describe, expect, it } from "vitest";
import {
  diffSummary,
  diffTargets,
  fmtEta,
  heldOut,
  fmtLr,
  historySeries,
  lineage,
  progressText,
  runFraction,
  versionActions,
  type ModelActivation,
  type ModelVersion,
  type TrainingRun,
} from "../src/services/learning";
import { diffBars, trainingCurves } from "../src/views/learningCharts";

function version(id: number, parent: number | null, extra: Partial<ModelVersion> = {}): ModelVersion {
  return {
    id, project: 1, name: `v${id}`, checkpoint_key: `models/1/v${id}.pt`, sha256: "", config_name: "medsam2_t512", parent,
    training_run: null, metrics: {}, status: "candidate", status_reason: "", verified_at: "2026-12-01T00:00:00Z", round: null,
    snapshot_hash: "", hyperparameters: {}, code_version: "", created_by: null, created_at: `2026-12-01T00:00:0${id}Z`, ...extra,
  };
}

function run(extra: Partial<TrainingRun>): TrainingRun {
  return {
    id: 7, project: 1, round: 2, base_model: null, status: "running", progress: 0, hyperparameters: {}, metrics: {}, log: "",
    cancel_requested: false, requested_by: 1, created_at: "", started_at: null, finished_at: null, step: 0, total_steps: 0,
    loss: null, learning_rate: null, eta_s: null, last_validation: {}, history: [], worker: "", heartbeat_at: null, attempts: 1,
    checkpoint_key: "", error: "", ...extra,
  };
}

describe("training run progress", () => {
  it("formats an ETA in seconds, minutes or hours, and a dash when unknown", () => {
    expect(fmtEta(null)).toBe("—");
    expect(fmtEta(-3)).toBe("—");
    expect(fmtEta(44.6)).toBe("45 s");
    expect(fmtEta(725)).toBe("12 min 05 s");
    expect(fmtEta(3 * 3600 + 7 * 60 + 59)).toBe("3 h 07 min");
  });

  it("takes the fraction from step/total, clamps it, and shows 100 % for a finished run", () => {
    expect(runFraction(run({ step: 30, total_steps: 120 }))).toBe(0.25);
    expect(runFraction(run({ step: 130, total_steps: 120 }))).toBe(1);
    expect(runFraction(run({ progress: 0.4 }))).toBe(0.4);
    expect(runFraction(run({ status: "succeeded", step: 10, total_steps: 120 }))).toBe(1);
  });

  it("says step, percent and ETA while running, and the reason when failed", () => {
    expect(progressText(run({ step: 30, total_steps: 120, eta_s: 90 }))).toBe("step 30 / 120 · 25.0 % · ETA 1 min 30 s");
    expect(progressText(run({ status: "queued" }))).toBe("Queued: waiting for a training worker");
    expect(progressText(run({ status: "failed", step: 12, error: "CUDA out of memory" }))).toBe("Failed at step 12: CUDA out of memory");
    expect(progressText(run({ status: "cancelled", step: 40, total_steps: 120 }))).toBe("Cancelled at step 40 / 120");
  });

  it("prints small learning rates in exponent form", () => {
    expect(fmtLr(5e-5)).toBe("5.00e-5");
    expect(fmtLr(0.01)).toBe("0.0100");
    expect(fmtLr(null)).toBe("—");
  });

  it("splits the history into loss and validation series sorted by step", () => {
    const s = historySeries([
      { step: 2, loss: 0.8, lr: 1e-4 },
      { step: 1, loss: 0.9, lr: 1e-4 },
      { step: 2, val_dice: 0.61, val_nsd: 0.7 },
      { step: 3, loss: 0.7 },
      { step: 3, val_dice: null },
    ]);
    expect(s.loss).toEqual([[1, 0.9], [2, 0.8], [3, 0.7]]);
    expect(s.dice).toEqual([[2, 0.61]]);
    expect(s.nsd).toEqual([[2, 0.7]]);
  });

  it("plots loss on the left axis and Dice on a 0..1 right axis over the whole run", () => {
    const option = trainingCurves([{ step: 5, loss: 1.2 }, { step: 10, loss: 1.0 }, { step: 10, val_dice: 0.5 }], 300) as {
      xAxis: { max: number };
      yAxis: { min?: number; max?: number }[];
      series: { name: string; yAxisIndex: number; data: [number, number][] }[];
    };
    expect(option.xAxis.max).toBe(300);
    expect(option.yAxis[1]).toMatchObject({ min: 0, max: 1 });
    expect(option.series.map((s) => [s.name, s.yAxisIndex, s.data.length])).toEqual([["loss", 0, 2], ["validation Dice", 1, 1]]);
  });
});

describe("the registry", () => {
  const parent = version(1, null, { status: "active" });
  const child = version(2, 1, {
    status: "rejected",
    metrics: {
      held_out: { candidate: { mean_dice: 0.7 }, parent: { mean_dice: 0.75 } },
      per_target: [
        { target: 11, case: 3, modality: "MR", dice: 0.8, nsd: 0.9, parent_dice: 0.7, parent_nsd: 0.8 },
        { target: 12, case: 4, modality: "US", dice: 0.6, nsd: 0.5, parent_dice: 0.8, parent_nsd: 0.6 },
      ],
    },
  });
  const grandchild = version(3, 2, { metrics: { per_target: [{ target: 11, case: 3, modality: "MR", dice: 0.9, nsd: 0.95 }] } });
  const orphan = version(4, 99);

  it("orders versions as a tree: roots first, children under their parent, with depth", () => {
    expect(lineage([grandchild, orphan, child, parent]).map((x) => [x.version.id, x.depth])).toEqual([[1, 0], [2, 1], [3, 2], [4, 0]]);
  });

  it("compares a candidate with its parent through the parent's Dice in the candidate's evaluation", () => {
    const rows = diffTargets(parent, child, [parent, child]);
    expect(rows).toEqual([
      { target: 11, case: 3, modality: "MR", a: 0.7, b: 0.8, delta: 0.1 },
      { target: 12, case: 4, modality: "US", a: 0.8, b: 0.6, delta: -0.2 },
    ]);
    expect(diffSummary(rows)).toEqual({ n: 2, meanDelta: -0.05, better: 1, worse: 1 });
  });

  it("takes a parent's held-out summary from its child's evaluation when it has none of its own", () => {
    expect(heldOut(parent, [parent, child])).toEqual({ mean_dice: 0.75 });
    expect(heldOut(child, [parent, child])).toEqual({ mean_dice: 0.7 });
    expect(heldOut(orphan, [parent, child, orphan])).toBeNull();
  });

  it("leaves the difference empty where one version has no Dice for a target", () => {
    const rows = diffTargets(child, grandchild, [parent, child, grandchild]);
    expect(rows.map((r) => [r.target, r.a, r.b, r.delta])).toEqual([[11, 0.8, 0.9, 0.1], [12, 0.6, null, null]]);
    expect(diffSummary(rows)).toEqual({ n: 1, meanDelta: 0.1, better: 1, worse: 0 });
  });

  it("offers promote for a verified version never active, roll back for one that was, nothing for pending or active", () => {
    const log: ModelActivation[] = [{ id: 1, project: 1, version: 2, previous: 1, kind: "promote", by: 1, reason: "x", created_at: "" }];
    expect(versionActions(parent, log)).toEqual({ promote: false, rollback: false });
    expect(versionActions(child, log)).toEqual({ promote: false, rollback: true });
    expect(versionActions(grandchild, log)).toEqual({ promote: true, rollback: false });
    expect(versionActions(version(5, null, { status: "pending", verified_at: null }), log)).toEqual({ promote: false, rollback: false });
    expect(versionActions(version(6, null, { status: "retired" }), [])).toEqual({ promote: false, rollback: true });
  });

  it("colours the per-target difference bars by sign and skips unknown ones", () => {
    const option = diffBars(diffTargets(child, grandchild, [parent, child, grandchild]), "A", "B") as {
      xAxis: { data: string[] };
      series: { data: { value: number; itemStyle: { color: string } }[] }[];
    };
    expect(option.xAxis.data).toEqual(["MR #11"]);
    expect(option.series[0].data).toEqual([{ value: 0.1, itemStyle: { color: "#73d13d" } }]);
  });
});
