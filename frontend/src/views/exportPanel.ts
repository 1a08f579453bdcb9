/**
 * Exports as jobs (managers): pick the project zip or a case and a format, start the job on the
 * server's `default` queue, watch its progress and download the file when it is done.
 */
import type { ApiClient } from "../services/api";
import type { Case, Project } from "../types";
import { errorText, fmtDate, h, statusBadge, toast } from "../ui/dom";

export interface ExportJob {
  id: number;
  project: number;
  case: number | null;
  format: string;
  status: "queued" | "running" | "succeeded" | "failed";
  progress: number;
  error: string;
  filename: string;
  size: number;
  created_at: string;
  download_url: string | null;
}

const CASE_FORMATS: [string, string][] = [["nifti", "NIfTI label map"], ["dicom-seg", "DICOM SEG"], ["coco", "COCO (zip)"]];
const POLL_MS = 1000;

/** The export card; polling stops on `destroy` or once the card has left the page. */
export function exportSection(api: ApiClient, p: Project, cases: Case[]): { element: HTMLElement; destroy(): void } {
  const ready = cases.filter((c) => c.status === "ready" || c.status === "archived");
  const scope = h("select", { "data-testid": "export-scope" }, h("option", { value: "" }, "Whole project (zip)"), ...ready.map((c) => h("option", { value: String(c.id) }, c.name)));
  const format = h("select", { "data-testid": "export-format", disabled: true }, ...CASE_FORMATS.map(([v, label]) => h("option", { value: v }, label)));
  scope.addEventListener("change", () => (format.disabled = !scope.value));
  const list = h("table", { class: "table", "data-testid": "export-jobs" });
  const start = h("button", { type: "submit", "data-testid": "export-start" }, "Export");
  const form = h("form", { class: "row" }, scope, format, start);
  const element = h("section", { class: "card" }, h("h3", {}, "Export"), form, list);
  let jobs: ExportJob[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let shown = false;

  const row = (j: ExportJob) => {
    const what = j.case ? (cases.find((c) => c.id === j.case)?.name ?? `case ${j.case}`) : "project";
    const pct = Math.round(j.progress * 100);
    return h("tr", { "data-testid": `export-job-${j.id}` },
      h("td", {}, `${what} · ${j.format}`),
      h("td", {}, statusBadge(j.status)),
      h("td", {}, h("div", { class: "progress", "data-testid": `export-progress-${j.id}`, "data-status": j.status }, h("div", { class: "bar", style: { width: `${pct}%` } }), h("span", { class: "text" }, `${pct}%`))),
      h("td", {}, j.download_url ? h("a", { href: api.url(j.download_url), download: j.filename, "data-testid": `export-download-${j.id}` }, `${j.filename} (${Math.max(1, Math.round(j.size / 1024))} KiB)`) : j.error ? h("span", { class: "error" }, j.error) : ""),
      h("td", { class: "muted" }, fmtDate(j.created_at)),
    );
  };

  const render = () => list.replaceChildren(...jobs.slice(0, 10).map(row));

  async function refresh(): Promise<void> {
    timer = null;
    try {
      jobs = await api.list<ExportJob>("/api/export-jobs/", { project: p.id }, 1);
    } catch (err) {
      toast(errorText(err), "error");
    }
    if (element.isConnected) shown = true;
    else if (shown) stopped = true; // the page moved on
    if (stopped) return;
    render();
    if (jobs.some((j) => j.status === "queued" || j.status === "running")) timer = setTimeout(() => void refresh(), POLL_MS);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body: Record<string, unknown> = scope.value ? { project: p.id, case: Number(scope.value), format: format.value } : { project: p.id, format: "project-zip" };
    try {
      await api.post<ExportJob>("/api/export-jobs/", body);
    } catch (err) {
      toast(errorText(err), "error");
    }
    if (timer) clearTimeout(timer);
    await refresh();
  });
  void refresh();
  return {
    element,
    destroy() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
