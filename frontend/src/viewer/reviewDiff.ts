/**
 * What changed between the model's first proposal and the final mask, without DOM: per-frame
 * provenance (a frame equal to the proposal is the model's; one that differs was edited by a person)
 * and the added/removed voxels of a frame, for the reviewer's diff overlay.
 */
import type { MaskStore } from "./maskStore";

/** 0: unchanged, 1: added (in the final mask only), 2: removed (in the proposal only) */
export type DiffPixels = Uint8Array;

export interface FrameDiff {
  added: number;
  removed: number;
}

export const DIFF_COLORS: Record<1 | 2, [number, number, number]> = {
  1: [82, 196, 26], // added: green
  2: [235, 47, 150], // removed: magenta
};

function sameFrame(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  const aEmpty = !a || a.indexOf(1) === -1;
  const bEmpty = !b || b.indexOf(1) === -1;
  if (aEmpty || bEmpty) return aEmpty && bEmpty;
  if (a!.length !== b!.length) return false;
  for (let i = 0; i < a!.length; i++) if (a![i] !== b![i]) return false;
  return true;
}

/** Frames where `final` differs from `proposal` (those a person edited after the model proposed). */
export function editedFrames(proposal: MaskStore, final: MaskStore): Set<number> {
  const out = new Set<number>();
  for (let f = 0; f < final.depth; f++) if (!sameFrame(proposal.get(f), final.get(f))) out.add(f);
  return out;
}

/** Per-pixel diff of one frame (see DiffPixels) and its counts. */
export function diffFrame(proposal: Uint8Array | undefined, final: Uint8Array | undefined, size: number): { pixels: DiffPixels; counts: FrameDiff } {
  const pixels = new Uint8Array(size);
  let added = 0;
  let removed = 0;
  for (let i = 0; i < size; i++) {
    const p = proposal ? proposal[i] : 0;
    const q = final ? final[i] : 0;
    if (q && !p) {
      pixels[i] = 1;
      added++;
    } else if (p && !q) {
      pixels[i] = 2;
      removed++;
    }
  }
  return { pixels, counts: { added, removed } };
}

/** Added and removed voxels over the whole volume. */
export function diffTotals(proposal: MaskStore, final: MaskStore, frames: Iterable<number>): FrameDiff {
  let added = 0;
  let removed = 0;
  for (const f of frames) {
    const d = diffFrame(proposal.get(f), final.get(f), final.frameSize).counts;
    added += d.added;
    removed += d.removed;
  }
  return { added, removed };
}

/** RGBA for a diff (added green, removed magenta), opaque enough to read over the image. */
export function diffToRgba(pixels: DiffPixels, alpha = 200): Uint8ClampedArray {
  const out = new Uint8ClampedArray(pixels.length * 4);
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    const v = pixels[i] as 0 | 1 | 2;
    if (!v) continue;
    const [r, g, b] = DIFF_COLORS[v];
    out[j] = r;
    out[j + 1] = g;
    out[j + 2] = b;
    out[j + 3] = alpha;
  }
  return out;
}
