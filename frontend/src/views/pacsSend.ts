/**
 * The PACS send state of one accepted target (case view): each SEG sent per revision and connection
 * (sent / failed with the reason / queued), a Retry button on failed ones and a Send button per
 * connection for reviewers. Polls while a send is under way and stops once the panel leaves the page.
 */
import type { ApiClient } from "../services/api";
import { connectionsFor, FINISHED_SEND, type PacsConnection, type SegSend } from "../services/pacs";
import type { Target } from "../types";
import { clear, errorText, fmtDate, h, statusBadge, toast } from "../ui/dom";

export function pacsSendPanel(api: ApiClient, target: Target, projectId: number, canSend: boolean): HTMLElement {
  const el = h("div", { class: "pacs-send", "data-testid": "pacs-send" }, h("h3", {}, "PACS"));
  const body = h("div", {});
  el.append(body);
  let connections: PacsConnection[] = [];

  async function refresh(): Promise<void> {
    const sends = await api.list<SegSend>("/api/pacs/sends/", { target: target.id });
    render(sends);
    if (sends.some((s) => !FINISHED_SEND.includes(s.status))) setTimeout(() => el.isConnected && void refresh(), 700);
  }

  function render(sends: SegSend[]): void {
    clear(body);
    const name = (id: number) => connections.find((c) => c.id === id)?.name ?? `#${id}`;
    if (!sends.length) body.append(h("p", { class: "muted", "data-testid": "pacs-send-none" }, "Not sent to a PACS yet."));
    for (const s of sends) {
      body.append(
        h("div", { class: "row", "data-testid": `pacs-send-${s.id}` },
          statusBadge(s.status),
          ` rev ${s.revision_number} → ${name(s.connection)}`,
          s.automatic ? h("span", { class: "muted" }, " (automatic)") : null,
          s.attempts > 1 ? h("span", { class: "muted" }, ` · ${s.attempts} attempts`) : null,
          s.sent_at ? h("span", { class: "muted" }, ` · ${fmtDate(s.sent_at)}`) : null,
          s.error ? h("span", { class: "error", "data-testid": "pacs-send-error" }, ` ${s.error}`) : null,
          canSend && s.status === "failed" ? h("button", { "data-testid": "pacs-retry", onclick: () => void act(() => api.post(`/api/pacs/sends/${s.id}/retry/`)) }, "Retry") : null,
        ),
      );
    }
    if (canSend) {
      for (const c of connections.filter((x) => x.stow_url)) {
        body.append(h("button", { "data-testid": `pacs-send-to-${c.id}`, onclick: () => void act(() => api.post("/api/pacs/sends/", { target: target.id, connection: c.id })) }, `Send to ${c.name}`));
      }
    }
  }

  async function act(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      toast(errorText(err), "error");
    }
    await refresh();
  }

  void (async () => {
    try {
      connections = await connectionsFor(api, projectId);
      await refresh();
    } catch (err) {
      body.append(h("p", { class: "error" }, errorText(err)));
    }
  })();
  return el;
}

/**
 * The review page's view of what went to the PACS: the project's recently accepted targets, each with
 * the state of its latest SEG send (or "not sent"). Null when the project has no PACS connection.
 */
export async function acceptedSendTable(api: ApiClient, projectId: number, accepted: Target[]): Promise<HTMLElement | null> {
  const connections = await connectionsFor(api, projectId);
  if (!connections.length) return null;
  const sends = await api.list<SegSend>("/api/pacs/sends/", { target__case__project: projectId });
  const latest = new Map<number, SegSend>();
  for (const s of sends) if (!latest.has(s.target) || latest.get(s.target)!.id < s.id) latest.set(s.target, s);
  const rows = accepted.map((t) => {
    const s = latest.get(t.id);
    return h("tr", { "data-testid": `accepted-${t.id}` },
      h("td", {}, h("a", { href: `#/cases/${t.case}?target=${t.id}` }, `${t.label} #${t.id}`)),
      h("td", {}, t.current_revision ? `rev ${t.current_revision.number}` : "—"),
      h("td", { "data-testid": "pacs-state" }, s ? statusBadge(s.status) : h("span", { class: "muted" }, "not sent"), s && s.revision_number !== t.current_revision?.number ? h("span", { class: "muted" }, ` (rev ${s.revision_number})`) : null),
      h("td", { class: s?.error ? "error" : "muted" }, s?.error ?? ""),
    );
  });
  return h("div", { "data-testid": `accepted-pacs-${projectId}` },
    h("h3", {}, "Accepted · sent to the PACS"),
    accepted.length
      ? h("table", { class: "table" }, h("thead", {}, h("tr", {}, ...["Target", "Mask", "PACS", ""].map((x) => h("th", {}, x)))), h("tbody", {}, ...rows))
      : h("p", { class: "muted" }, "No accepted target yet."),
  );
}
