import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { EventService } from "../src/services/events";
import { JobService } from "../src/services/jobs";
import { Workspace } from "../src/views/workspace";
import type { Case, Project } from "../src/types";

const kase = { id: 1, project: 1, name: "ct", kind: "volume", modality: "CT", shape: [4, 2, 2], spacing: [1, 1, 1], frame_rate: null, status: "ready", error: "", assignee: null, image_meta: {}, created_at: "" } as Case;
const project = { id: 1, name: "p", description: "", modality: "CT", labels: [{ name: "lesion", color: "#ff0000" }], settings: {}, created_at: "", my_role: "annotator" } as Project;
const SUSPECT = { object_score: 1, iou: 0.5, suspect: ["area change"] };

/**
 * One target whose current revision (100) flags slices 0 and 3 as suspect; its propagation job's
 * first poll brings the key slice 2 together with the propagated slices 0, 1 and 3.
 */
function backend(opts: { current: boolean }) {
  const prompts: Record<string, unknown>[] = [];
  let polls = 0;
  const target = { id: 7, case: 1, label: "lesion", round: 1, status: "draft", key_frame: null, created_by: 1, review_comment: "", current_revision: opts.current ? { id: 100, number: 1, source: "model", voxel_count: 4 } : null };
  const fetchImpl = (async (url: string, init: RequestInit) => {
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
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
    if (path === "/api/propagation-jobs/") return json({ count: 0, next: null, previous: null, results: [] });
    if (path === "/api/targets/7/propagate/") return json({ id: 3, target: 7, status: "queued", frames_done: 0, frames_total: 4 }, 202);
    if (path === "/api/propagation-jobs/3/frames/") {
      const first = { "0": [3, 1], "1": [2, 2], "2": { rle: [0, 4], object_score: 6, iou: 0.9 }, "3": [1, 3] };
      return json({ cursor: polls === 0 ? 4 : 4, frames: polls === 0 ? first : {} });
    }
    if (path === "/api/propagation-jobs/3/") {
      polls++;
      return json({ id: 3, target: 7, status: polls === 1 ? "running" : "succeeded", frames_done: 4, frames_total: 4, result_revision: 100 });
    }
    if (path === "/api/mask-revisions/100/frames/") return json({ "0": [3, 1], "1": [2, 2], "2": [0, 4], "3": [1, 3] });
    if (path === "/api/mask-revisions/100/") return json({ id: 100, number: 1, source: "model", voxel_count: 10, frame_scores: { "0": SUSPECT, "1": { object_score: 5, iou: 0.9 }, "2": { object_score: 6, iou: 0.9 }, "3": SUSPECT } });
    return json({ detail: `no route ${method} ${url}` }, 404);
  }) as unknown as typeof fetch;
  return ApiClient.create({ fetchImpl, cookies: () => "" });
}

const timing = () => EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });

async function settle(until: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !until(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(until()).toBe(true);
}

describe("submitting with unvisited suspect slices asks first", () => {
  it("the workspace tracks which slices were seen and which suspect slices were not", async () => {
    const api = backend({ current: true });
    const ws = new Workspace(api, timing(), JobService.create(api, { sleep: async () => undefined }), kase, project);
    await ws.loadTargets();
    await ws.select(7);
    expect(ws.suspectFrames()).toEqual([0, 3]);
    expect(ws.unvisitedSuspects()).toEqual([0, 3]);
    ws.visit(2);
    ws.visit(3);
    expect([...ws.visited].sort()).toEqual([2, 3]);
    expect(ws.unvisitedSuspects()).toEqual([0]);
    ws.visit(0);
    expect(ws.unvisitedSuspects()).toEqual([]);
    // another target (or the same one opened again) starts unvisited
    await ws.select(7);
    expect(ws.visited.size).toBe(0);
    expect(ws.unvisitedSuspects()).toEqual([0, 3]);
    ws.destroy();
  });
});

describe("the first mask first", () => {
  it("a first poll with the key slice and propagated slices draws the key slice alone first", async () => {
    const api = backend({ current: false });
    let release: () => void = () => undefined;
    const jobs = JobService.create(api, { sleep: () => new Promise<void>((r) => (release = r)) });
    const ws = new Workspace(api, timing(), jobs, kase, project);
    const deferred: (() => void)[] = [];
    ws.deferDraw = (fn) => void deferred.push(fn);
    const drawn: number[][] = [];
    const firsts: number[][] = [];
    ws.events.on("change", () => {
      const frames = ws.mask?.framesWithMask() ?? [];
      if (frames.length && JSON.stringify(frames) !== JSON.stringify(drawn.at(-1))) drawn.push(frames);
    });
    ws.events.on("firstFrames", (f) => firsts.push(f));
    await ws.loadTargets();
    await ws.placeBox(2, [0, 0, 1, 1]);
    await settle(() => deferred.length === 1 && ws.job?.status === "running");
    // the key slice (2) was drawn by itself and the view was told to go there
    expect(drawn).toEqual([[2]]);
    expect(firsts).toEqual([[2]]);
    // a frame later the propagated slices follow
    deferred[0]();
    expect(drawn).toEqual([[2], [0, 1, 2, 3]]);
    release();
    await settle(() => ws.job?.status === "succeeded" && ws.mask?.baseRevision === 100);
    expect(ws.mask!.framesWithMask()).toEqual([0, 1, 2, 3]);
    ws.destroy();
  });

  it("the rest of the first poll is dropped when the job stopped before the next frame (undo, cancel)", async () => {
    const api = backend({ current: false });
    const jobs = JobService.create(api, { sleep: () => new Promise<void>(() => undefined) });
    const ws = new Workspace(api, timing(), jobs, kase, project);
    const deferred: (() => void)[] = [];
    ws.deferDraw = (fn) => void deferred.push(fn);
    await ws.loadTargets();
    await ws.placeBox(2, [0, 0, 1, 1]);
    await settle(() => deferred.length === 1 && ws.job?.status === "running");
    ws.job = { ...ws.job!, status: "cancelled" };
    deferred[0]();
    expect(ws.mask!.framesWithMask()).toEqual([2]);
    ws.destroy();
  });
});
