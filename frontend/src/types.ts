/** Shapes of the REST resources (see /work/briefs/API.md; the backend serializers are the truth). */
export type Role = "annotator" | "reviewer" | "manager" | "admin";

export interface Me {
  id: number;
  username: string;
  is_superuser: boolean;
  /** may start projects (a server setting: staff and users a staff member allowed, by default) */
  can_create_projects?: boolean;
  memberships: { project: number; project_name: string; role: Role }[];
}

export interface Label {
  name: string;
  color?: string;
}

export interface Project {
  id: number;
  name: string;
  description: string;
  modality: string;
  labels: Label[];
  settings: Record<string, unknown>;
  created_at: string;
  my_role: Role | null;
}

export interface Membership {
  id: number;
  project: number;
  user: number;
  username: string;
  role: Role;
}

export interface Case {
  id: number;
  project: number;
  name: string;
  kind: "volume" | "video";
  modality: string;
  shape: number[];
  spacing: number[];
  frame_rate: number | null;
  status: string;
  error: string;
  assignee: number | null;
  assignee_username?: string | null;
  /** who reviews this case's targets */
  reviewer?: number | null;
  reviewer_username?: string | null;
  image_meta: Record<string, unknown>;
  created_at: string;
  targets_count?: number;
}

export interface RevisionSummary {
  id: number;
  number: number;
  source: string;
  voxel_count: number;
}

export interface Target {
  id: number;
  case: number;
  label: string;
  round: number | null;
  status: string;
  key_frame: number | null;
  created_by: number | null;
  review_comment: string;
  current_revision: RevisionSummary | null;
  /** where the object is on the key frame (pixel coordinates) */
  location?: { box?: [number, number, number, number]; point?: [number, number] } | null;
  /** [first, last] frame of the current mask */
  frame_range?: [number, number] | null;
}

/** A reviewer's note pinned to a frame and position of a target. */
export interface SliceComment {
  id: number;
  target: number;
  frame: number;
  x: number;
  y: number;
  text: string;
  author: number | null;
  author_username: string | null;
  created_at: string;
}

export interface Prompt {
  id: number;
  target: number;
  frame: number;
  kind: "box" | "point" | "mask";
  payload: Record<string, unknown>;
  withdrawn: boolean;
}

export interface MaskRevision {
  id: number;
  target: number;
  number: number;
  source: string;
  voxel_count: number;
  shape?: number[];
  bbox?: number[];
  frame_scores?: Record<string, FrameScore | number>;
  created_at?: string;
}

export interface FrameScore {
  object_score?: number;
  iou?: number;
  [k: string]: number | undefined;
}

export interface Round {
  id: number;
  project: number;
  number: number;
  status: string;
  is_manual_baseline: boolean;
  opened_at: string;
  closed_at: string | null;
}

export interface Job {
  id: number;
  target: number;
  kind: string;
  status: string;
  progress: number;
  frames_done: number;
  frames_total: number;
  device: string;
  model_name: string;
  error: string;
  result_revision: number | null;
  timings: Record<string, number>;
  /** the Celery queue it was sent to (`gpu`, or a worker's own `gpu.<node>`) */
  queue?: string;
  /** `<node>#<pid>` of the worker running it */
  worker?: string;
}

export const FINISHED_JOB = new Set(["succeeded", "failed", "cancelled"]);
