/**
 * Is a worker listening? GET /api/workers/ lists the live workers (presence refreshed every few
 * seconds; a killed worker drops out at once on the embedded default) and the queue depths. A job
 * that has waited longer than a few seconds on a queue that no live worker consumes would otherwise
 * show a progress bar that never moves: `noWorkerMessage` says so instead, and `WorkerWatch` asks the
 * server only while a job waits (at most every few seconds).
 */
import type { ApiClient } from "./api";

export interface WorkerInfo {
  name: string;
  queues: string[];
  device: string;
  pid?: number;
  started_at?: number;
  last_beat_s?: number;
  restarts?: number;
  running_jobs?: number[];
}

export interface WorkersInfo {
  queues: Record<string, number>;
  workers: WorkerInfo[];
}

/** What the watch needs of a job. */
export interface WatchedJob {
  id: number;
  status: string;
  queue?: string;
  worker?: string;
}

export const NO_WORKER = "No worker is running for this queue";
/** How long a job may wait before the absence of a worker is reported. */
export const GRACE_MS = 5000;

/** The live workers that consume `queue` (a worker's own queue `gpu.<node>` is consumed by that node only). */
export function consumersOf(info: WorkersInfo, queue: string): WorkerInfo[] {
  return info.workers.filter((w) => w.queues.includes(queue));
}

/**
 * The message to show instead of the progress bar, or null. Only for a queued or running job that
 * has waited at least `graceMs`: queued with no live consumer of its queue, or running on a worker
 * that is no longer live (its job will be queued again when a worker is back).
 */
export function noWorkerMessage(job: WatchedJob | null, info: WorkersInfo | null, waitedMs: number, graceMs = GRACE_MS): string | null {
  if (!job || !info || waitedMs < graceMs) return null;
  const queue = job.queue || "gpu";
  if (job.status === "queued") {
    if (consumersOf(info, queue).length) return null;
    return `${NO_WORKER} (${queue}): the job waits until one starts.`;
  }
  if (job.status === "running" && job.worker) {
    const node = job.worker.split("#")[0];
    if (info.workers.some((w) => w.name === node)) return null;
    return `${NO_WORKER} (${queue}): the worker running this job stopped; the job is queued again when a worker is back.`;
  }
  return null;
}

/** One line per worker for the manager and admin pages. */
export function describeWorker(w: WorkerInfo, nowS = Date.now() / 1000): string {
  const parts = [`${w.name}`, `queues ${w.queues.filter((q) => !q.startsWith("gpu.")).join(", ") || "none"}`];
  if (w.device) parts.push(w.device);
  if (w.running_jobs?.length) parts.push(`running job ${w.running_jobs.join(", ")}`);
  else parts.push("idle");
  if (typeof w.started_at === "number") parts.push(`up ${formatAge(nowS - w.started_at)}`);
  if (w.restarts) parts.push(`restarted ${w.restarts} time${w.restarts === 1 ? "" : "s"}`);
  if (typeof w.last_beat_s === "number") parts.push(`seen ${formatAge(w.last_beat_s)} ago`);
  return parts.join(" · ");
}

/** Queues that have waiting messages but no live consumer. */
export function unservedQueues(info: WorkersInfo): string[] {
  return Object.keys(info.queues).filter((q) => !consumersOf(info, q).length);
}

export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * Follows one waiting job: call `update(job)` on every poll; it resolves to the message to show (or
 * null). The workers endpoint is asked once the job has waited `graceMs`, then every `intervalMs`.
 */
export class WorkerWatch {
  private jobId: number | null = null;
  private since = 0;
  private lastAsked = -Infinity;
  private info: WorkersInfo | null = null;
  private asking: Promise<void> | null = null;

  constructor(
    private readonly api: Pick<ApiClient, "get">,
    private readonly opts: { graceMs?: number; intervalMs?: number; now?: () => number } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? (() => Date.now()))();
  }

  reset(): void {
    this.jobId = null;
    this.info = null;
    this.lastAsked = -Infinity;
  }

  async update(job: WatchedJob | null): Promise<string | null> {
    if (!job || (job.status !== "queued" && job.status !== "running")) {
      this.reset();
      return null;
    }
    const now = this.now();
    if (job.id !== this.jobId) {
      this.reset();
      this.jobId = job.id;
      this.since = now;
    }
    const grace = this.opts.graceMs ?? GRACE_MS;
    const waited = now - this.since;
    if (waited < grace) return null;
    // while queued, ask every 3 s; a running job's worker is checked less often
    const interval = this.opts.intervalMs ?? (job.status === "queued" ? 3000 : 10000);
    if (now - this.lastAsked >= interval && !this.asking) {
      this.lastAsked = now;
      this.asking = this.api
        .get<WorkersInfo>("/api/workers/")
        .then((info) => {
          this.info = info;
        })
        .catch(() => {
          /* unknown: say nothing rather than something false */
        })
        .finally(() => {
          this.asking = null;
        });
      await this.asking;
    }
    return noWorkerMessage(job, this.info, waited, grace);
  }
}
