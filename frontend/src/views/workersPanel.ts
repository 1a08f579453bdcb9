/**
 * The workers card of the manager (and admin) page: which workers are live, what each consumes and
 * runs, how many messages wait per queue, and a plain warning when none is running. Refreshes every
 * 5 s while shown.
 */
import type { ApiClient } from "../services/api";
import { describeWorker, unservedQueues, type WorkersInfo } from "../services/workers";
import { clear, errorText, h } from "../ui/dom";

export function workersPanel(api: Pick<ApiClient, "get">, refreshMs = 5000): { el: HTMLElement; destroy(): void } {
  const body = h("div", { class: "workers-body" }, h("p", { class: "muted" }, "Asking the workers…"));
  const el = h("section", { class: "card", "data-testid": "workers" }, h("h3", {}, "Workers"), body);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;

  async function refresh(): Promise<void> {
    try {
      render(await api.get<WorkersInfo>("/api/workers/"));
    } catch (err) {
      clear(body);
      body.append(h("p", { class: "error" }, `Could not read the workers: ${errorText(err)}`));
    }
    if (!stopped) timer = setTimeout(() => void refresh(), refreshMs);
  }

  function render(info: WorkersInfo): void {
    clear(body);
    body.append(...renderWorkers(info));
  }

  void refresh();
  return {
    el,
    destroy() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The card's content for one answer of GET /api/workers/ (exported for tests). */
export function renderWorkers(info: WorkersInfo): HTMLElement[] {
  const out: HTMLElement[] = [];
  const list = h("ul", { class: "workers-list", "data-testid": "workers-list" });
  if (!info.workers.length) {
    list.append(h("li", { class: "none", "data-testid": "no-worker" }, "No worker is running: propagation, ingest and training jobs wait until one starts."));
  }
  for (const w of info.workers) list.append(h("li", { "data-worker": w.name }, describeWorker(w)));
  out.push(list);
  const waiting = Object.entries(info.queues).map(([q, n]) => `${q}: ${n} waiting`).join(" · ");
  out.push(h("p", { class: "muted" }, `Queues — ${waiting}`));
  const unserved = unservedQueues(info).filter((q) => (info.queues[q] ?? 0) > 0);
  if (info.workers.length && unserved.length) {
    out.push(h("p", { class: "error" }, `No worker is running for ${unserved.join(", ")}: its jobs wait.`));
  }
  return out;
}
