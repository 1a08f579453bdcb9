/**
 * The managers' dashboard (#/dashboard?project=1&modality=&label=&annotator=): time per lesion by
 * round as box plots, the reduction curve against the manual baseline, where the time goes (phases),
 * Dice(first proposal, final) per round, a per-annotator table and every lesion with its time, from
 * GET /api/timing-report/ and /api/target-timings/. CSV and JSON exports link to the same API.
 */
import "./dashboard.css";
import { roleAtLeast, type App, type View } from "../app";
import { fmtNumber, fmtSeconds, roundName, type TargetTiming, type TimingReport } from "../services/timing";
import type { Project } from "../types";
import { mountChart, type Chart } from "../ui/charts";
import { errorText, h, statusBadge } from "../ui/dom";
import { diceBoxplot, groupKey, phaseBars, reductionLine, roundsWithData, timeBoxplot } from "./dashboardCharts";

const FILTERS = ["modality", "label", "annotator"] as const;

export async function dashboardView(root: HTMLElement, app: App, params: URLSearchParams): Promise<View> {
  const api = app.services.api;
  const charts: Chart[] = [];
  const view: View = { destroy: () => charts.forEach((c) => c.destroy()) };
  root.classList.add("dashboard");
  root.append(h("h1", {}, "Time per lesion"));
  const projects = (await api.list<Project>("/api/projects/")).filter((p) => roleAtLeast(app.roleIn(p.id), "manager"));
  if (!projects.length) {
    root.append(h("p", { class: "muted" }, "You manage no project: the dashboard is for project managers."));
    return view;
  }
  const project = projects.find((p) => p.id === Number(params.get("project"))) ?? projects[0];
  const chosen = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ""])) as Record<(typeof FILTERS)[number], string>;
  const go = (change: Partial<typeof chosen> & { project?: number }) => {
    const next = new URLSearchParams({ project: String(change.project ?? project.id) });
    if (change.project === undefined) for (const f of FILTERS) if ((change[f] ?? chosen[f]) !== "") next.set(f, change[f] ?? chosen[f]);
    app.go(`#/dashboard?${next}`);
  };

  let report: TimingReport;
  let lesions: TargetTiming[];
  try {
    const query = { project: project.id, ...Object.fromEntries(FILTERS.filter((f) => chosen[f]).map((f) => [f, chosen[f]])) };
    [report, lesions] = await Promise.all([
      api.get<TimingReport>("/api/timing-report/", query),
      api.list<TargetTiming>(
        "/api/target-timings/",
        { project: project.id, modality: chosen.modality || undefined, label: chosen.label || undefined, submitted_by: chosen.annotator || undefined, ordering: "-last_event_at", page_size: 500 },
        4,
      ),
    ]);
  } catch (err) {
    root.append(h("p", { class: "error" }, errorText(err)));
    return view;
  }

  // --- filters and exports
  const select = (name: string, options: [string, string][], value: string, onChange: (v: string) => void) => {
    const el = h("select", { "data-testid": `filter-${name}`, "aria-label": name }, ...options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
    el.addEventListener("change", () => onChange(el.value));
    return el;
  };
  const exportQuery = new URLSearchParams({ project: String(project.id) });
  for (const f of FILTERS) if (chosen[f]) exportQuery.set(f, chosen[f]);
  const link = (path: string, format: string, text: string, testid: string) =>
    h("a", { href: `${api.url(path)}?${exportQuery}&format=${format}`, download: "", "data-testid": testid }, text);
  root.append(
    h(
      "div",
      { class: "row filters" },
      select("project", projects.map((p) => [String(p.id), p.name]), String(project.id), (v) => go({ project: Number(v) })),
      select("modality", [["", "all modalities"], ...report.options.modalities.map((m) => [m, m] as [string, string])], chosen.modality, (v) => go({ modality: v })),
      select("label", [["", "all labels"], ...report.options.labels.map((l) => [l, l] as [string, string])], chosen.label, (v) => go({ label: v })),
      select("annotator", [["", "all annotators"], ...report.options.annotators.map((a) => [String(a.id), a.username] as [string, string])], chosen.annotator, (v) => go({ annotator: v })),
      h("span", { class: "spacer" }),
      h("span", { class: "muted" }, "Export:"),
      link("/api/timing-report/", "csv", "report CSV", "export-report-csv"),
      link("/api/timing-report/", "json", "report JSON", "export-report-json"),
      link("/api/target-timings/export/", "csv", "lesions CSV", "export-lesions-csv"),
    ),
    h(
      "p",
      { class: "muted note" },
      `Time per lesion = prompting + waiting for the model + correcting, counted from the browser's events: gaps over ${report.project.idle_threshold_s} s without input, time after “idle” and time with the page hidden are left out. Reviewing is shown apart. Videos are timed per frame. Completed (submitted or accepted) lesions only; the README says exactly what counts.`,
    ),
  );

  // --- rounds table and charts
  const rounds = roundsWithData(report);
  if (!rounds.length) {
    root.append(h("p", { class: "muted", "data-testid": "no-completed" }, "No submitted lesion yet: the charts appear once one is submitted."));
  } else {
    root.append(h("section", { class: "card" }, h("h2", {}, "By round"), roundsTable(report)));
    const grid = h("div", { class: "charts" });
    root.append(grid);
    for (const [id, option] of [
      ["chart-time", timeBoxplot(report)],
      ["chart-reduction", reductionLine(report)],
      ["chart-phases", phaseBars(report)],
      ["chart-dice", diceBoxplot(report)],
    ] as const) {
      const el = h("div", { class: "chart", "data-testid": id });
      grid.append(el);
      charts.push(mountChart(el, option));
    }
    root.append(h("section", { class: "card" }, h("h2", {}, "Per annotator"), annotatorsTable(report)));
  }
  root.append(h("section", { class: "card" }, h("h2", {}, `Lesions (${lesions.length})`), lesionsTable(lesions)));
  return view;
}

function table(testid: string, headers: string[], rows: HTMLElement[]): HTMLElement {
  return h("table", { class: "table numbers", "data-testid": testid }, h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", {}, t)))), h("tbody", {}, ...rows));
}

function roundsTable(report: TimingReport): HTMLElement {
  const rows: HTMLElement[] = [];
  for (const r of roundsWithData(report)) {
    for (const g of r.groups) {
      rows.push(
        h(
          "tr",
          { "data-testid": `round-row-${r.number ?? "none"}` },
          h("td", {}, roundName(r)),
          h("td", {}, r.is_manual_baseline ? "—" : (r.model_version ?? r.models_used.join(", ")) || "—"),
          h("td", {}, groupKey(g)),
          h("td", { title: `${g.n} completed, ${g.time_s.n} with recorded events` }, String(g.time_s.n)),
          h("td", {}, fmtSeconds(g.time_s.median)),
          h("td", {}, fmtSeconds(g.time_s.mean)),
          h("td", {}, g.time_s.iqr === null ? "—" : fmtSeconds(g.time_s.iqr)),
          h("td", {}, g.reduction_pct === null ? "—" : `${g.reduction_pct.toFixed(2)} %`),
          h("td", {}, fmtNumber(g.edit_fraction)),
          h("td", {}, fmtNumber(g.dice.median, 3)),
        ),
      );
    }
  }
  return table("rounds-table", ["Round", "Model", "Group", "n", "Median", "Mean", "IQR", "Reduction", "Edit fraction", "Dice median"], rows);
}

function annotatorsTable(report: TimingReport): HTMLElement {
  const rows: HTMLElement[] = [];
  for (const r of roundsWithData(report))
    for (const g of r.groups)
      for (const a of g.annotators)
        rows.push(
          h(
            "tr",
            {},
            h("td", {}, roundName(r)),
            h("td", {}, groupKey(g)),
            h("td", {}, a.username || "—"),
            h("td", {}, String(a.time_s.n)),
            h("td", {}, fmtSeconds(a.time_s.median)),
            h("td", {}, fmtSeconds(a.time_s.mean)),
            h("td", {}, a.time_s.iqr === null ? "—" : fmtSeconds(a.time_s.iqr)),
            h("td", {}, fmtNumber(a.edit_fraction)),
            h("td", {}, fmtNumber(a.dice.median, 3)),
          ),
        );
  return table("annotators-table", ["Round", "Group", "Annotator", "n", "Median", "Mean", "IQR", "Edit fraction", "Dice median"], rows);
}

function lesionsTable(lesions: TargetTiming[]): HTMLElement {
  // a lesion with no recorded events (imported, scripted) has no time: "—", not 0 s
  const secs = (t: TargetTiming, v: number | null) => (t.n_events ? fmtSeconds(v) : "—");
  const rows = lesions.map((t) =>
    h(
      "tr",
      { "data-testid": `lesion-row-${t.target}` },
      h("td", {}, h("a", { href: `#/cases/${t.case}?target=${t.target}` }, `${t.label} #${t.target}`)),
      h("td", {}, t.case_name),
      h("td", {}, t.round_number === null ? "—" : String(t.round_number)),
      h("td", {}, t.submitted_by_username ?? "—"),
      h("td", {}, statusBadge(t.status)),
      h("td", { "data-testid": "lesion-time" }, t.case_kind === "video" && t.per_frame_s !== null ? `${secs(t, t.per_frame_s)}/frame` : secs(t, t.time_s)),
      h("td", {}, secs(t, t.prompting_s)),
      h("td", {}, secs(t, t.waiting_s)),
      h("td", {}, secs(t, t.correcting_s)),
      h("td", {}, secs(t, t.reviewing_s)),
      h("td", { title: "left out: idle / page hidden" }, `${secs(t, t.idle_left_out_s)} / ${secs(t, t.hidden_left_out_s)}`),
      h("td", {}, String(t.n_prompts)),
      h("td", { title: `${t.n_strokes} strokes, ${t.n_undos} undos, ${t.n_redos} redos` }, String(t.n_edits)),
      h("td", {}, `${t.n_corrected_frames}/${t.n_frames}`),
      h("td", {}, fmtNumber(t.dice, 3)),
      h("td", {}, t.hd95_mm === null ? "—" : `${t.hd95_mm.toFixed(1)} mm`),
      h("td", {}, t.model_name || "—"),
    ),
  );
  return table(
    "lesions-table",
    ["Lesion", "Case", "Round", "Annotator", "Status", "Time", "Prompting", "Waiting", "Correcting", "Reviewing", "Left out (idle / hidden)", "Prompts", "Edits", "Corrected slices", "Dice", "HD95", "Model"],
    rows,
  );
}
