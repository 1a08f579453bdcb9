/**
 * Propagation jobs: start one (POST /api/targets/{id}/propagate/) and follow it by polling
 * GET /api/propagation-jobs/{id}/ and /frames/?since=<cursor> for partial results, so the key-slice
 * mask shows as soon as the worker writes it and the rest fills in while the progress bar moves.
 * (Polling rather than SSE: it needs no long-lived server thread and tolerates reconnects.)
 */
import { Emitter } from "../lib/pubsub";
import type { RleFrames } from "../viewer/maskStore";
import { FINISHED_JOB, type Job } from "../types";
import type { ApiClient } from "./api";

/** Poll interval while no frame of the job has arrived yet (the key-slice mask). */
export const FIRST_FRAME_POLL_MS = 60;

export interface FramesChunk {
  job: number;
  status: string;
  finished: boolean;
  cursor: number;
  frames: RleFrames | { frame: number; rle: number[] }[];
}

export interface JobEvents extends Record<string, unknown> {
  progress: Job;
  frames: { job: number; frames: RleFrames };
  done: Job;
  error: { job: number; message: string };
}

/** Normalise the frames payload: a {"<frame>": rle} object or a list of {frame, rle}. */
export function normaliseFrames(frames: FramesChunk["frames"] | undefined | null): RleFrames {
  if (!frames) return {};
  if (Array.isArray(frames)) {
    const out: RleFrames = {};
    for (const f of frames) if (f && typeof f.frame === "number") out[String(f.frame)] = f.rle;
    return out;
  }
  return frames;
}

export class JobService {
  private events = new Emitter<JobEvents>();
  private followers = new Map<number, { stop: boolean }>();

  private constructor(
    private readonly api: ApiClient,
    private readonly intervalMs: number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  static create(api: ApiClient, opts: { intervalMs?: number; sleep?: (ms: number) => Promise<void> } = {}): JobService {
    return new JobService(api, opts.intervalMs ?? 400, opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))));
  }

  destroy(): void {
    for (const f of this.followers.values()) f.stop = true;
    this.followers.clear();
    this.events.clear();
  }

  on<K extends keyof JobEvents>(kind: K, fn: (payload: JobEvents[K]) => void): () => void {
    return this.events.on(kind, fn);
  }

  async start(targetId: number, body: Record<string, unknown> = {}): Promise<Job> {
    const job = await this.api.post<Job>(`/api/targets/${targetId}/propagate/`, body);
    void this.follow(job.id);
    return job;
  }

  cancel(jobId: number): Promise<Job> {
    return this.api.post<Job>(`/api/propagation-jobs/${jobId}/cancel/`);
  }

  stop(jobId: number): void {
    const f = this.followers.get(jobId);
    if (f) f.stop = true;
    this.followers.delete(jobId);
  }

  /** Poll until the job finishes, emitting progress, partial frames and done. */
  async follow(jobId: number): Promise<Job | null> {
    if (this.followers.has(jobId)) return null;
    const state = { stop: false };
    this.followers.set(jobId, state);
    let cursor = 0;
    let failures = 0;
    try {
      while (!state.stop) {
        try {
          const chunk = await this.api.get<FramesChunk>(`/api/propagation-jobs/${jobId}/frames/`, { since: cursor });
          if (state.stop) break;
          const frames = normaliseFrames(chunk.frames);
          if (Object.keys(frames).length) this.events.emit("frames", { job: jobId, frames });
          if (typeof chunk.cursor === "number") cursor = chunk.cursor;
          const job = await this.api.get<Job>(`/api/propagation-jobs/${jobId}/`);
          if (state.stop) break;
          failures = 0;
          this.events.emit("progress", job);
          if (FINISHED_JOB.has(job.status)) {
            this.events.emit("done", job);
            return job;
          }
        } catch (err) {
          failures++;
          if (failures >= 5) {
            this.events.emit("error", { job: jobId, message: err instanceof Error ? err.message : String(err) });
            return null;
          }
        }
        // until the first frame (the key slice) is in, look often: it shows by itself, at once
        const wait = cursor === 0 && failures === 0 ? Math.min(this.intervalMs, FIRST_FRAME_POLL_MS) : this.intervalMs;
        await this.sleep(wait * Math.min(4, 1 + failures));
      }
      return null;
    } finally {
      this.followers.delete(jobId);
    }
  }
}
