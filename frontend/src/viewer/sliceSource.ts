/**
 * Fetches slices from GET /api/cases/{id}/slice/?axis=&index=&format=raw: little-endian int16 bytes
 * with an X-Shape header ("H,W" or "H,W,3"). Colour frames (videos) come as uint8 RGB when the
 * header says 3 channels. A small LRU cache keeps scrolling back and forth cheap.
 */
import type { ApiClient } from "../services/api";
import type { Axis } from "./types";

export interface SliceData {
  width: number;
  height: number;
  /** grey values in real units (H*W; Float32 when a rescale applies) or interleaved RGB uint8 (H*W*3) */
  pixels: Int16Array | Uint8Array | Float32Array;
  color: boolean;
  min: number;
  max: number;
}

/** Parse an X-Shape header: integers separated by anything ("512,512", "[512, 512, 3]", "512x512"). */
export function parseShapeHeader(value: string | null): number[] {
  if (!value) return [];
  return (value.match(/\d+/g) ?? []).map(Number);
}

/**
 * Decode a raw slice. Stored values become real units (HU for CT) through the X-Rescale-Slope and
 * X-Rescale-Intercept headers (real = stored * slope + intercept), so presets apply directly.
 */
export function decodeRawSlice(
  buffer: ArrayBuffer,
  shapeHeader: string | null,
  dtypeHeader: string | null = null,
  rescale: { slope: number; intercept: number } = { slope: 1, intercept: 0 },
): SliceData {
  const dims = parseShapeHeader(shapeHeader);
  if (dims.length < 2) throw new Error(`slice has no usable X-Shape header (${shapeHeader ?? "missing"})`);
  const color = dims.length >= 3 && dims[dims.length - 1] === 3;
  const [height, width] = color ? dims.slice(-3, -1) : dims.slice(-2);
  const n = height * width * (color ? 3 : 1);
  let pixels: Int16Array | Uint8Array | Float32Array;
  const dtype = (dtypeHeader ?? "").toLowerCase();
  if (buffer.byteLength === n * 2 && !dtype.includes("uint8")) {
    const view = new DataView(buffer);
    const values = new Int16Array(n);
    for (let i = 0; i < n; i++) values[i] = view.getInt16(i * 2, true);
    pixels = color ? Uint8Array.from(values, (v) => Math.max(0, Math.min(255, v))) : values;
  } else if (buffer.byteLength === n) {
    pixels = new Uint8Array(buffer);
    if (!color) pixels = Int16Array.from(pixels);
  } else {
    throw new Error(`slice is ${buffer.byteLength} bytes, expected ${n * 2} for shape ${dims.join("x")}`);
  }
  const { slope, intercept } = rescale;
  if (!color && Number.isFinite(slope) && Number.isFinite(intercept) && (slope !== 1 || intercept !== 0)) {
    pixels = Float32Array.from(pixels, (v) => v * slope + intercept);
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { width, height, pixels, color, min: min === Infinity ? 0 : min, max: max === -Infinity ? 0 : max };
}

export class SliceSource {
  private cache = new Map<string, Promise<SliceData>>();

  constructor(
    private readonly api: ApiClient,
    private readonly capacity = 96,
  ) {}

  static key(caseId: number, axis: Axis, index: number): string {
    return `${caseId}:${axis}:${index}`;
  }

  get(caseId: number, axis: Axis, index: number): Promise<SliceData> {
    const key = SliceSource.key(caseId, axis, index);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit); // most recently used last
      return hit;
    }
    const p = this.api
      .raw(`/api/cases/${caseId}/slice/`, { axis, index, format: "raw" })
      .then(async (res) => {
        const num = (name: string, fallback: number) => {
          const v = Number(res.headers.get(name));
          return res.headers.get(name) !== null && Number.isFinite(v) ? v : fallback;
        };
        const rescale = { slope: num("X-Rescale-Slope", 1), intercept: num("X-Rescale-Intercept", 0) };
        return decodeRawSlice(await res.arrayBuffer(), res.headers.get("X-Shape"), res.headers.get("X-Dtype"), rescale);
      });
    p.catch(() => this.cache.delete(key));
    this.cache.set(key, p);
    while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
    return p;
  }

  prefetch(caseId: number, axis: Axis, index: number, count: number, radius = 3): void {
    for (let d = 1; d <= radius; d++) {
      for (const i of [index + d, index - d]) if (i >= 0 && i < count) void this.get(caseId, axis, i).catch(() => undefined);
    }
  }
}
