import { describe, expect, it } from "vitest";
import { ActivityTracker, type Recorder } from "../src/services/activity";
import type { TimingEvent } from "../src/services/events";

/** A fake clock with timers that fire when the clock passes them. */
function clock() {
  let t = 1_000_000;
  let timers: { at: number; fn: () => void }[] = [];
  return {
    now: () => t,
    setTimer: (fn: () => void, ms: number) => {
      const timer = { at: t + ms, fn };
      timers.push(timer);
      return timer;
    },
    clearTimer: (id: unknown) => {
      timers = timers.filter((x) => x !== id);
    },
    advance(ms: number) {
      const end = t + ms;
      for (;;) {
        const due = timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((x) => x !== due);
        t = due.at;
        due.fn();
      }
      t = end;
    },
    get pending() {
      return timers.length;
    },
  };
}

function recorder(hasContext = true) {
  const seen: { kind: string; at: number; payload: Record<string, unknown> }[] = [];
  const rec: Recorder & { seen: typeof seen } = {
    seen,
    hasContext,
    record(kind, payload = {}, _ctx = {}, at) {
      seen.push({ kind, at: at ? at.getTime() : NaN, payload });
      return { kind } as TimingEvent;
    },
  };
  return rec;
}

describe("ActivityTracker", () => {
  it("sends a heartbeat at most every third of the threshold while input goes on", () => {
    const c = clock();
    const rec = recorder();
    const tracker = ActivityTracker.create(rec, { thresholdS: 30, ...c });
    for (let i = 0; i < 25; i++) {
      tracker.input();
      c.advance(1000);
    }
    expect(rec.seen.map((e) => e.kind)).toEqual(["heartbeat", "heartbeat", "heartbeat"]);
  });

  it("records idle after the threshold, stamped with the last input, once", () => {
    const c = clock();
    const rec = recorder();
    const tracker = ActivityTracker.create(rec, { thresholdS: 30, ...c });
    tracker.input();
    c.advance(4000);
    tracker.input();
    const last = c.now();
    c.advance(29_999);
    expect(rec.seen.map((e) => e.kind)).toEqual(["heartbeat"]);
    c.advance(1);
    expect(rec.seen.map((e) => e.kind)).toEqual(["heartbeat", "idle"]);
    expect(rec.seen[1].at).toBe(last);
    expect(tracker.isIdle).toBe(true);
    c.advance(12 * 3600 * 1000); // overnight: nothing more
    expect(rec.seen).toHaveLength(2);
    expect(c.pending).toBe(0);
  });

  it("resumes with `active` on the next input and can go idle again", () => {
    const c = clock();
    const rec = recorder();
    const tracker = ActivityTracker.create(rec, { thresholdS: 10, ...c });
    tracker.input();
    c.advance(60_000);
    tracker.input();
    expect(rec.seen.map((e) => e.kind)).toEqual(["heartbeat", "idle", "active"]);
    expect(rec.seen[2].payload).toEqual({ idle_s: 60 });
    c.advance(10_000);
    expect(rec.seen.map((e) => e.kind)).toEqual(["heartbeat", "idle", "active", "idle"]);
  });

  it("runs no idle timer while the page is hidden", () => {
    const c = clock();
    const rec = recorder();
    const tracker = ActivityTracker.create(rec, { thresholdS: 30, ...c });
    tracker.input();
    tracker.pause();
    c.advance(3600_000);
    expect(rec.seen.map((e) => e.kind)).toEqual(["heartbeat"]);
  });

  it("records nothing without a case or target to attribute it to", () => {
    const c = clock();
    const rec = recorder(false);
    const tracker = ActivityTracker.create(rec, { thresholdS: 30, ...c });
    tracker.input();
    c.advance(60_000);
    expect(rec.seen).toEqual([]);
  });
});
