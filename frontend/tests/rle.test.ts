import { describe, expect, it } from "vitest";
import { decodeRle, encodeRle, rleArea, RleError } from "../src/lib/rle";

describe("slice RLE", () => {
  it("starts with a zero run even when the first pixel is set", () => {
    expect(encodeRle([1, 1, 0, 0, 0, 1])).toEqual([0, 2, 3, 1]);
  });

  it("encodes a mask the same way the backend's encode_slice_rle does", () => {
    // backend: encode_slice_rle(np.array([[0,0,1],[1,1,0]])) == [2, 3, 1]
    expect(encodeRle([0, 0, 1, 1, 1, 0])).toEqual([2, 3, 1]);
    expect(encodeRle([0, 0, 0, 0])).toEqual([4]);
    expect(encodeRle([])).toEqual([]);
  });

  it("round-trips a random mask", () => {
    const h = 17;
    const w = 23;
    const mask = new Uint8Array(h * w);
    let seed = 7;
    for (let i = 0; i < mask.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      mask[i] = seed % 3 === 0 ? 1 : 0;
    }
    const runs = encodeRle(mask);
    expect(decodeRle(runs, h, w)).toEqual(mask);
    expect(rleArea(runs)).toBe(mask.reduce((a, b) => a + b, 0));
  });

  it("rejects runs that do not cover the slice", () => {
    expect(() => decodeRle([2, 3], 2, 3)).toThrow(RleError);
    expect(() => decodeRle([7, -1], 2, 3)).toThrow(RleError);
  });
});
