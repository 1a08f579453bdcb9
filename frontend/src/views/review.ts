/**
 * Reviewer queue: submitted targets of projects where I am reviewer or above, my cases first; each
 * with who submitted it, its active time, edits and Dice(first proposal, final) from
 * /api/target-timings/. Click a column title to sort by it (again: the other way). Opens the case view.
 */
import { roleAtLeast, type App, type View } from "../app";
import { fmtNumber, fmtSeconds, type TargetTiming } from "../services/timing";
import type { Case, Project, Target } from "../types";
import { clear, errorText, fmtDate, h, statusBadge } from "../ui/dom";
import { acceptedSendTable } from "./pacsSend";

export async function reviewView(root: HTMLElement, app: App): Promise<View> {
  const api = app.services.api;
  root.append(h("h1", {}, "Review queue"));
  try {
    const projects = (await api.list<Project>("/api/projects/")).filter((p) => roleAtLeast(app.roleIn(p.id), "reviewer"));
    if (!projects.length) root.append(h("p", { class: "muted" }, "You review no project."));
    for (const p of projects) {
      const [targets, cases] = await Promise.all([
        api.list<Target & { updated_at?: string }>("/api/targets/", { project: p.id, status: "submitted" }),
        api.list<Case>("/api/cases/", { project: p.id }),
      ]);
      // my own work first: targets of the cases assigned to me for review
      const mineFirst = (t: Target) => (cases.find((c) => c.id === t.case)?.reviewer === app.me?.id ? 0 : 1);
      targets.sort((a, b) => mineFirst(a) - mineFirst(b));
      // the times are a help, not a condition: the queue still shows when they cannot be read
      let timingError = "";
      const timings = new Map(
        (
          await api.list<TargetTiming>("/api/target-timings/", { project: p.id, status: "submitted", page_size: 500 }).catch((err) => {
            timingError = `Times could not be read: ${errorText(err)}`;
            return [] as TargetTiming[];
          })
        ).map((x) => [x.target, x]),
      );
      const caseName = (t: Target) => cases.find((c) => c.id === t.case)?.name ?? String(t.case);
      root.append(
        h("h2", {}, p.name),
        targets.length
          ? sortableTable(`review-queue-${p.id}`, targets, [
              { title: "Target", cell: (t) => h("a", { href: `#/cases/${t.case}?target=${t.id}`, "data-testid": `review-target-${t.id}` }, `${t.label} #${t.id}`), key: (t) => t.id },
              { title: "Case", cell: caseName, key: caseName },
              { title: "Submitted by", cell: (t) => timings.get(t.id)?.submitted_by_username ?? "—", key: (t) => timings.get(t.id)?.submitted_by_username ?? "" },
              { title: "Active time", cell: (t) => fmtSeconds(timings.get(t.id)?.time_s), key: (t) => timings.get(t.id)?.time_s ?? null, testid: "active-time" },
              { title: "Edits", cell: (t) => String(timings.get(t.id)?.n_edits ?? "—"), key: (t) => timings.get(t.id)?.n_edits ?? null },
              { title: "Dice (first proposal, final)", cell: (t) => fmtNumber(timings.get(t.id)?.dice, 3), key: (t) => timings.get(t.id)?.dice ?? null },
              { title: "Status", cell: (t) => statusBadge(t.status), key: (t) => t.status },
              { title: "Mask", cell: (t) => (t.current_revision ? `rev ${t.current_revision.number} (${t.current_revision.source})` : "—"), key: (t) => t.current_revision?.number ?? null },
              { title: "Submitted", cell: (t) => fmtDate(t.updated_at), key: (t) => t.updated_at ?? "" },
            ])
          : h("p", { class: "muted" }, "Nothing waiting for review."),
      );
      if (timingError) root.append(h("p", { class: "error" }, timingError));
      // what went back to the PACS: the latest accepted targets and their DICOM SEG send state
      const accepted = await api.get<{ results: Target[] }>("/api/targets/", { project: p.id, status: "accepted", ordering: "-updated_at", page_size: 20 });
      const sent = await acceptedSendTable(api, p.id, accepted.results).catch((err) => h("p", { class: "error" }, errorText(err)));
      if (sent) root.append(sent);
    }
  } catch (err) {
    root.append(h("p", { class: "error" }, errorText(err)));
  }
  return { destroy() {} };
}

export interface Column<T> {
  title: string;
  cell: (row: T) => Node | string;
  /** the value sorted by; null sorts last either way */
  key: (row: T) => string | number | null;
  testid?: string;
}

/** Sort rows by a column's key, nulls last; stable, so ties keep the earlier order. */
export function sortRows<T>(rows: T[], key: (row: T) => string | number | null, dir: 1 | -1): T[] {
  return rows
    .map((row, i) => ({ row, i, k: key(row) }))
    .sort((a, b) => {
      if (a.k === null || b.k === null) return a.k === b.k ? a.i - b.i : a.k === null ? 1 : -1;
      const c = typeof a.k === "number" && typeof b.k === "number" ? a.k - b.k : String(a.k).localeCompare(String(b.k));
      return c === 0 ? a.i - b.i : c * dir;
    })
    .map((x) => x.row);
}

function sortableTable<T>(testid: string, rows: T[], columns: Column<T>[]): HTMLElement {
  const tbody = h("tbody", {});
  let sorted: { col: number; dir: 1 | -1 } | null = null;
  const heads = columns.map((c, i) =>
    h("th", { class: "sortable", role: "button", tabindex: "0", "data-testid": `sort-${c.testid ?? i}`, onclick: () => sortBy(i) }, c.title),
  );
  function sortBy(i: number): void {
    sorted = { col: i, dir: sorted?.col === i && sorted.dir === 1 ? -1 : 1 };
    heads.forEach((th, j) => th.setAttribute("aria-sort", j !== i ? "none" : sorted!.dir === 1 ? "ascending" : "descending"));
    render(sortRows(rows, columns[i].key, sorted.dir));
  }
  function render(list: T[]): void {
    clear(tbody);
    for (const row of list) tbody.append(h("tr", {}, ...columns.map((c) => h("td", c.testid ? { "data-testid": c.testid } : {}, c.cell(row)))));
  }
  render(rows);
  return h("table", { class: "table", "data-testid": testid }, h("thead", {}, h("tr", {}, ...heads)), tbody);
}
