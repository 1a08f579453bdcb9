/**
 * Orientation markers and the intensity readout, without DOM. Cases are stored in LPS order
 * (array x runs toward the patient's Left, y toward Posterior, z toward Superior; see
 * annotation_app/imaging/README.md). Axial slices show x to the right and y down; coronal and sagittal
 * rows run superior-first (as the slice API and MaskStore.sliceFor draw them).
 */
import type { Axis, Point } from "./types";

export interface Markers {
  left: string;
  right: string;
  top: string;
  bottom: string;
}

export function markersFor(axis: Axis): Markers {
  if (axis === "axial") return { left: "R", right: "L", top: "A", bottom: "P" };
  if (axis === "coronal") return { left: "R", right: "L", top: "S", bottom: "I" };
  return { left: "A", right: "P", top: "S", bottom: "I" };
}

/** The stored value under image point `p` of a slice (row-major), or null outside it. */
export function valueAt(pixels: ArrayLike<number>, width: number, height: number, p: Point, channels = 1): number[] | null {
  const x = Math.floor(p[0]);
  const y = Math.floor(p[1]);
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  const i = (y * width + x) * channels;
  return Array.from({ length: channels }, (_, c) => pixels[i + c]);
}

/** "x 12, y 40 · 35 HU" (CT), "· 812" (MR, PET), "· RGB 10, 20, 30" (video). */
export function readoutText(p: Point, value: number[] | null, modality: string): string {
  if (!value) return "";
  const where = `x ${Math.floor(p[0])}, y ${Math.floor(p[1])}`;
  if (value.length === 3) return `${where} · RGB ${value.join(", ")}`;
  const v = value[0];
  const shown = Number.isInteger(v) ? String(v) : v.toFixed(2);
  return `${where} · ${shown}${modality === "CT" ? " HU" : ""}`;
}
