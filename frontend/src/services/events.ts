/**
 * Timing events: every interaction gets a client event id (crypto.randomUUID) and an ISO timestamp,
 * goes into a queue persisted in localStorage, and is sent in batches to POST /api/events/ (a list).
 * An event leaves the queue only when the server acknowledged it (the endpoint is idempotent on the
 * id, so re-sending after an unknown outcome is safe). When the page is hidden the whole queue also
 * goes out with navigator.sendBeacon (a form body: `events` JSON + `csrfmiddlewaretoken`, which the
 * backend accepts for exactly this); a beacon has no reply, so those events stay queued until an
 * acknowledged POST and a later duplicate is harmless.
 */
export interface TimingEvent {
  client_event_id: string;
  kind: string;
  client_ts: string;
  target?: number | null;
  case?: number | null;
  project?: number | null;
  payload: Record<string, unknown>;
}

export type Context = { target?: number | null; case?: number | null; project?: number | null };

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
  private context: Context = {};
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
  setContext(ctx: Context): void {
    this.context = { ...ctx };
  }

  /** True when events can be attributed (the server needs a target, case or project). */
  get hasContext(): boolean {
    return this.context.target != null || this.context.case != null || this.context.project != null;
  }

  /**
   * Hand every queued event to a fire-and-forget sender (sendBeacon) without dequeuing them.
   * Returns how many were handed over.
   */
  beacon(send: (batch: TimingEvent[]) => boolean): number {
    let handed = 0;
    for (let i = 0; i < this.queue.length; i += this.o.batchSize) {
      const batch = this.queue.slice(i, i + this.o.batchSize);
      if (!send(batch)) break;
      handed += batch.length;
    }
    return handed;
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

  /** `at`: when it happened, if not now (an `idle` is stamped with the last input's time). */
  record(kind: string, payload: Record<string, unknown> = {}, ctx: Context = {}, at?: Date): TimingEvent {
    const merged = { ...this.context, ...ctx };
    const event: TimingEvent = {
      client_event_id: this.o.uuid(),
      kind,
      client_ts: (at ?? this.o.now()).toISOString(),
      payload,
    };
    if (merged.target != null) event.target = merged.target;
    if (merged.case != null) event.case = merged.case;
    else if (merged.project != null) event.project = merged.project;
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

/** The real transport: fetch (keepalive when the page is going away). */
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
    } catch {
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

/** A sendBeacon sender for EventService.beacon: form body the events endpoint accepts without headers. */
export function beaconSender(url: string, csrfToken: () => string | null): (batch: TimingEvent[]) => boolean {
  return (batch) => {
    if (typeof navigator === "undefined" || !navigator.sendBeacon) return false;
    const form = new FormData();
    form.set("events", JSON.stringify(batch));
    const token = csrfToken();
    if (token) form.set("csrfmiddlewaretoken", token);
    return navigator.sendBeacon(url, form);
  };
}

/**
 * Wire page-level signals (focus, blur, visibility) to the service; returns the unsubscribe.
 * They are recorded only while the service has a case/target context (the server needs one).
 */
export function trackPage(
  service: EventService,
  beacon: (batch: TimingEvent[]) => boolean,
  win: Window & typeof globalThis = window,
): () => void {
  const rec = (kind: string) => {
    if (service.hasContext) service.record(kind);
  };
  const onFocus = () => rec("focus");
  const onBlur = () => rec("blur");
  const onVisibility = () => {
    const hidden = win.document.visibilityState === "hidden";
    rec(hidden ? "visibility_hidden" : "visibility_visible");
    if (hidden) service.beacon(beacon);
  };
  const onPageHide = () => service.beacon(beacon);
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
