/**
 * Window/level math. A window is (width W, level/center L) in stored units (Hounsfield for CT):
 * values <= L - W/2 map to black, >= L + W/2 to white, linear in between.
 */
export interface Window {
  width: number;
  level: number;
}

/** A named CT window as GET /api/windows/ serves it: medsam2.window.PRESETS, the one table (no copy here). */
export interface WindowPreset {
  name: string;
  label: string;
  level: number;
  width: number;
}

/** The body of GET /api/windows/: the presets in key order and the one a CT starts with. */
export interface WindowPresets {
  default: string;
  presets: WindowPreset[];
}

/** A preset offered for a modality: a fixed window (CT, in HU) or a percentile range of the slice. */
export type Preset = { key: string; label: string } & ({ kind: "fixed"; window: Window } | { kind: "percentile"; lo: number; hi: number });

/** The one list of presets per modality: the server's CT windows (keys 1, 2, ...) only on CT; percentile ranges on MR and PET. */
export function presetsFor(modality: string, ctWindows: readonly WindowPreset[]): Preset[] {
  if (modality === "CT") return ctWindows.map((p, i) => ({ key: String(i + 1), label: `${p.label} (${p.width}/${p.level})`, kind: "fixed", window: { width: p.width, level: p.level } }));
  if (modality === "MR" || modality === "PT") {
    return [
      { key: "1", label: "1–99 %", kind: "percentile", lo: 1, hi: 99 },
      { key: "2", label: "5–95 %", kind: "percentile", lo: 5, hi: 95 },
      { key: "3", label: "0.5–99.5 %", kind: "percentile", lo: 0.5, hi: 99.5 },
      { key: "4", label: "Full range", kind: "percentile", lo: 0, hi: 100 },
    ];
  }
  return [];
}

/** The window a CT starts with: the server's default preset (null if the table lacks it). */
export function defaultCtWindow(table: WindowPresets): Window | null {
  const p = table.presets.find((x) => x.name === table.default);
  return p ? { width: p.width, level: p.level } : null;
}

/** The window spanning the lo-th to hi-th percentile of `pixels` (a sample of at most 65536 values). */
export function percentileWindow(pixels: ArrayLike<number>, lo: number, hi: number): Window {
  const n = pixels.length;
  if (!n) return { width: 1, level: 0 };
  const step = Math.max(1, Math.floor(n / 65536));
  const sample = new Float64Array(Math.ceil(n / step));
  for (let i = 0, j = 0; i < n; i += step, j++) sample[j] = pixels[i];
  sample.sort();
  const at = (q: number) => sample[Math.min(sample.length - 1, Math.max(0, Math.round((q / 100) * (sample.length - 1))))];
  return windowFromRange(at(lo), at(hi));
}

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
