/**
 * The viewer service interface the workspace codes against. Image coordinates are (x, y) in pixel
 * units of the displayed slice with pixel (i, j) covering [i, i+1) x [j, j+1) ("edge" convention);
 * canvas coordinates are CSS pixels relative to the viewer element's top-left corner.
 */
import type { Window } from "../lib/windowing";

export type Axis = "axial" | "coronal" | "sagittal";
export type Point = [number, number];

/** What the viewer shows: one axis of one case. */
export interface StackSpec {
  caseId: number;
  axis: Axis;
  /** number of slices along the axis */
  count: number;
  /** slice size in pixels */
  width: number;
  height: number;
  /** mm per pixel along x (columns) and y (rows) of the slice */
  spacing: [number, number];
  color: boolean;
}

export interface ViewerEvents extends Record<string, unknown> {
  /** the image (and so the camera) was redrawn: overlays must follow */
  render: null;
  index: number;
  window: Window;
  /** a slice failed to load; the message is the server's */
  error: string;
}

export interface ViewerService {
  readonly element: HTMLElement;
  readonly spec: StackSpec | null;
  readonly index: number;
  readonly window: Window;
  load(spec: StackSpec, index: number): Promise<void>;
  setIndex(index: number): Promise<void>;
  setWindow(w: Window): void;
  /** multiply the zoom by `factor` keeping canvas point `at` fixed */
  zoomBy(factor: number, at?: Point): void;
  panBy(dx: number, dy: number): void;
  resetView(): void;
  canvasToImage(p: Point): Point;
  imageToCanvas(p: Point): Point;
  on<K extends keyof ViewerEvents>(kind: K, fn: (payload: ViewerEvents[K]) => void): () => void;
  destroy(): void;
}

/** Geometry of one axis of a case of shape [D, H, W(, 3)] with spacing [sz, sy, sx]. */
export function stackFor(caseId: number, shape: number[], spacing: number[] | undefined, axis: Axis): StackSpec {
  const [d, h, w] = shape;
  const color = shape.length === 4 && shape[3] === 3;
  const [sz, sy, sx] = spacing && spacing.length >= 3 ? spacing : [1, 1, 1];
  if (axis === "axial") return { caseId, axis, count: d, width: w, height: h, spacing: [sx, sy], color };
  if (axis === "coronal") return { caseId, axis, count: h, width: w, height: d, spacing: [sx, sz], color };
  return { caseId, axis, count: w, width: h, height: d, spacing: [sy, sz], color };
}

export function clampIndex(i: number, count: number): number {
  return Math.max(0, Math.min(count - 1, Math.round(i)));
}
