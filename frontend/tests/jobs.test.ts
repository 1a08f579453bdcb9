import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { JobService, normaliseFrames } from "../src/services/jobs";
import { EventService, trackPage, type TimingEvent } from "../src/services/events";

/** A fake backend: a job that publishes one frame per poll and finishes after `frames` polls. */
function fakeJobApi(frames: number) {
  let polls = 0;
  const calls: string[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    calls.push(`${init.method ?? "GET"} ${url}`);
    const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status });
    if (url.startsWith("/api/targets/9/propagate/")) return json({ id: 5, status: "queued", frames_done: 0, frames_total: frames }, 202);
    const m = /\/api\/propagation-jobs\/5\/frames\/\?since=(\d+)/.exec(url);
    if (m) {
      const since = Number(m[1]);
      const out: Record<string, unknown> = {};
      if (since < frames) out[String(since)] = { rle: [1, 1, 2], object_score: 2.5, iou: 0.9 };
      return json({ job: 5, status: "running", finished: false, cursor: Math.min(frames, since + 1), frames: out });
    }
    if (url === "/api/propagation-jobs/5/") {
      polls++;
      const done = polls >= frames;
      return json({ id: 5, status: done ? "succeeded" : "running", frames_done: Math.min(polls, frames), frames_total: frames, result_revision: done ? 77 : null });
    }
    return json({ detail: "Not found." }, 404);
  }) as unknown as typeof fetch;
  return { api: ApiClient.create({ fetchImpl, cookies: () => "" }), calls };
}

describe("JobService", () => {
  it("starts a job and streams partial frames, progress and completion", async () => {
    const { api, calls } = fakeJobApi(3);
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const frames: string[] = [];
    const progress: number[] = [];
    const done = new Promise<number | null>((resolve) => jobs.on("done", (j) => resolve(j.result_revision)));
    jobs.on("frames", ({ frames: f }) => frames.push(...Object.keys(f)));
    jobs.on("progress", (j) => progress.push(j.frames_done));
    const job = await jobs.start(9, { kind: "propagate" });
    expect(job.id).toBe(5);
    expect(await done).toBe(77);
    expect(frames).toEqual(["0", "1", "2"]);
    expect(progress).toEqual([1, 2, 3]);
    expect(calls[0]).toBe("POST /api/targets/9/propagate/");
    expect(calls).toContain("GET /api/propagation-jobs/5/frames/?since=2");
    jobs.destroy();
  });

  it("gives up with an error event after repeated failures", async () => {
    const api = ApiClient.create({ fetchImpl: (async () => new Response("boom", { status: 502 })) as unknown as typeof fetch, cookies: () => "" });
    const jobs = JobService.create(api, { sleep: async () => undefined });
    const errors: string[] = [];
    jobs.on("error", (e) => errors.push(e.message));
    expect(await jobs.follow(1)).toBeNull();
    expect(errors).toEqual(["boom"]);
  });

  it("accepts frames as an object or as a list", () => {
    expect(normaliseFrames([{ frame: 3, rle: [4] }])).toEqual({ "3": [4] });
    expect(normaliseFrames({ "1": { rle: [2] } })).toEqual({ "1": { rle: [2] } });
    expect(normaliseFrames(null)).toEqual({});
  });
});

describe("trackPage", () => {
  it("records focus, blur and visibility with context and beacons the queue when hidden", () => {
    const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
    const win = Object.assign(new EventTarget(), { document: doc }) as unknown as Window & typeof globalThis;
    const svc = EventService.create({ transport: async () => "retry", setTimer: () => 0, clearTimer: () => undefined });
    const beaconed: TimingEvent[][] = [];
    const stop = trackPage(svc, (b) => (beaconed.push(b), true), win);
    win.dispatchEvent(new Event("focus")); // no case/target yet: not recorded
    expect(svc.pending).toBe(0);
    svc.setContext({ case: 2, target: 8 });
    win.dispatchEvent(new Event("blur"));
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    expect(svc.snapshot().map((e) => e.kind)).toEqual(["blur", "visibility_hidden"]);
    expect(beaconed.flat().map((e) => e.kind)).toEqual(["blur", "visibility_hidden"]);
    stop();
    win.dispatchEvent(new Event("focus"));
    expect(svc.pending).toBe(2);
  });
});
