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
