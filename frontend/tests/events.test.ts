import { describe, expect, it } from "vitest";
import { EventService, QUEUE_KEY, type TimingEvent, type Transport } from "../src/services/events";

class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string) {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, v);
  }
}

function manualTimers() {
  const pending: { fn: () => void; ms: number }[] = [];
  return {
    pending,
    setTimer: (fn: () => void, ms: number) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clearTimer: (t: unknown) => {
      const i = pending.indexOf(t as { fn: () => void; ms: number });
      if (i >= 0) pending.splice(i, 1);
    },
  };
}

let n = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`;
const now = () => new Date("2026-01-02T03:04:05.000Z");

describe("EventService", () => {
  it("gives each event a client id and ISO timestamp and the current context", () => {
    const timers = manualTimers();
    const svc = EventService.create({ transport: async () => "ok", uuid, now, ...timers });
    svc.setContext({ case: 3, target: 9 });
    const e = svc.record("prompt_placed", { kind: "box" });
    expect(e.client_ts).toBe("2026-01-02T03:04:05.000Z");
    expect(e.client_event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect([e.case, e.target, e.kind]).toEqual([3, 9, "prompt_placed"]);
  });

  it("sends events in batches of at most batchSize and empties the queue on success", async () => {
    const sent: TimingEvent[][] = [];
    const timers = manualTimers();
    const svc = EventService.create({ transport: async (b) => (sent.push(b), "ok"), batchSize: 3, uuid, now, ...timers });
    for (let i = 0; i < 7; i++) svc.record("edit_stroke");
    await svc.flush();
    expect(sent.map((b) => b.length).reduce((a, b) => a + b, 0)).toBe(7);
    expect(Math.max(...sent.map((b) => b.length))).toBe(3);
    expect(svc.pending).toBe(0);
  });

  it("keeps every event through network errors, persisted, and sends them later", async () => {
    const storage = new MemoryStorage();
    let online = false;
    const received: string[] = [];
    const transport: Transport = async (batch) => {
      if (!online) throw new TypeError("Failed to fetch");
      received.push(...batch.map((e) => e.client_event_id));
      return "ok";
    };
    const timers = manualTimers();
    const svc = EventService.create({ transport, storage, uuid, now, ...timers });
    const ids = [svc.record("a"), svc.record("b")].map((e) => e.client_event_id);
    await svc.flush();
    expect(svc.pending).toBe(2);
    expect(JSON.parse(storage.getItem(QUEUE_KEY)!)).toHaveLength(2);
    expect(timers.pending.length).toBe(1); // a retry is scheduled with backoff
    expect(timers.pending[0].ms).toBeGreaterThan(2000);

    // the page reloads: a new service finds the persisted queue and sends it
    svc.destroy();
    online = true;
    const svc2 = EventService.create({ transport, storage, uuid, now, ...timers });
    expect(svc2.pending).toBe(2);
    await svc2.flush();
    expect(received).toEqual(ids);
    expect(JSON.parse(storage.getItem(QUEUE_KEY)!)).toEqual([]);
  });

  it("retries on server errors but drops a batch the server rejects as invalid", async () => {
    const outcomes: ("ok" | "retry" | "reject")[] = ["retry", "reject"];
    const timers = manualTimers();
    const svc = EventService.create({ transport: async () => outcomes.shift()!, uuid, now, ...timers });
    svc.record("x");
    await svc.flush();
    expect(svc.pending).toBe(1);
    await svc.flush();
    expect(svc.pending).toBe(0);
  });

  it("does not send an event twice while a request for it is in flight", async () => {
    const releases: (() => void)[] = [];
    const sizes: number[] = [];
    const transport: Transport = (batch) =>
      new Promise((r) => {
        sizes.push(batch.length);
        releases.push(() => r("ok"));
      });
    const timers = manualTimers();
    const svc = EventService.create({ transport, uuid, now, ...timers });
    svc.record("a");
    const first = svc.flush();
    svc.record("b");
    const second = svc.flush();
    for (const release of releases) release();
    await Promise.all([first, second]);
    expect(sizes).toEqual([1, 1]);
    expect(svc.pending).toBe(0);
  });

  it("flushes on a timer after recording", async () => {
    let sent = 0;
    const timers = manualTimers();
    const svc = EventService.create({ transport: async (b) => ((sent += b.length), "ok"), flushDelayMs: 500, uuid, now, ...timers });
    svc.record("a");
    svc.record("b");
    expect(timers.pending.map((t) => t.ms)).toEqual([500]);
    timers.pending.shift()!.fn();
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toBe(2);
  });
});

describe("EventService.beacon", () => {
  it("hands every queued event to the beacon in batches but keeps them queued until acknowledged", async () => {
    const timers = manualTimers();
    const acked: string[] = [];
    const svc = EventService.create({ transport: async (b) => (acked.push(...b.map((e) => e.kind)), "ok"), batchSize: 2, uuid, now, ...timers });
    svc.setContext({ case: 1 });
    for (const k of ["a", "b", "c"]) svc.record(k);
    const beaconed: string[][] = [];
    expect(svc.beacon((batch) => (beaconed.push(batch.map((e) => e.kind)), true))).toBe(3);
    expect(beaconed).toEqual([["a", "b"], ["c"]]);
    expect(svc.pending).toBe(3);
    await svc.flush();
    expect(acked).toEqual(["a", "b", "c"]);
    expect(svc.pending).toBe(0);
  });

  it("attributes an event to a project when it has no case", () => {
    const timers = manualTimers();
    const svc = EventService.create({ transport: async () => "ok", uuid, now, ...timers });
    expect(svc.hasContext).toBe(false);
    svc.setContext({ project: 4 });
    expect(svc.record("custom").project).toBe(4);
  });
});
