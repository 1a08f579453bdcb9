import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { EventService } from "../src/services/events";
import { JobService } from "../src/services/jobs";
import { Workspace } from "../src/views/workspace";
import type { Case, Project } from "../src/types";

const kase = { id: 1, project: 1, name: "ct", kind: "volume", modality: "CT", shape: [3, 2, 2], spacing: [1, 1, 1], frame_rate: null, status: "ready", error: "", assignee: null, image_meta: {}, created_at: "" } as Case;
const project = { id: 1, name: "p", description: "", modality: "CT", labels: [{ name: "lesion", color: "#ff0000" }], settings: {}, created_at: "", my_role: "annotator" } as Project;

/** An in-memory backend for the endpoints the workspace uses; records every request. */
function backend(rounds: { id: number; status: string; is_manual_baseline: boolean }[] = []) {
  const log: { method: string; url: string; body: unknown }[] = [];
  const prompts: Record<string, unknown>[] = [];
  let revisions = 0;
  let jobPolls = 0;
  const target = { id: 7, case: 1, label: "lesion", round: 1, status: "draft", key_frame: null, created_by: 1, review_comment: "", current_revision: null as null | Record<string, unknown> };
  const fetchImpl = (async (url: string, init: RequestInit) => {
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    log.push({ method, url, body });
    const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status });
    const path = url.split("?")[0];
    if (method === "POST" && path === "/api/targets/") return json(target, 201);
    if (path === "/api/targets/") return json({ count: 1, next: null, previous: null, results: [target] });
    if (path === "/api/prompts/" && method === "POST") {
      const p = { id: prompts.length + 1, withdrawn: false, ...body };
      prompts.push(p);
      return json(p, 201);
    }
    if (path === "/api/prompts/") return json({ count: prompts.length, next: null, previous: null, results: prompts });
    const w = /^\/api\/prompts\/(\d+)\/(withdraw|restore)\/$/.exec(path);
    if (w) return json({ ...prompts[Number(w[1]) - 1], withdrawn: w[2] === "withdraw" });
    if (path === "/api/propagation-jobs/") return json({ count: 0, next: null, previous: null, results: [] });
    if (path === "/api/targets/7/propagate/") return json({ id: 3, target: 7, status: "queued", frames_done: 0, frames_total: 3 }, 202);
    if (path === "/api/propagation-jobs/3/frames/") return json({ cursor: 1, frames: jobPolls === 0 ? { "1": { rle: [0, 4], object_score: 5, iou: 0.95 } } : {} });
    if (path === "/api/propagation-jobs/3/") {
      jobPolls++;
      return json({ id: 3, target: 7, status: "succeeded", frames_done: 3, frames_total: 3, result_revision: 100 });
    }
    if (path === "/api/mask-revisions/100/frames/") return json({ "0": [4], "1": [0, 4], "2": [2, 2] });
    if (path === "/api/mask-revisions/100/") return json({ id: 100, number: 1, source: "model", voxel_count: 6, frame_scores: { "1": { object_score: 5, iou: 0.95 }, "2": { object_score: 2, iou: 0.6 } } });
    if (path === "/api/mask-revisions/" && method === "POST") {
      revisions++;
      return json({ id: 100 + revisions, number: 1 + revisions, source: "human", voxel_count: 1 }, 201);
    }
    if (path === "/api/targets/7/submit/") return json({ ...target, status: "submitted" });
    if (path === "/api/rounds/") return json({ count: rounds.length, next: null, previous: null, results: rounds });
    return json({ detail: `no route ${method} ${url}` }, 404);
  }) as unknown as typeof fetch;
  return { api: ApiClient.create({ fetchImpl, cookies: () => "" }), log, prompts };
}

async function settle(ws: Workspace, until: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !until(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(until()).toBe(true);
  void ws;
}

describe("Workspace (the MedSAM2 loop without the DOM)", () => {
  it("box -> prompt + propagation -> mask and scores -> brush -> saved revision -> undo -> submit", async () => {
    const { api, log, prompts } = backend();
    const timing = EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const ws = new Workspace(api, timing, jobs, kase, project);
    await ws.loadTargets();

    // no target yet: the box creates one, places the prompt and propagates
    await ws.placeBox(1, [0, 0, 2, 2]);
    expect(prompts[0]).toMatchObject({ target: 7, frame: 1, kind: "box", payload: { box: [0, 0, 2, 2] } });
    await settle(ws, () => ws.job?.status === "succeeded" && ws.mask!.framesWithMask().length === 2);
    expect(ws.mask!.framesWithMask()).toEqual([1, 2]);
    expect(ws.scores["2"]).toEqual({ object_score: 2, iou: 0.6 });
    expect(ws.mask!.baseRevision).toBe(100);

    // a brush stroke on frame 0 is saved as a human revision over the model's
    const after = Uint8Array.from([1, 0, 0, 0]);
    ws.mask!.set(0, after.slice());
    ws.commitStroke(0, null, after, "brush");
    await ws.flushSave();
    const save = log.find((r) => r.method === "POST" && r.url === "/api/mask-revisions/")!;
    expect(save.body).toEqual({ target: 7, source: "human", slices: { "0": { rle: [0, 1, 3] } }, base_revision: 100 });

    // undo the stroke (restores the empty frame, saved again), then undo the box (withdrawn)
    await ws.doUndo();
    await ws.flushSave();
    expect(ws.mask!.area(0)).toBe(0);
    await ws.doUndo();
    expect(log.some((r) => r.url === "/api/prompts/1/withdraw/")).toBe(true);
    await ws.doRedo();
    expect(log.some((r) => r.url === "/api/prompts/1/restore/")).toBe(true);

    // propagating again sends the brushed frame as a mask prompt first
    await ws.propagate();
    expect(prompts[1]).toMatchObject({ frame: 0, kind: "mask", payload: { rle: [4], height: 2, width: 2 } });

    await ws.submit();
    expect(ws.target!.status).toBe("submitted");
    const kinds = timing.snapshot().map((e) => e.kind);
    for (const k of ["target_opened", "prompt_placed", "propagation_requested", "propagation_received", "edit_stroke", "undo", "redo", "submit"]) expect(kinds).toContain(k);
    expect(timing.snapshot().every((e) => e.target === 7 && e.case === 1)).toBe(true);
    ws.destroy();
    jobs.destroy();
  });

  it("in a manual-baseline round the model is never asked: no prompt, no propagation", async () => {
    const { api, log } = backend([{ id: 1, status: "open", is_manual_baseline: true }]);
    const timing = EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });
    const ws = new Workspace(api, timing, JobService.create(api, { sleep: async () => undefined }), kase, project);
    const said: string[] = [];
    ws.events.on("message", ({ text }) => said.push(text));
    await ws.loadRounds();
    expect(ws.manualBaseline).toBe(true); // the open round, before any target exists
    await ws.loadTargets();
    await ws.select(7);
    expect(ws.manualBaseline).toBe(true); // the target's round
    await ws.placeBox(1, [0, 0, 2, 2]);
    await ws.propagate();
    expect(log.filter((r) => r.url.includes("/propagate/") || r.url.startsWith("/api/prompts/") && r.method === "POST")).toEqual([]);
    expect(said).toEqual([expect.stringContaining("manual-baseline round"), expect.stringContaining("manual-baseline round")]);
  });
});
