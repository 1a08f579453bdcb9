/**
 * Timing events: every interaction gets a client event id (crypto.randomUUID) and an ISO timestamp,
 * goes into a queue persisted in localStorage, and is sent in batches to POST /api/events/ (a list).
 * An event leaves the queue only when the server acknowledged it (the endpoint is idempotent on the
 * id, so re-sending after an unknown outcome is safe). When the page is hidden the queue is flushed
 * with a keepalive request that survives unload (sendBeacon as the fallback); nothing is dropped
 * until an acknowledged POST.
 */
export interface TimingEvent {
  client_event_id: string;
  kind: string;
  client_ts: string;
  target?: number | null;
  case?: number | null;
  payload: Record<string, unknown>;
}

export interface Storage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export type Transport = (batch: TimingEvent[], opts: { keepalive: boolean }) => Promise<"ok" | "retry" | "reject">;

export interface EventServiceOptions {
  transport: Transport;
  storage?: Storage | null;
  key?: string;
  batchSize?: number;
  flushDelayMs?: number;
  maxBackoffMs?: number;
  now?: () => Date;
  uuid?: () => string;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (id: unknown) => void;
}

export const QUEUE_KEY = "medsam2.events.queue";

function defaultUuid(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // RFC 4122 v4 from Math.random, only where randomUUID is unavailable (non-secure contexts)
  return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
  });
}

export class EventService {
  private queue: TimingEvent[] = [];
  private inflight = new Set<string>();
  private timer: unknown = null;
  private failures = 0;
  private listeners = new Set<(pending: number) => void>();
  private context: { target?: number | null; case?: number | null } = {};
  private readonly o: Required<Omit<EventServiceOptions, "storage">> & { storage: Storage | null };

  private constructor(opts: EventServiceOptions) {
    this.o = {
      storage: opts.storage ?? null,
      key: opts.key ?? QUEUE_KEY,
      batchSize: opts.batchSize ?? 50,
      flushDelayMs: opts.flushDelayMs ?? 2000,
      maxBackoffMs: opts.maxBackoffMs ?? 60000,
      now: opts.now ?? (() => new Date()),
      uuid: opts.uuid ?? defaultUuid,
      setTimer: opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: opts.clearTimer ?? ((id) => clearTimeout(id as ReturnType<typeof setTimeout>)),
      transport: opts.transport,
    };
    this.load();
  }

  static create(opts: EventServiceOptions): EventService {
    return new EventService(opts);
  }

  destroy(): void {
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
    this.listeners.clear();
  }

  /** The case/target that later events belong to unless they say otherwise. */
  setContext(ctx: { target?: number | null; case?: number | null }): void {
    this.context = { ...ctx };
  }

  get pending(): number {
    return this.queue.length;
  }

  snapshot(): TimingEvent[] {
    return this.queue.map((e) => ({ ...e }));
  }

  subscribe(fn: (pending: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  record(kind: string, payload: Record<string, unknown> = {}, ctx: { target?: number | null; case?: number | null } = {}): TimingEvent {
    const merged = { ...this.context, ...ctx };
    const event: TimingEvent = {
      client_event_id: this.o.uuid(),
      kind,
      client_ts: this.o.now().toISOString(),
      payload,
    };
    if (merged.target != null) event.target = merged.target;
    if (merged.case != null) event.case = merged.case;
    this.queue.push(event);
    this.persist();
    if (this.queue.length >= this.o.batchSize) void this.flush();
    else this.schedule(this.o.flushDelayMs);
    return event;
  }

  /** Send queued events in batches; resolves when one pass is over (success or not). */
  async flush(opts: { keepalive?: boolean } = {}): Promise<void> {
    if (this.timer !== null) {
      this.o.clearTimer(this.timer);
      this.timer = null;
    }
    while (true) {
      const batch = this.queue.filter((e) => !this.inflight.has(e.client_event_id)).slice(0, this.o.batchSize);
      if (batch.length === 0) return;
      for (const e of batch) this.inflight.add(e.client_event_id);
      let outcome: "ok" | "retry" | "reject";
      try {
        outcome = await this.o.transport(batch, { keepalive: !!opts.keepalive });
      } catch {
        outcome = "retry";
      }
      for (const e of batch) this.inflight.delete(e.client_event_id);
      if (outcome === "retry") {
        this.failures++;
        this.schedule(Math.min(this.o.maxBackoffMs, this.o.flushDelayMs * 2 ** this.failures));
        return;
      }
      // "ok": acknowledged. "reject": the server refused the batch as invalid (4xx); resending the
      // same bytes can never succeed, so it is dropped rather than blocking every later event.
      this.failures = 0;
      const sent = new Set(batch.map((e) => e.client_event_id));
      this.queue = this.queue.filter((e) => !sent.has(e.client_event_id));
      this.persist();
      if (opts.keepalive) return; // one request is all a closing page can count on
    }
  }

  private schedule(ms: number): void {
    if (this.timer !== null) return;
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      void this.flush();
    }, ms);
  }

  private load(): void {
    if (!this.o.storage) return;
    try {
      const raw = this.o.storage.getItem(this.o.key);
      const parsed = raw ? JSON.parse(raw) : [];
      if (Array.isArray(parsed)) this.queue = parsed.filter((e) => e && typeof e.client_event_id === "string");
    } catch {
      this.queue = [];
    }
    if (this.queue.length) this.schedule(0);
  }

  private persist(): void {
    try {
      this.o.storage?.setItem(this.o.key, JSON.stringify(this.queue));
    } catch {
      /* storage full or unavailable: the in-memory queue still holds everything */
    }
    for (const fn of this.listeners) fn(this.queue.length);
  }
}

/** The real transport: fetch (keepalive when the page is going away), sendBeacon if fetch throws. */
export function httpTransport(url: string, headers: () => Record<string, string>): Transport {
  return async (batch, { keepalive }) => {
    const body = JSON.stringify(batch);
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        keepalive,
        headers: { ...headers(), "Content-Type": "application/json" },
        body,
      });
    } catch (err) {
      if (keepalive && typeof navigator !== "undefined" && navigator.sendBeacon) {
        navigator.sendBeacon(url, new Blob([body], { type: "application/json" }));
      }
      void err;
      return "retry"; // unknown outcome: keep the events; the server de-duplicates by id
    }
    if (res.ok) return "ok";
    if (res.status === 400 || res.status === 422) {
      console.warn("events rejected by the server:", await res.text());
      return "reject";
    }
    return "retry"; // 401/403 (logged out), 5xx, 429: keep and retry later
  };
}

/** Wire page-level signals (focus, blur, visibility) to the service; returns the unsubscribe. */
export function trackPage(service: EventService, win: Window & typeof globalThis = window): () => void {
  const onFocus = () => service.record("focus");
  const onBlur = () => service.record("blur");
  const onVisibility = () => {
    const hidden = win.document.visibilityState === "hidden";
    service.record(hidden ? "visibility_hidden" : "visibility_visible");
    if (hidden) void service.flush({ keepalive: true });
  };
  const onPageHide = () => void service.flush({ keepalive: true });
  win.addEventListener("focus", onFocus);
  win.addEventListener("blur", onBlur);
  win.document.addEventListener("visibilitychange", onVisibility);
  win.addEventListener("pagehide", onPageHide);
  return () => {
    win.removeEventListener("focus", onFocus);
    win.removeEventListener("blur", onBlur);
    win.document.removeEventListener("visibilitychange", onVisibility);
    win.removeEventListener("pagehide", onPageHide);
  };
}
