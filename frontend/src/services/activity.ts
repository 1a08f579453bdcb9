/**
 * Activity: tells the server's time-per-lesion measure when a person is at the page.
 *
 * Input (pointer, keys, wheel) keeps a person active; while it goes on, a `heartbeat` event is
 * recorded at most every `heartbeatMs` (a third of the idle threshold, at most 10 s), so continuous
 * work never shows a gap longer than the threshold. After `thresholdS` seconds with no input an
 * `idle` event is recorded, stamped with the time of the last input: the server counts nothing from
 * then on. The next input records `active` and counting resumes. A tab left open overnight records
 * one `idle` and nothing else. While the page is hidden no idle timer runs (hidden time is left out
 * on the server anyway).
 */
import type { Context, TimingEvent } from "./events";

export interface Recorder {
  readonly hasContext: boolean;
  record(kind: string, payload?: Record<string, unknown>, ctx?: Context, at?: Date): TimingEvent;
}

export interface ActivityOptions {
  thresholdS: number;
  heartbeatMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (id: unknown) => void;
}

export class ActivityTracker {
  private lastInput = 0;
  private lastBeat = Number.NEGATIVE_INFINITY;
  private idle = false;
  private timer: unknown = null;
  private readonly thresholdMs: number;
  private readonly heartbeatMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (id: unknown) => void;

  private constructor(
    private readonly events: Recorder,
    opts: ActivityOptions,
  ) {
    this.thresholdMs = Math.max(1, opts.thresholdS) * 1000;
    this.heartbeatMs = opts.heartbeatMs ?? Math.min(10000, this.thresholdMs / 3);
    this.now = opts.now ?? (() => Date.now());
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((id) => clearTimeout(id as ReturnType<typeof setTimeout>));
  }

  static create(events: Recorder, opts: ActivityOptions): ActivityTracker {
    return new ActivityTracker(events, opts);
  }

  get isIdle(): boolean {
    return this.idle;
  }

  /** A person did something (pointer, key, wheel, or the page just opened). */
  input(): void {
    const now = this.now();
    const quiet = now - this.lastInput;
    this.lastInput = now;
    if (this.idle) {
      this.idle = false;
      this.lastBeat = now;
      this.emit("active", { idle_s: Math.round(quiet / 1000) });
    } else if (now - this.lastBeat >= this.heartbeatMs) {
      this.lastBeat = now;
      this.emit("heartbeat", {});
    }
    if (this.timer === null) this.arm(this.thresholdMs);
  }

  /** The page was hidden: no idle timer until the next input. */
  pause(): void {
    this.disarm();
  }

  destroy(): void {
    this.disarm();
  }

  private emit(kind: string, payload: Record<string, unknown>, at?: Date): void {
    if (this.events.hasContext) this.events.record(kind, payload, {}, at);
  }

  private arm(ms: number): void {
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.check();
    }, ms);
  }

  private disarm(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  private check(): void {
    const quiet = this.now() - this.lastInput;
    if (quiet < this.thresholdMs) return this.arm(this.thresholdMs - quiet); // input came meanwhile
    if (this.idle) return;
    this.idle = true;
    this.emit("idle", { threshold_s: this.thresholdMs / 1000 }, new Date(this.lastInput));
  }
}

/** Wire a tracker to the page's input and visibility; returns the unsubscribe. */
export function trackActivity(events: Recorder, thresholdS: number, win: Window & typeof globalThis = window): () => void {
  const tracker = ActivityTracker.create(events, { thresholdS });
  let lastMove = 0;
  const onInput = () => tracker.input();
  const onMove = () => {
    // pointermove fires at display rate; a few times a second is plenty to know someone is there
    const now = Date.now();
    if (now - lastMove < 500) return;
    lastMove = now;
    tracker.input();
  };
  const onVisibility = () => {
    if (win.document.visibilityState === "hidden") tracker.pause();
    else tracker.input();
  };
  const inputs = ["pointerdown", "keydown", "wheel"] as const;
  for (const name of inputs) win.addEventListener(name, onInput, { passive: true, capture: true });
  win.addEventListener("pointermove", onMove, { passive: true, capture: true });
  win.document.addEventListener("visibilitychange", onVisibility);
  tracker.input(); // opening the page is input
  return () => {
    for (const name of inputs) win.removeEventListener(name, onInput, { capture: true });
    win.removeEventListener("pointermove", onMove, { capture: true });
    win.document.removeEventListener("visibilitychange", onVisibility);
    tracker.destroy();
  };
}
