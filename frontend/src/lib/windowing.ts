/**
 * Window/level math. A window is (width W, level/center L) in stored units (Hounsfield for CT):
 * values <= L - W/2 map to black, >= L + W/2 to white, linear in between.
 */
export interface Window {
  width: number;
  level: number;
}

export const PRESETS: Record<string, Window & { label: string; key: string }> = {
  abdomen: { label: "CT abdomen", width: 400, level: 40, key: "1" },
  lung: { label: "Lung", width: 1500, level: -600, key: "2" },
  brain: { label: "Brain", width: 80, level: 40, key: "3" },
  bone: { label: "Bone", width: 1800, level: 400, key: "4" },
  mediastinum: { label: "Mediastinum", width: 350, level: 50, key: "5" },
};

export const MIN_WIDTH = 1;

/** Map one stored value to a display byte 0..255. */
export function applyWindow(value: number, w: Window): number {
  const width = Math.max(MIN_WIDTH, w.width);
  const lo = w.level - width / 2;
  const t = (value - lo) / width;
  if (t <= 0) return 0;
  if (t >= 1) return 255;
  return Math.round(t * 255);
}

/** Fill an RGBA buffer (4 bytes per pixel) with the windowed grey values of `pixels`. */
export function windowToRgba(pixels: ArrayLike<number>, w: Window, out: Uint8ClampedArray): void {
  const width = Math.max(MIN_WIDTH, w.width);
  const lo = w.level - width / 2;
  const scale = 255 / width;
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    let g = (pixels[i] - lo) * scale;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    out[j] = out[j + 1] = out[j + 2] = g;
    out[j + 3] = 255;
  }
}

/**
 * Mouse-drag window/level: horizontal drag changes width, vertical drag changes level, scaled by
 * `sensitivity` stored units per pixel (so a CT's wide range and an MR's narrow one both feel right).
 */
export function dragWindow(start: Window, dx: number, dy: number, sensitivity: number): Window {
  return {
    width: Math.max(MIN_WIDTH, start.width + dx * sensitivity),
    level: start.level + dy * sensitivity,
  };
}

/** A starting window that covers the robust value range of an image. */
export function windowFromRange(min: number, max: number): Window {
  const width = Math.max(MIN_WIDTH, max - min);
  return { width, level: min + width / 2 };
}

/** Drag sensitivity: a full-window change over ~500 px of drag. */
export function sensitivityFor(range: number): number {
  return Math.max(0.1, range / 500);
}
