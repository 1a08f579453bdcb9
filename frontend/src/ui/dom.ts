/** Tiny DOM helpers: h() builds elements, toast() shows server messages as they are. */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    else if (k === "class") el.className = String(v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset" && typeof v === "object") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

let toastHost: HTMLElement | null = null;

export function toast(message: string, kind: "info" | "error" | "ok" = "info", ms = 5000): void {
  if (!toastHost) {
    toastHost = h("div", { class: "toasts", "aria-live": "polite" });
    document.body.appendChild(toastHost);
  }
  const t = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  toastHost.appendChild(t);
  setTimeout(() => t.remove(), ms);
}

export function errorText(err: unknown): string {
  if (err && typeof err === "object" && "summary" in err) return String((err as { summary: string }).summary);
  return err instanceof Error ? err.message : String(err);
}

export function statusBadge(status: string): HTMLElement {
  return h("span", { class: `badge badge-${status}` }, status);
}

export function fmtDate(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** Element.append that skips null/false children. */
export function append(el: Element, ...children: (Node | string | null | undefined | false)[]): void {
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
}
