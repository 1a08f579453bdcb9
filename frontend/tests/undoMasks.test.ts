import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { EventService } from "../src/services/events";
import { JobService } from "../src/services/jobs";
import { Workspace } from "../src/views/workspace";
import type { Case, Project } from "../src/types";

const kase = { id: 1, project: 1, name: "ct", kind: "volume", modality: "CT", shape: [3, 2, 2], spacing: [1, 1, 1], frame_rate: null, status: "ready", error: "", assignee: null, image_meta: {}, created_at: "" } as Case;
const project = { id: 1, name: "p", description: "", modality: "CT", labels: [{ name: "lesion", color: "#ff0000" }], settings: {}, created_at: "", my_role: "annotator" } as Project;

/** Two propagation jobs with different results (revisions 100 and 200); records saved revisions. */
function backend() {
  const log: { method: string; url: string; body: unknown }[] = [];
  const prompts: Record<string, unknown>[] = [];
  let jobs = 0;
  let saved = 0;
  const results: Record<number, Record<string, number[]>> = {
    100: { "0": [4], "1": [0, 4], "2": [2, 2] },
    200: { "0": [0, 1, 3], "1": [1, 3], "2": [4] },
  };
  const target = { id: 7, case: 1, label: "lesion", round: 1, status: "draft", key_frame: null, created_by: 1, review_comment: "", current_revision: null };
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
    if (path === "/api/targets/7/propagate/") {
      jobs++;
      return json({ id: jobs, target: 7, status: "queued", frames_done: 0, frames_total: 3 }, 202);
    }
    const f = /^\/api\/propagation-jobs\/(\d+)\/frames\/$/.exec(path);
    if (f) return json({ cursor: 0, frames: {} });
    const j = /^\/api\/propagation-jobs\/(\d+)\/$/.exec(path);
    if (j) return json({ id: Number(j[1]), target: 7, status: "succeeded", frames_done: 3, frames_total: 3, result_revision: 100 * Number(j[1]) });
    const r = /^\/api\/mask-revisions\/(\d+)\/(frames\/)?$/.exec(path);
    if (r && r[2]) return json(results[Number(r[1])]);
    if (r) return json({ id: Number(r[1]), number: 1, source: "model", voxel_count: 6, frame_scores: {} });
    if (path === "/api/mask-revisions/" && method === "POST") {
      saved++;
      return json({ id: 1000 + saved, number: 10 + saved, source: "human", voxel_count: 1 }, 201);
    }
    return json({ detail: `no route ${method} ${url}` }, 404);
  }) as unknown as typeof fetch;
  return { api: ApiClient.create({ fetchImpl, cookies: () => "" }), log, prompts };
}

async function settle(until: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !until(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(until()).toBe(true);
}

/** Every frame of the mask as plain arrays (absent frames as zeros): what the user sees. */
function volume(ws: Workspace): number[][] {
  const m = ws.mask!;
  return [0, 1, 2].map((f) => Array.from(m.get(f) ?? new Uint8Array(m.frameSize)));
}

describe("undo and redo bring back masks, not only prompts", () => {
  it("a click's undo restores the exact volume before its propagation, redo the one after", async () => {
    const { api, log } = backend();
    const timing = EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const ws = new Workspace(api, timing, jobs, kase, project);
    const messages: string[] = [];
    ws.events.on("message", (m) => messages.push(m.text));
    await ws.loadTargets();

    await ws.placeBox(1, [0, 0, 1, 1]);
    await settle(() => ws.job?.status === "succeeded" && ws.mask!.baseRevision === 100);
    const stroke = Uint8Array.from([1, 1, 1, 1]);
    const strokeBefore = ws.mask!.get(0)?.slice() ?? null;
    ws.mask!.set(0, stroke.slice());
    ws.commitStroke(0, strokeBefore, stroke, "brush");
    await ws.flushSave();
    const beforeClick = volume(ws);

    await ws.placePoint(1, [0.5, 0.5], 1);
    await settle(() => ws.job?.id === 2 && ws.job?.status === "succeeded" && ws.mask!.baseRevision === 200);
    const afterClick = volume(ws);
    expect(afterClick).not.toEqual(beforeClick);

    await ws.doUndo();
    expect(volume(ws)).toEqual(beforeClick);
    expect(log.some((r) => r.url === "/api/prompts/2/withdraw/")).toBe(true);
    expect(messages).toContain("Undone: point prompt on slice 2.");
    await ws.flushSave();
    const restoreSave = log.filter((r) => r.method === "POST" && r.url === "/api/mask-revisions/").at(-1)!;
    expect(Object.keys((restoreSave.body as { slices: object }).slices).sort()).toEqual(["0", "1", "2"]);

    await ws.doRedo();
    expect(volume(ws)).toEqual(afterClick);
    expect(messages).toContain("Redone: point prompt on slice 2.");

    await ws.doUndo(); // the click again
    await ws.doUndo(); // the stroke: frame 0 as the first propagation left it
    expect(volume(ws)[0]).toEqual([0, 0, 0, 0]);
    expect(volume(ws).slice(1)).toEqual(beforeClick.slice(1));
    ws.destroy();
    jobs.destroy();
  });

  it("a propagation run again on its own is a step that undo takes back", async () => {
    const { api } = backend();
    const timing = EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const ws = new Workspace(api, timing, jobs, kase, project);
    await ws.loadTargets();
    await ws.placeBox(1, [0, 0, 1, 1]);
    await settle(() => ws.job?.status === "succeeded" && ws.mask!.baseRevision === 100);
    const first = volume(ws);
    await ws.propagate();
    await settle(() => ws.job?.id === 2 && ws.job?.status === "succeeded" && ws.mask!.baseRevision === 200);
    expect(volume(ws)).not.toEqual(first);
    await ws.doUndo();
    expect(volume(ws)).toEqual(first);
    ws.destroy();
    jobs.destroy();
  });
});

describe("propagating from here and clearing a range", () => {
  it("forward from here asks for that direction and range; a cleared range is one undoable step", async () => {
    const { api, log, prompts } = backend();
    const timing = EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const ws = new Workspace(api, timing, jobs, kase, project);
    await ws.loadTargets();
    await ws.placeBox(1, [0, 0, 1, 1]);
    await settle(() => ws.job?.status === "succeeded" && ws.mask!.baseRevision === 100);
    const full = volume(ws);

    expect(ws.clearRange(1, 2)).toBe(2);
    expect(volume(ws)).toEqual([full[0], [0, 0, 0, 0], [0, 0, 0, 0]]);
    await ws.doUndo();
    expect(volume(ws)).toEqual(full);
    await ws.doRedo();
    expect(volume(ws).slice(1)).toEqual([[0, 0, 0, 0], [0, 0, 0, 0]]);

    await ws.propagateFrom(1, "forward");
    const request = log.filter((r) => r.url === "/api/targets/7/propagate/").at(-1)!;
    expect(request.body).toEqual({ direction: "forward", frame_range: [1, 2] });
    // the cleared slices went first, as empty mask prompts
    expect(prompts.filter((p) => p.kind === "mask").map((p) => p.frame)).toEqual([1, 2]);
    ws.destroy();
    jobs.destroy();
  });
});

describe("jumping to suspect slices", () => {
  it("J goes to the next slice the worker flagged, wrapping around", () => {
    const { api } = backend();
    const timing = EventService.create({ transport: async () => "ok", setTimer: () => 0, clearTimer: () => undefined });
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const ws = new Workspace(api, timing, jobs, kase, project);
    ws.scores = { "3": { suspect: ["lost"] }, "7": { iou: 0.9, suspect: [] }, "9": { suspect: ["shift"] } } as never;
    expect(ws.suspectFrames()).toEqual([3, 9]);
    expect([ws.nextSuspect(0), ws.nextSuspect(3), ws.nextSuspect(9)]).toEqual([3, 9, 3]);
    ws.scores = {};
    expect(ws.nextSuspect(0)).toBeNull();
    ws.destroy();
    jobs.destroy();
  });
});
