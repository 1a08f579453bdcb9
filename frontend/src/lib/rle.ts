/**
 * Run-length codec for one 2D mask slice, matching the backend (annotation_app/lib/maskcodec.py
 * encode_slice_rle / decode_slice_rle): runs over the row-major flattened slice, alternating
 * 0-runs and 1-runs, always starting with a run of zeros (length 0 when pixel (0,0) is set).
 */

/** Encode a binary mask (any non-zero byte counts as 1), `mask.length === height * width`. */
export function encodeRle(mask: ArrayLike<number>): number[] {
  const n = mask.length;
  if (n === 0) return [];
  const runs: number[] = [];
  let current = 0; // the value whose run we are counting; runs start with zeros
  let length = 0;
  for (let i = 0; i < n; i++) {
    const v = mask[i] ? 1 : 0;
    if (v === current) {
      length++;
    } else {
      runs.push(length);
      current = v;
      length = 1;
    }
  }
  runs.push(length);
  return runs;
}

export class RleError extends Error {}

/** Decode runs into a Uint8Array of 0/1 with `height * width` entries (row-major, index = y * width + x). */
export function decodeRle(runs: number[], height: number, width: number): Uint8Array {
  const total = height * width;
  let sum = 0;
  for (const r of runs) {
    if (!Number.isInteger(r) || r < 0) throw new RleError("run lengths must be non-negative integers");
    sum += r;
  }
  if (sum !== total) throw new RleError(`run lengths sum to ${sum}, expected ${total}`);
  const out = new Uint8Array(total);
  let pos = 0;
  for (let i = 0; i < runs.length; i++) {
    if (i % 2 === 1) out.fill(1, pos, pos + runs[i]);
    pos += runs[i];
  }
  return out;
}

/** Number of set pixels described by runs (sum of the odd-indexed runs). */
export function rleArea(runs: number[]): number {
  let s = 0;
  for (let i = 1; i < runs.length; i += 2) s += runs[i];
  return s;
}
