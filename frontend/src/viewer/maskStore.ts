/**
 * The working mask of one target: a binary (D, H, W) volume held per frame (z for volumes, t for
 * videos), each frame a row-major Uint8Array of H*W 0/1 values (index = y * W + x). Frames changed
 * by the user are tracked as dirty so a save sends only those slices (MaskRevision POST `slices`).
 */
import { decodeRle, encodeRle } from "../lib/rle";
import type { Axis } from "./types";

export type RleFrames = Record<string, number[] | { rle: number[] }>;

export class MaskStore {
  private frames = new Map<number, Uint8Array>();
  private dirtyFrames = new Set<number>();
  private listeners = new Set<() => void>();
  /** revision the local frames started from (base_revision of the next save) */
  baseRevision: number | null = null;

  constructor(
    readonly depth: number,
    readonly height: number,
    readonly width: number,
  ) {}

  get frameSize(): number {
    return this.height * this.width;
  }

  get dirty(): number[] {
    return [...this.dirtyFrames].sort((a, b) => a - b);
  }

  has(frame: number): boolean {
    return this.frames.has(frame);
  }

  /** The frame's mask (a live view; callers that change it must call `set` or `touch`). */
  get(frame: number): Uint8Array | undefined {
    return this.frames.get(frame);
  }

  /** A writable copy-on-demand frame (created empty when missing). */
  ensure(frame: number): Uint8Array {
    let f = this.frames.get(frame);
    if (!f) {
      f = new Uint8Array(this.frameSize);
      this.frames.set(frame, f);
    }
    return f;
  }

  set(frame: number, data: Uint8Array | null, opts: { dirty?: boolean } = {}): void {
    if (data && data.length !== this.frameSize) throw new Error(`frame ${frame} has ${data.length} pixels, expected ${this.frameSize}`);
    if (data) this.frames.set(frame, data);
    else this.frames.delete(frame);
    if (opts.dirty) this.dirtyFrames.add(frame);
    this.emit();
  }

  touch(frame: number): void {
    this.dirtyFrames.add(frame);
    this.emit();
  }

  /** Replace frames from server RLE ({"<frame>": runs}); server frames never count as dirty. */
  applyRle(frames: RleFrames, opts: { replaceAll?: boolean } = {}): number[] {
    if (opts.replaceAll) for (const f of [...this.frames.keys()]) if (!this.dirtyFrames.has(f)) this.frames.delete(f);
    const applied: number[] = [];
    for (const [key, value] of Object.entries(frames)) {
      const frame = Number(key);
      if (!Number.isInteger(frame) || frame < 0 || frame >= this.depth) continue;
      if (this.dirtyFrames.has(frame)) continue; // never overwrite unsaved human edits
      const runs = Array.isArray(value) ? value : value?.rle;
      if (!Array.isArray(runs)) continue;
      const data = decodeRle(runs, this.height, this.width);
      if (data.some((v) => v)) this.frames.set(frame, data);
      else this.frames.delete(frame);
      applied.push(frame);
    }
    this.emit();
    return applied;
  }

  clearDirty(frames?: number[]): void {
    if (frames) for (const f of frames) this.dirtyFrames.delete(f);
    else this.dirtyFrames.clear();
    this.emit();
  }

  /** The `slices` body of a MaskRevision POST for the dirty frames. */
  dirtyPayload(): Record<string, { rle: number[] }> {
    const out: Record<string, { rle: number[] }> = {};
    for (const f of this.dirty) out[String(f)] = { rle: encodeRle(this.frames.get(f) ?? new Uint8Array(this.frameSize)) };
    return out;
  }

  /** An exact, compact copy of the whole mask: RLE of every frame that has pixels (for undo/redo). */
  snapshot(): Map<number, number[]> {
    const out = new Map<number, number[]>();
    for (const [f, d] of this.frames) if (d.indexOf(1) !== -1) out.set(f, encodeRle(d));
    return out;
  }

  /**
   * Make the mask exactly `snap` (a `snapshot()`); frames that change become dirty, so the next save
   * stores the restored volume. Returns the changed frames.
   */
  restore(snap: Map<number, number[]>): number[] {
    const changed: number[] = [];
    const frames = new Set<number>([...this.frames.keys(), ...snap.keys()]);
    for (const f of [...frames].sort((a, b) => a - b)) {
      const runs = snap.get(f);
      const want = runs ? decodeRle(runs, this.height, this.width) : null;
      const have = this.frames.get(f);
      const same = want ? !!have && have.every((v, i) => v === want[i]) : !have || have.indexOf(1) === -1;
      if (same) continue;
      if (want) this.frames.set(f, want);
      else this.frames.delete(f);
      this.dirtyFrames.add(f);
      changed.push(f);
    }
    if (changed.length) this.emit();
    return changed;
  }

  area(frame: number): number {
    const f = this.frames.get(frame);
    if (!f) return 0;
    let s = 0;
    for (let i = 0; i < f.length; i++) s += f[i];
    return s;
  }

  framesWithMask(): number[] {
    // indexOf is a native scan that stops at the first set pixel (called on every partial result)
    return [...this.frames.entries()].filter(([, d]) => d.indexOf(1) !== -1).map(([f]) => f).sort((a, b) => a - b);
  }

  /**
   * The 2D mask shown on a slice of `axis` at `index` (width x height of that slice, row-major).
   * Axial is a frame; coronal takes row y=index of every frame; sagittal column x=index. Like the
   * server's coronal/sagittal slices, rows run superior-first: row r is frame depth-1-r.
   */
  sliceFor(axis: Axis, index: number): { data: Uint8Array; width: number; height: number } | null {
    if (axis === "axial") {
      const f = this.frames.get(index);
      return f ? { data: f, width: this.width, height: this.height } : null;
    }
    if (this.frames.size === 0) return null;
    if (axis === "coronal") {
      const out = new Uint8Array(this.depth * this.width);
      for (const [z, f] of this.frames) out.set(f.subarray(index * this.width, (index + 1) * this.width), (this.depth - 1 - z) * this.width);
      return { data: out, width: this.width, height: this.depth };
    }
    const out = new Uint8Array(this.depth * this.height);
    for (const [z, f] of this.frames) {
      const row = (this.depth - 1 - z) * this.height;
      for (let y = 0; y < this.height; y++) out[row + y] = f[y * this.width + index];
    }
    return { data: out, width: this.height, height: this.depth };
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }
}

/** Paint (value 1) or erase (value 0) a filled disc of `radius` pixels centred at (cx, cy). */
export function paintDisc(mask: Uint8Array, width: number, height: number, cx: number, cy: number, radius: number, value: 0 | 1): void {
  const r2 = radius * radius;
  const x0 = Math.max(0, Math.floor(cx - radius));
  const x1 = Math.min(width - 1, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius));
  const y1 = Math.min(height - 1, Math.ceil(cy + radius));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) mask[y * width + x] = value;
    }
  }
}

/** Paint discs along the segment a->b so a fast mouse leaves no gaps. */
export function paintSegment(mask: Uint8Array, width: number, height: number, a: [number, number], b: [number, number], radius: number, value: 0 | 1): void {
  const dist = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const steps = Math.max(1, Math.ceil(dist / Math.max(0.5, radius / 2)));
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    paintDisc(mask, width, height, a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, radius, value);
  }
}

/** Pixels of the mask on its boundary (set, with a 4-neighbour unset or outside). */
export function outlineOf(mask: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!mask[i]) continue;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width]) out[i] = 1;
    }
  }
  return out;
}
