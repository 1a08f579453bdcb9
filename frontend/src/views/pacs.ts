/**
 * The PACS tab of a project (#/pacs?project=N): a manager picks a DICOMweb connection, searches
 * studies (patient id or name, study date, modality, accession number, description), opens a study's
 * series and imports the chosen ones as cases, each with its progress (fetching, then converting) and
 * the server's reason when it fails; a series already in the project says so. Below, the project's
 * recent imports.
 */
import { roleAtLeast, type App, type View } from "../app";
import {
  connectionsFor,
  dicomDate,
  FINISHED_IMPORT,
  personName,
  pollUntil,
  searchSeries,
  searchStudies,
  startImport,
  type PacsConnection,
  type PacsImport,
  type PacsSeries,
  type PacsStudy,
  type StudyQuery,
} from "../services/pacs";
import type { Project } from "../types";
import { clear, errorText, h, statusBadge } from "../ui/dom";

const FIELDS: [keyof StudyQuery, string][] = [
  ["patient_id", "Patient ID"],
  ["patient_name", "Patient name (Doe*)"],
  ["study_date", "Study date (YYYYMMDD or range A-B)"],
  ["modality", "Modality (CT, MR…)"],
  ["accession_number", "Accession number"],
  ["description", "Study description (Liver*)"],
];

export async function pacsView(root: HTMLElement, app: App, params: URLSearchParams): Promise<View> {
  const api = app.services.api;
  let alive = true;
  const projectId = Number(params.get("project"));
  const project = await api.get<Project>(`/api/projects/${projectId}/`);
  root.append(h("h1", {}, `PACS · ${project.name}`), h("p", {}, h("a", { href: `#/manage?project=${projectId}` }, "← back to the project")));
  if (!roleAtLeast(app.roleIn(projectId), "manager")) {
    root.append(h("p", { class: "muted" }, "Only a project manager searches the PACS and imports studies."));
    return { destroy() {} };
  }
  const connections = await connectionsFor(api, projectId);
  if (!connections.length) {
    root.append(h("p", { class: "muted", "data-testid": "pacs-none" }, "No PACS connection is set up for this project. A site administrator adds one."));
    return { destroy() {} };
  }
  const select = h("select", { "data-testid": "pacs-connection" }, ...connections.map((c) => h("option", { value: String(c.id) }, c.name)));
  const inputs = Object.fromEntries(FIELDS.map(([key, label]) => [key, h("input", { placeholder: label, "aria-label": label, "data-testid": `pacs-${key}` })])) as Record<keyof StudyQuery, HTMLInputElement>;
  const form = h("form", { class: "pacs-search", "data-testid": "pacs-search" }, select, ...Object.values(inputs), h("button", { type: "submit", class: "primary" }, "Search"));
  const studiesBox = h("div", { "data-testid": "pacs-studies" });
  const seriesBox = h("div", { "data-testid": "pacs-series" });
  const importsBox = h("div", { "data-testid": "pacs-imports" });
  root.append(h("section", { class: "card" }, form, studiesBox, seriesBox), h("section", { class: "card" }, h("h2", {}, "Imports"), importsBox));
  const connection = (): PacsConnection => connections.find((c) => c.id === Number(select.value))!;

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void search();
  });

  async function search(): Promise<void> {
    clear(studiesBox);
    clear(seriesBox);
    studiesBox.append(h("p", { class: "muted" }, "Searching…"));
    const query: StudyQuery = {};
    for (const [key] of FIELDS) if (inputs[key].value.trim()) query[key] = inputs[key].value.trim();
    try {
      const studies = await searchStudies(api, connection().id, projectId, query);
      clear(studiesBox);
      studiesBox.append(studyTable(studies));
    } catch (err) {
      clear(studiesBox);
      studiesBox.append(h("p", { class: "error", "data-testid": "pacs-error" }, errorText(err)));
    }
  }

  function studyTable(studies: PacsStudy[]): HTMLElement {
    if (!studies.length) return h("p", { class: "muted", "data-testid": "pacs-no-studies" }, "No study matches.");
    return h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ...["Patient", "ID", "Date", "Accession", "Description", "Modalities", "Series", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...studies.map((s) =>
        h("tr", { "data-testid": `pacs-study-${s.StudyInstanceUID}` },
          h("td", {}, personName(s.PatientName)), h("td", {}, s.PatientID), h("td", {}, dicomDate(s.StudyDate)),
          h("td", {}, s.AccessionNumber), h("td", {}, s.StudyDescription),
          h("td", {}, Array.isArray(s.ModalitiesInStudy) ? s.ModalitiesInStudy.join(", ") : s.ModalitiesInStudy),
          h("td", {}, String(s.NumberOfStudyRelatedSeries ?? "")),
          h("td", {}, h("button", { "data-testid": "pacs-open-study", onclick: () => void openStudy(s) }, "Series")),
        ))),
    );
  }

  async function openStudy(study: PacsStudy): Promise<void> {
    clear(seriesBox);
    seriesBox.append(h("h3", {}, `Series of ${personName(study.PatientName) || study.PatientID} · ${study.StudyDescription || dicomDate(study.StudyDate)}`));
    try {
      const series = await searchSeries(api, connection().id, projectId, study.StudyInstanceUID);
      seriesBox.append(h("table", { class: "table" },
        h("thead", {}, h("tr", {}, ...["#", "Modality", "Description", "Images", "Import"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...series.map(seriesRow)),
      ));
    } catch (err) {
      seriesBox.append(h("p", { class: "error", "data-testid": "pacs-error" }, errorText(err)));
    }
  }

  function seriesRow(s: PacsSeries): HTMLElement {
    const cell = h("td", {});
    const button = h("button", { "data-testid": "pacs-import", onclick: () => void run() }, "Import");
    if (s.import) cell.append(h("span", { class: "muted", "data-testid": "pacs-already" }, `already imported (import #${s.import})`));
    else cell.append(button);
    async function run(): Promise<void> {
      button.disabled = true;
      try {
        const job = await startImport(api, projectId, connection().id, s);
        clear(cell);
        cell.append(importProgress(job));
        void loadImports();
      } catch (err) {
        button.disabled = false;
        cell.append(h("p", { class: "error", "data-testid": "pacs-error" }, errorText(err)));
      }
    }
    return h("tr", { "data-testid": `pacs-series-${s.SeriesInstanceUID}` },
      h("td", {}, String(s.SeriesNumber ?? "")), h("td", {}, s.Modality), h("td", {}, s.SeriesDescription),
      h("td", {}, String(s.NumberOfSeriesRelatedInstances ?? "")), cell);
  }

  /** A progress bar that follows the import until it ends, then a link to the case or the reason. */
  function importProgress(job: PacsImport): HTMLElement {
    const bar = h("progress", { max: 1, value: job.progress });
    const text = h("span", { "data-testid": "pacs-import-status" }, job.status);
    const el = h("div", { class: "row", "data-testid": `pacs-import-${job.id}` }, bar, text);
    // start once the caller has put `el` on the page (polling stops when it leaves)
    const follow = () => pollUntil(
      () => api.get<PacsImport>(`/api/pacs/imports/${job.id}/`),
      (j) => FINISHED_IMPORT.includes(j.status),
      (j) => {
        bar.value = j.progress;
        clear(text);
        text.append(statusBadge(j.status), ` ${Math.round(j.progress * 100)}%`);
        if (j.status === "succeeded" && j.case) text.append(" ", h("a", { href: `#/cases/${j.case}`, "data-testid": "pacs-import-case" }, `open case #${j.case}`));
        if (j.status === "failed") text.append(h("span", { class: "error" }, ` ${j.error}`));
        if (FINISHED_IMPORT.includes(j.status)) void loadImports();
      },
      () => alive && el.isConnected,
    ).catch((err) => text.append(h("span", { class: "error" }, ` ${errorText(err)}`)));
    setTimeout(() => void follow(), 0);
    return el;
  }

  async function loadImports(): Promise<void> {
    try {
      const jobs = await api.get<{ results: PacsImport[] }>("/api/pacs/imports/", { project: projectId, page_size: 20 });
      clear(importsBox);
      if (!jobs.results.length) importsBox.append(h("p", { class: "muted" }, "No import yet."));
      importsBox.append(h("ul", {}, ...jobs.results.map((j) =>
        h("li", {}, statusBadge(j.status), ` ${j.description || j.series_uid} · ${j.n_instances} images `,
          j.case ? h("a", { href: `#/cases/${j.case}` }, `case #${j.case}`) : null,
          j.error ? h("span", { class: "error" }, ` ${j.error}`) : null),
      )));
    } catch (err) {
      importsBox.append(h("p", { class: "error" }, errorText(err)));
    }
  }

  void loadImports();
  return {
    destroy() {
      alive = false;
    },
  };
}
