/**
 * The annotation state of one open case, without DOM: the selected target, its working mask, its
 * prompts, the undo stack, the running propagation job and the per-frame scores. The case view
 * renders it and forwards tool actions here. Every change publishes "change".
 */
import { ApiError, type ApiClient } from "../services/api";
import type { EventService } from "../services/events";
import type { JobService } from "../services/jobs";
import { WorkerWatch } from "../services/workers";
import { Emitter } from "../lib/pubsub";
import { UndoStack, type Command } from "../lib/undo";
import { encodeRle } from "../lib/rle";
import { MaskStore, type RleFrames } from "../viewer/maskStore";
import type { Point } from "../viewer/types";
import type { Case, FrameScore, Job, MaskRevision, Project, Prompt, Target } from "../types";

export interface WorkspaceEvents extends Record<string, unknown> {
  change: null;
  message: { text: string; kind: "info" | "error" | "ok" };
  /** the first frames of a job arrived (the view may jump to the key frame) */
  firstFrames: number[];
}

type SavedRevision = MaskRevision & { frame_scores?: Record<string, FrameScore> };

export class Workspace {
  readonly events = new Emitter<WorkspaceEvents>();
  readonly undo = new UndoStack();
  targets: Target[] = [];
  target: Target | null = null;
  mask: MaskStore | null = null;
  prompts: Prompt[] = [];
  scores: Record<string, FrameScore> = {};
  job: Job | null = null;
  /** revision shown instead of the working mask (reviewer's "model proposal" toggle) */
  viewing: "current" | "proposal" = "current";
  /** a reviewer fixing a submitted target: brush edits are saved as "review" revisions */
  reviewFix = false;
  /** the project's manual-baseline rounds, and its open round (a new target joins it) */
  private baselineRounds = new Set<number>();
  private openRound: number | null = null;
  private revisionLoads = 0;
  private viewRequests = 0;
  busy = false;
  /** "No worker is running for this queue ..." while the job waits with no live worker; else null */
  workerProblem: string | null = null;
  private workerWatch: WorkerWatch;
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private saving: Promise<void> | null = null;
  private jobUnsubs: (() => void)[] = [];
  private jobStartedAt = 0;
  private firstFramesSeen = false;
  /** frames brushed since the last propagation: sent as mask prompts when propagating again */
  private editedSinceJob = new Set<number>();
  /** axial slices of this target shown to the user (submitting with unvisited suspect slices asks) */
  readonly visited = new Set<number>();
  /** the slice the running job starts from (its prompt): its mask is drawn before the others */
  private jobKeyFrame: number | null = null;
  /** schedules the rest of a first chunk after the key slice was drawn (a frame later in the page) */
  deferDraw: (fn: () => void) => void = (fn) => (typeof requestAnimationFrame === "function" ? requestAnimationFrame(() => fn()) : setTimeout(fn, 0));

  constructor(
    readonly api: ApiClient,
    readonly timing: EventService,
    readonly jobs: JobService,
    readonly kase: Case,
    readonly project: Project,
    opts: { workerWatch?: WorkerWatch } = {},
  ) {
    this.workerWatch = opts.workerWatch ?? new WorkerWatch(api);
    this.jobUnsubs.push(
      jobs.on("progress", (j) => {
        if (this.job && j.id === this.job.id) {
          this.job = j;
          this.emit();
          void this.checkWorkers(j);
        }
      }),
      jobs.on("frames", ({ job, frames }) => {
        if (this.job && job === this.job.id) this.applyFrames(frames);
      }),
      jobs.on("done", (j) => {
        if (this.job && j.id === this.job.id) void this.onJobDone(j);
      }),
      jobs.on("error", ({ job, message }) => {
        if (this.job && job === this.job.id) this.say(`Lost track of the propagation job: ${message}`, "error");
      }),
    );
  }

  get labelColor(): string {
    const label = this.project.labels.find((l) => l.name === this.target?.label);
    return label?.color ?? "#ff4d4f";
  }

  get editable(): boolean {
    if (this.reviewFix && this.target?.status === "submitted" && this.viewing === "current") return true;
    return !!this.target && !["submitted", "accepted"].includes(this.target.status) && this.viewing === "current";
  }

  /** The target's round (or, before there is a target, the open round) is the manual baseline: the model
   * makes no proposals (the server answers 409), so only brush, eraser and fill edit the mask. */
  get manualBaseline(): boolean {
    const round = this.target ? this.target.round : this.openRound;
    return round !== null && this.baselineRounds.has(round);
  }

  async loadRounds(): Promise<void> {
    const rounds = await this.api.list<{ id: number; status: string; is_manual_baseline: boolean }>("/api/rounds/", { project: this.project.id });
    this.baselineRounds = new Set(rounds.filter((r) => r.is_manual_baseline).map((r) => r.id));
    this.openRound = rounds.find((r) => r.status === "open")?.id ?? null;
    this.emit();
  }

  get jobRunning(): boolean {
    return !!this.job && !["succeeded", "failed", "cancelled"].includes(this.job.status);
  }

  destroy(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    if (this.job) this.jobs.stop(this.job.id);
    for (const u of this.jobUnsubs) u();
    this.events.clear();
  }

  say(text: string, kind: "info" | "error" | "ok" = "info"): void {
    this.events.emit("message", { text, kind });
  }

  private emit(): void {
    this.events.emit("change", null);
  }

  async loadTargets(): Promise<void> {
    this.targets = await this.api.list<Target>("/api/targets/", { case: this.kase.id });
    if (this.target) this.target = this.targets.find((t) => t.id === this.target!.id) ?? this.target;
    this.emit();
  }

  async createTarget(label: string): Promise<Target> {
    const t = await this.api.post<Target>("/api/targets/", { case: this.kase.id, label });
    this.targets.push(t);
    await this.select(t.id);
    return t;
  }

  async select(targetId: number | null): Promise<void> {
    await this.flushSave();
    const leaving = this.target;
    if (leaving && leaving.id !== targetId) {
      // its time stops here, not at whatever this person does next
      this.timing.record("target_closed", { status: leaving.status }, { case: this.kase.id, target: leaving.id });
    }
    if (this.job) this.jobs.stop(this.job.id);
    this.job = null;
    this.workerWatch.reset();
    this.workerProblem = null;
    this.undo.clear();
    this.editedSinceJob.clear();
    this.visited.clear();
    this.viewing = "current";
    this.reviewFix = false;
    this.target = targetId === null ? null : (this.targets.find((t) => t.id === targetId) ?? (await this.api.get<Target>(`/api/targets/${targetId}/`)));
    this.timing.setContext({ case: this.kase.id, target: this.target?.id ?? null });
    const [d, hgt, w] = this.kase.shape;
    this.mask = this.target ? new MaskStore(d, hgt, w) : null;
    this.prompts = [];
    this.scores = {};
    if (this.target) {
      this.timing.record("target_opened", { label: this.target.label, status: this.target.status });
      await Promise.all([this.loadRevision(this.target.current_revision?.id ?? null), this.loadPrompts()]);
      // resume following a job that is still running (e.g. after a reload)
      const running = await this.api.list<Job>("/api/propagation-jobs/", { target: this.target.id }).catch(() => [] as Job[]);
      const active = running.find((j) => j.status === "queued" || j.status === "running");
      if (active) this.followJob(active);
    }
    this.emit();
  }

  /** Load a revision's frames (all of them) and scores into the working mask. */
  async loadRevision(revisionId: number | null): Promise<void> {
    if (!this.mask) return;
    // the last request wins: a slower earlier load (proposal, then final, clicked quickly) is dropped
    const token = ++this.revisionLoads;
    if (revisionId === null) {
      this.mask.applyRle({}, { replaceAll: true });
      this.mask.baseRevision = null;
      return;
    }
    const [frames, rev] = await Promise.all([
      this.api.get<RleFrames>(`/api/mask-revisions/${revisionId}/frames/`),
      this.api.get<SavedRevision>(`/api/mask-revisions/${revisionId}/`),
    ]);
    if (token !== this.revisionLoads || !this.mask) return;
    this.mask.applyRle(frames, { replaceAll: true });
    this.mask.baseRevision = revisionId;
    this.scores = { ...(rev.frame_scores ?? {}) } as Record<string, FrameScore>;
    this.emit();
  }

  async loadPrompts(): Promise<void> {
    if (!this.target) return;
    this.prompts = await this.api.list<Prompt>("/api/prompts/", { target: this.target.id });
    this.emit();
  }

  private async ensureTarget(): Promise<Target> {
    if (this.target) return this.target;
    const label = this.project.labels[0]?.name ?? "lesion";
    return this.createTarget(label);
  }

  // --- prompts -------------------------------------------------------------------------------
  async placePrompt(frame: number, kind: "box" | "point", payload: Record<string, unknown>): Promise<void> {
    if (this.reviewFix) return this.say("A reviewer's fix uses the brush (B) and eraser (E); prompts are the annotator's.", "info");
    if (this.manualBaseline) return this.say("This is the manual-baseline round: no model prompts; use the brush, eraser and fill.", "info");
    if (this.target && !this.editable) return this.say(`This target is ${this.target.status}; it cannot be changed.`, "error");
    const target = await this.ensureTarget();
    let prompt: Prompt;
    try {
      prompt = await this.api.post<Prompt>("/api/prompts/", { target: target.id, frame, kind, payload });
    } catch (err) {
      return this.say(err instanceof ApiError ? err.summary : String(err), "error");
    }
    this.prompts.push(prompt);
    this.timing.record("prompt_placed", { prompt: prompt.id, kind, frame });
    const cmd = this.maskStep(`${kind} prompt on slice ${frame + 1}`, {
      undo: async () => {
        await this.api.post(`/api/prompts/${prompt.id}/withdraw/`);
        prompt.withdrawn = true;
      },
      redo: async () => {
        await this.api.post(`/api/prompts/${prompt.id}/restore/`);
        prompt.withdrawn = false;
      },
    });
    this.undo.push(cmd);
    this.emit();
    await this.propagate({}, { step: false, keyFrame: frame });
  }

  /**
   * An undoable step that changes the mask (a prompt and its propagation, a propagation): undo brings
   * back exactly the mask volume seen before it, redo exactly the one seen when it was undone; the
   * restored frames are saved as a revision. A job still running for it is cancelled first.
   */
  private maskStep(label: string, server: { undo?: () => Promise<void>; redo?: () => Promise<void> } = {}): Command {
    const before = this.mask?.snapshot() ?? new Map<number, number[]>();
    const mask = this.mask;
    let after: Map<number, number[]> | null = null;
    const restore = (snap: Map<number, number[]>) => {
      if (!mask || mask !== this.mask) return;
      if (mask.restore(snap).length) this.scheduleSave();
    };
    return {
      label,
      undo: async () => {
        await this.stopRunningJob();
        after = mask?.snapshot() ?? null;
        await server.undo?.();
        restore(before);
        this.emit();
      },
      redo: async () => {
        await server.redo?.();
        if (after) restore(after);
        this.emit();
      },
    };
  }

  /** Propagate only forward (or only backward) from slice `frame`, up to the end of the case. */
  propagateFrom(frame: number, direction: "forward" | "backward"): Promise<void> {
    const last = this.kase.shape[0] - 1;
    return this.propagate({ direction, frame_range: direction === "forward" ? [frame, last] : [0, frame] }, { keyFrame: frame });
  }

  /** Clear slices lo..hi (inclusive) as one undoable step; the cleared slices then steer the model as
   * empty masks (it will not fill them again), like brushed slices. */
  clearRange(lo: number, hi: number): number {
    const mask = this.mask;
    if (!mask || !this.editable) return 0;
    const step = this.maskStep(`clear slices ${lo + 1}–${hi + 1}`);
    let cleared = 0;
    for (let f = Math.max(0, lo); f <= Math.min(mask.depth - 1, hi); f++) {
      if (mask.area(f) === 0) continue;
      mask.set(f, null, { dirty: true });
      this.editedSinceJob.add(f);
      cleared++;
    }
    if (!cleared) return 0;
    this.undo.push(step);
    this.timing.record("edit_stroke", { frame: lo, tool: "clear", frames: cleared });
    this.scheduleSave();
    this.emit();
    return cleared;
  }

  /** Slices the worker flagged as suspect (frame_scores[...].suspect has reasons), in order. */
  suspectFrames(): number[] {
    return Object.entries(this.scores)
      .filter(([, s]) => {
        const why = (s as { suspect?: unknown }).suspect;
        return Array.isArray(why) && why.length > 0;
      })
      .map(([k]) => Number(k))
      .sort((a, b) => a - b);
  }

  /** The next suspect slice after `from` (wrapping around), or null when there is none. */
  nextSuspect(from: number): number | null {
    const all = this.suspectFrames();
    if (!all.length) return null;
    return all.find((f) => f > from) ?? all[0];
  }

  /** The user saw axial slice `frame` of the selected target. */
  visit(frame: number): void {
    if (this.target) this.visited.add(frame);
  }

  /** Suspect slices the user has not looked at yet (submit asks about them first). */
  unvisitedSuspects(): number[] {
    return this.suspectFrames().filter((f) => !this.visited.has(f));
  }

  private async stopRunningJob(): Promise<void> {
    const job = this.job;
    if (!job || !this.jobRunning) return;
    this.jobs.stop(job.id);
    this.job = await this.jobs.cancel(job.id).catch(() => job); // it may have just finished
  }

  placeBox(frame: number, box: [number, number, number, number]): Promise<void> {
    return this.placePrompt(frame, "box", { box });
  }

  placePoint(frame: number, p: Point, label: 0 | 1): Promise<void> {
    const r = (v: number) => Math.round(v * 10) / 10;
    return this.placePrompt(frame, "point", { points: [[r(p[0]), r(p[1])]], labels: [label] });
  }

  // --- brush edits -------------------------------------------------------------------------
  commitStroke(frame: number, before: Uint8Array | null, after: Uint8Array, mode: "brush" | "eraser" | "fill"): void {
    const mask = this.mask;
    if (!mask || !this.editable) return;
    mask.touch(frame);
    this.editedSinceJob.add(frame);
    this.timing.record("edit_stroke", { frame, tool: mode });
    const restore = (data: Uint8Array | null) => {
      mask.set(frame, data ? data.slice() : new Uint8Array(mask.frameSize), { dirty: true });
      this.scheduleSave();
      this.emit();
    };
    this.undo.push({ label: `${mode} stroke`, undo: () => restore(before), redo: () => restore(after) });
    this.scheduleSave();
    this.emit();
  }

  scheduleSave(delayMs = 1200): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.save();
    }, delayMs);
  }

  async flushSave(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
      await this.save();
    } else if (this.saving) {
      await this.saving;
    }
  }

  /** Save dirty frames as a new human MaskRevision over the loaded one. */
  save(): Promise<void> {
    const run = async () => {
      const mask = this.mask;
      const target = this.target;
      if (!mask || !target || mask.dirty.length === 0) return;
      const frames = mask.dirty;
      const body: Record<string, unknown> = { target: target.id, source: this.reviewFix ? "review" : "human", slices: mask.dirtyPayload() };
      if (mask.baseRevision !== null) body.base_revision = mask.baseRevision;
      try {
        const rev = await this.api.post<SavedRevision>("/api/mask-revisions/", body);
        mask.baseRevision = rev.id;
        mask.clearDirty(frames);
        target.current_revision = { id: rev.id, number: rev.number, source: rev.source, voxel_count: rev.voxel_count };
        target.status = target.status === "draft" || target.status === "proposed" ? "correcting" : target.status;
        this.emit();
      } catch (err) {
        this.say(`Could not save the edit: ${err instanceof ApiError ? err.summary : String(err)}`, "error");
        throw err;
      }
    };
    const p = (this.saving ?? Promise.resolve()).then(run, run);
    this.saving = p.finally(() => {
      if (this.saving === p) this.saving = null;
    });
    return p;
  }

  async doUndo(): Promise<void> {
    try {
      const cmd = await this.undo.undo();
      if (cmd) this.timing.record("undo", { what: cmd.label });
      this.say(cmd ? `Undone: ${cmd.label}.` : "Nothing to undo.", "info");
    } catch (err) {
      this.say(`Undo failed: ${err instanceof ApiError ? err.summary : String(err)}`, "error");
    }
  }

  async doRedo(): Promise<void> {
    try {
      const cmd = await this.undo.redo();
      if (cmd) this.timing.record("redo", { what: cmd.label });
      this.say(cmd ? `Redone: ${cmd.label}.` : "Nothing to redo.", "info");
    } catch (err) {
      this.say(`Redo failed: ${err instanceof ApiError ? err.summary : String(err)}`, "error");
    }
  }

  // --- propagation -------------------------------------------------------------------------
  async propagate(body: Record<string, unknown> = {}, opts: { step?: boolean; keyFrame?: number } = {}): Promise<void> {
    const target = this.target;
    if (!target) return;
    if (this.manualBaseline) return this.say("This is the manual-baseline round: the model makes no proposals.", "info");
    this.jobKeyFrame = opts.keyFrame ?? target.key_frame ?? null;
    if (opts.step ?? true) this.undo.push(this.maskStep("propagation"));
    try {
      await this.flushSave();
    } catch {
      return;
    }
    // brushed frames steer the model as mask prompts (on a frame, a mask prompt wins over box/points)
    const mask = this.mask;
    for (const frame of [...this.editedSinceJob].sort((a, b) => a - b)) {
      if (!mask) break;
      const data = mask.get(frame) ?? new Uint8Array(mask.frameSize);
      try {
        const prompt = await this.api.post<Prompt>("/api/prompts/", {
          target: target.id,
          frame,
          kind: "mask",
          payload: { rle: encodeRle(data), height: mask.height, width: mask.width },
        });
        this.prompts.push(prompt);
        this.editedSinceJob.delete(frame);
      } catch (err) {
        this.say(err instanceof ApiError ? err.summary : String(err), "error");
        return;
      }
    }
    this.timing.record("propagation_requested", { ...body });
    this.jobStartedAt = performance.now();
    this.firstFramesSeen = false;
    try {
      const job = await this.jobs.start(target.id, body);
      this.job = job;
      this.emit();
      void this.checkWorkers(job); // the wait is counted from here
    } catch (err) {
      this.say(err instanceof ApiError ? err.summary : String(err), "error");
    }
  }

  /** Say when no live worker consumes the waiting job's queue (instead of an endless progress bar). */
  private async checkWorkers(job: Job): Promise<void> {
    const message = await this.workerWatch.update(job);
    if (!this.job || this.job.id !== job.id) return;
    if (message !== this.workerProblem) {
      this.workerProblem = message;
      this.emit();
    }
  }

  private followJob(job: Job): void {
    this.job = job;
    void this.checkWorkers(job);
    this.jobStartedAt = performance.now();
    void this.jobs.follow(job.id);
  }

  async cancelJob(): Promise<void> {
    if (!this.job) return;
    try {
      this.job = await this.jobs.cancel(this.job.id);
    } catch (err) {
      this.say(err instanceof ApiError ? err.summary : String(err), "error");
    }
    this.emit();
  }

  private applyFrames(frames: RleFrames): void {
    const mask = this.mask;
    if (!mask) return;
    const key = this.jobKeyFrame === null ? null : String(this.jobKeyFrame);
    if (!this.firstFramesSeen && key !== null && key in frames && Object.keys(frames).length > 1) {
      // the first poll brought the key slice with propagated ones: draw the key slice by itself first
      const { [key]: keyRle, ...rest } = frames;
      this.applyFrames({ [key]: keyRle });
      const job = this.job;
      this.deferDraw(() => {
        if (this.mask === mask && this.job?.id === job?.id && this.jobRunning) this.applyFrames(rest);
      });
      return;
    }
    const applied = mask.applyRle(frames);
    for (const [k, v] of Object.entries(frames)) {
      if (v && !Array.isArray(v)) {
        const s = v as { object_score?: number; iou?: number };
        this.scores[k] = { object_score: s.object_score, iou: s.iou };
      }
    }
    if (!this.firstFramesSeen && applied.length) {
      this.firstFramesSeen = true;
      this.timing.record("propagation_received", { job: this.job?.id, first: true, ms: Math.round(performance.now() - this.jobStartedAt) });
      this.events.emit("firstFrames", applied);
    }
    this.emit();
  }

  private async onJobDone(job: Job): Promise<void> {
    this.job = job;
    this.workerWatch.reset();
    this.workerProblem = null;
    if (job.status === "succeeded") {
      this.timing.record("propagation_received", { job: job.id, first: false, ms: Math.round(performance.now() - this.jobStartedAt), revision: job.result_revision });
      if (job.result_revision) await this.loadRevision(job.result_revision);
      this.say(`Propagation finished (${job.frames_done}/${job.frames_total} frames${job.device ? ` on ${job.device}` : ""}).`, "ok");
    } else if (job.status === "failed") {
      this.say(`Propagation failed: ${job.error || "no reason given"}`, "error");
    } else {
      this.say("Propagation cancelled.", "info");
    }
    await this.loadTargets();
    this.emit();
  }

  // --- workflow ------------------------------------------------------------------------------
  async submit(): Promise<void> {
    const target = this.target;
    if (!target) return;
    try {
      await this.flushSave();
      const t = await this.api.post<Target>(`/api/targets/${target.id}/submit/`);
      this.timing.record("submit", { revision: t.current_revision?.id ?? null });
      this.replaceTarget(t);
      this.say("Submitted for review.", "ok");
    } catch (err) {
      this.say(err instanceof ApiError ? err.summary : String(err), "error");
    }
  }

  async review(decision: "accept" | "reject", comment: string): Promise<void> {
    const target = this.target;
    if (!target) return;
    try {
      const t = await this.api.post<Target>(`/api/targets/${target.id}/${decision}/`, { comment });
      this.timing.record(decision === "accept" ? "review_accept" : "review_reject", { comment });
      this.replaceTarget(t);
      this.say(decision === "accept" ? "Accepted." : "Rejected and sent back.", "ok");
    } catch (err) {
      this.say(err instanceof ApiError ? err.summary : String(err), "error");
    }
  }

  /** Reviewer toggle: show the model's first proposal or the current (final) mask. */
  async showRevision(which: "current" | "proposal"): Promise<void> {
    if (!this.target) return;
    const ask = ++this.viewRequests;
    if (which === "proposal") {
      const revs = await this.api.list<MaskRevision>("/api/mask-revisions/", { target: this.target.id, source: "model" });
      if (ask !== this.viewRequests) return; // "Final mask" was clicked meanwhile: it wins
      // the FIRST model run: later runs are steered by the annotator's edits and already contain them
      const latest = revs.sort((a, b) => a.number - b.number)[0];
      if (!latest) return this.say("This target has no model proposal.", "info");
      this.viewing = "proposal";
      await this.loadRevision(latest.id);
    } else {
      this.viewing = "current";
      await this.loadRevision(this.target.current_revision?.id ?? null);
    }
    this.emit();
  }

  private replaceTarget(t: Target): void {
    this.targets = this.targets.map((x) => (x.id === t.id ? t : x));
    this.target = t;
    this.emit();
  }
}
