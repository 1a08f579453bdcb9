import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { EventService } from "../src/services/events";
import { JobService } from "../src/services/jobs";
import { consumersOf, describeWorker, NO_WORKER, noWorkerMessage, unservedQueues, WorkerWatch, type WorkersInfo } from "../src/services/workers";
import { Workspace } from "../src/views/workspace";
import type { Case, Project } from "../src/types";

const demo = { name: "demo@host", queues: ["default", "gpu", "gpu.demo@host", "training"], device: "cpu", pid: 42, started_at: 1000, last_beat_s: 2, restarts: 1, running_jobs: [7] };
const live: WorkersInfo = { queues: { default: 0, gpu: 2, training: 0 }, workers: [demo] };
const none: WorkersInfo = { queues: { default: 0, gpu: 2, training: 0 }, workers: [] };
const queued = { id: 3, status: "queued", queue: "gpu" };

describe("noWorkerMessage", () => {
  it("says nothing while the job is young, or while a live worker consumes its queue", () => {
    expect(noWorkerMessage(queued, none, 4999)).toBeNull();
    expect(noWorkerMessage(queued, live, 60000)).toBeNull();
    expect(noWorkerMessage(queued, null, 60000)).toBeNull(); // unknown: no claim
  });

  it("names the missing worker once the job has waited past the grace period", () => {
    const msg = noWorkerMessage(queued, none, 5000);
    expect(msg).toContain(NO_WORKER);
    expect(msg).toContain("(gpu)");
    expect(NO_WORKER.toLowerCase()).toBe("no worker is running for this queue");
  });

  it("knows a worker's own queue is consumed by that worker only", () => {
    const own = { id: 4, status: "queued", queue: "gpu.other@host" };
    expect(noWorkerMessage(own, live, 6000)).toContain("gpu.other@host");
    expect(noWorkerMessage({ ...own, queue: "gpu.demo@host" }, live, 6000)).toBeNull();
    expect(consumersOf(live, "training").map((w) => w.name)).toEqual(["demo@host"]);
  });

  it("reports a running job whose worker is gone, and only that", () => {
    const running = { id: 5, status: "running", queue: "gpu", worker: "demo@host#123" };
    expect(noWorkerMessage(running, live, 9000)).toBeNull();
    expect(noWorkerMessage(running, none, 9000)).toContain("stopped");
    expect(noWorkerMessage({ ...running, status: "succeeded" }, none, 9000)).toBeNull();
  });
});

describe("workers page lines", () => {
  it("describes a worker's state and the queues nobody serves", () => {
    const line = describeWorker(demo, 1000 + 125);
    expect(line).toContain("demo@host");
    expect(line).toContain("queues default, gpu, training");
    expect(line).toContain("running job 7");
    expect(line).toContain("up 2 min");
    expect(line).toContain("restarted 1 time");
    expect(describeWorker({ name: "w@h", queues: ["default"], device: "" })).toContain("idle");
    expect(unservedQueues(none)).toEqual(["default", "gpu", "training"]);
    expect(unservedQueues({ ...live, workers: [{ ...demo, queues: ["default"] }] })).toEqual(["gpu", "training"]);
  });
});

describe("WorkerWatch", () => {
  it("asks the server only after the grace period, then at most every interval", async () => {
    let now = 0;
    const asked: string[] = [];
    let answer: WorkersInfo = none;
    const api = { get: async <T,>(path: string) => (asked.push(path), answer as unknown as T) };
    const watch = new WorkerWatch(api, { now: () => now, graceMs: 5000, intervalMs: 3000 });
    expect(await watch.update(queued)).toBeNull();
    now = 4000;
    expect(await watch.update(queued)).toBeNull();
    expect(asked).toEqual([]);
    now = 5000;
    expect(await watch.update(queued)).toContain(NO_WORKER);
    now = 6000;
    answer = live; // a worker came back; not asked again before the interval
    expect(await watch.update(queued)).toContain(NO_WORKER);
    now = 8000;
    expect(await watch.update(queued)).toBeNull();
    expect(asked.length).toBe(2);
    // a finished job resets; a new job gets its own grace period
    expect(await watch.update({ ...queued, status: "succeeded" })).toBeNull();
    answer = none;
    now = 9000;
    expect(await watch.update({ ...queued, id: 9 })).toBeNull();
  });

  it("says nothing when the workers endpoint fails", async () => {
    let now = 0;
    const api = { get: async () => Promise.reject(new Error("offline")) };
    const watch = new WorkerWatch(api, { now: () => now });
    await watch.update(queued);
    now = 10000;
    expect(await watch.update(queued)).toBeNull();
  });
});

describe("Workspace", () => {
  it("replaces an endless progress bar by 'no worker is running for this queue'", async () => {
    const kase = { id: 1, project: 1, name: "ct", kind: "volume", modality: "CT", shape: [3, 2, 2], spacing: [1, 1, 1], frame_rate: null, status: "ready", error: "", assignee: null, image_meta: {}, created_at: "" } as Case;
    const project = { id: 1, name: "p", description: "", modality: "CT", labels: [{ name: "lesion", color: "#ff0000" }], settings: {}, created_at: "", my_role: "annotator" } as Project;
    const target = { id: 7, case: 1, label: "lesion", round: 1, status: "draft", key_frame: null, created_by: 1, review_comment: "", current_revision: null };
    let workersUp = false;
    const fetchImpl = (async (url: string, init: RequestInit) => {
      const method = init.method ?? "GET";
      const path = url.split("?")[0];
      const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status });
      const page = (results: unknown[]) => json({ count: results.length, next: null, previous: null, results });
      if (path === "/api/targets/") return page([target]);
      if (path === "/api/prompts/" && method === "POST") return json({ id: 1, target: 7, frame: 1, kind: "box", withdrawn: false }, 201);
      if (path === "/api/prompts/" || path === "/api/propagation-jobs/") return page([]);
      if (path === "/api/targets/7/propagate/") return json({ id: 3, target: 7, status: "queued", queue: "gpu", frames_done: 0, frames_total: 0 }, 202);
      if (path === "/api/propagation-jobs/3/frames/") return json({ cursor: 0, frames: {} });
      if (path === "/api/propagation-jobs/3/") return json({ id: 3, target: 7, status: "queued", queue: "gpu", frames_done: 0, frames_total: 0 });
      if (path === "/api/workers/") return json(workersUp ? live : none);
      return json({ detail: "no route" }, 404);
    }) as unknown as typeof fetch;
    const api = ApiClient.create({ fetchImpl, cookies: () => "" });
    let now = 0;
    const jobs = JobService.create(api, { intervalMs: 1, sleep: () => new Promise((r) => setTimeout(r, 1)) });
    const ws = new Workspace(api, EventService.create({ transport: async () => ({ ok: true }) as never, storage: null }), jobs, kase, project, {
      workerWatch: new WorkerWatch(api, { now: () => now, graceMs: 5000, intervalMs: 0 }),
    });
    await ws.loadTargets();
    await ws.select(7);
    await ws.placeBox(1, [0, 0, 1, 1]);
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
      expect(cond()).toBe(true);
    };
    await until(() => ws.job?.id === 3);
    expect(ws.workerProblem).toBeNull(); // young job
    now = 6000;
    await until(() => ws.workerProblem !== null);
    expect(ws.workerProblem).toContain("No worker is running for this queue (gpu)");
    workersUp = true;
    await until(() => ws.workerProblem === null);
    ws.destroy();
    jobs.destroy();
  });
});
