/**
 * PACS (DICOMweb) API: connections (their credentials never come back), study and series searches
 * through the server, series imports with progress, and DICOM SEG sends per target.
 */
import type { ApiClient } from "./api";

export interface PacsConnection {
  id: number;
  name: string;
  project: number | null;
  qido_url: string;
  wado_url: string;
  stow_url: string;
  has_credentials: boolean;
}

export interface StudyQuery {
  patient_id?: string;
  patient_name?: string;
  study_date?: string;
  modality?: string;
  accession_number?: string;
  description?: string;
}

export interface PacsStudy {
  StudyInstanceUID: string;
  PatientID: string;
  PatientName: string;
  StudyDate: string;
  AccessionNumber: string;
  StudyDescription: string;
  ModalitiesInStudy: string | string[];
  NumberOfStudyRelatedSeries: number | string;
}

export interface PacsSeries {
  SeriesInstanceUID: string;
  StudyInstanceUID: string;
  Modality: string;
  SeriesNumber: number | string;
  SeriesDescription: string;
  NumberOfSeriesRelatedInstances: number | string;
  /** the id of this project's import of the series, if any */
  import: number | null;
}

export interface PacsImport {
  id: number;
  project: number;
  connection: number;
  study_uid: string;
  series_uid: string;
  description: string;
  status: "queued" | "running" | "succeeded" | "failed";
  progress: number;
  n_instances: number;
  error: string;
  case: number | null;
  case_status: string | null;
}

export interface SegSend {
  id: number;
  target: number;
  revision: number;
  revision_number: number;
  connection: number;
  status: "queued" | "sending" | "sent" | "failed";
  error: string;
  attempts: number;
  automatic: boolean;
  sop_instance_uid: string;
  sent_at: string | null;
}

export const FINISHED_IMPORT = ["succeeded", "failed"];
export const FINISHED_SEND = ["sent", "failed"];

export async function connectionsFor(api: ApiClient, projectId: number): Promise<PacsConnection[]> {
  const all = await api.list<PacsConnection>("/api/pacs/connections/");
  return all.filter((c) => c.project === null || c.project === projectId);
}

export async function searchStudies(api: ApiClient, connectionId: number, projectId: number, query: StudyQuery): Promise<PacsStudy[]> {
  const res = await api.get<{ results: PacsStudy[] }>(`/api/pacs/connections/${connectionId}/studies/`, { project: projectId, ...query });
  return res.results;
}

export async function searchSeries(api: ApiClient, connectionId: number, projectId: number, studyUid: string): Promise<PacsSeries[]> {
  const res = await api.get<{ results: PacsSeries[] }>(`/api/pacs/connections/${connectionId}/series/`, { project: projectId, study_uid: studyUid });
  return res.results;
}

export function startImport(api: ApiClient, projectId: number, connectionId: number, series: PacsSeries): Promise<PacsImport> {
  return api.post<PacsImport>("/api/pacs/imports/", {
    project: projectId,
    connection: connectionId,
    study_uid: series.StudyInstanceUID,
    series_uid: series.SeriesInstanceUID,
    description: String(series.SeriesDescription || "").slice(0, 255),
  });
}

/** Poll `read` every `ms` until `done` holds or `alive()` turns false; each state goes to `onState`. */
export async function pollUntil<T>(read: () => Promise<T>, done: (v: T) => boolean, onState: (v: T) => void, alive: () => boolean, ms = 500): Promise<T | null> {
  while (alive()) {
    const value = await read();
    onState(value);
    if (done(value)) return value;
    await new Promise((r) => setTimeout(r, ms));
  }
  return null;
}

/** "2026-01-01" from a DICOM date "20260101" (as it came otherwise). */
export function dicomDate(value: string): string {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value;
}

/** A DICOM person name "Doe^Jane" as "Doe, Jane". */
export function personName(value: string): string {
  return String(value || "").split("^").filter(Boolean).join(", ");
}
