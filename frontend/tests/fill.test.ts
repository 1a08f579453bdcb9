import { describe, expect, it } from "vitest";
import { fillEnclosed } from "../src/lib/fill";

/** A 7x7 slice with a square outline from (1,1) to (5,5). */
function outline(): Uint8Array {
  const d = new Uint8Array(49);
  for (let i = 1; i <= 5; i++) {
    d[1 * 7 + i] = d[5 * 7 + i] = d[i * 7 + 1] = d[i * 7 + 5] = 1;
  }
  return d;
}

describe("fillEnclosed", () => {
  it("fills the inside of a closed outline and nothing else", () => {
    const d = outline();
    expect(fillEnclosed(d, 7, 7, 3.4, 2.9)).toBe(9);
    expect(Array.from(d.slice(2 * 7, 3 * 7))).toEqual([0, 1, 1, 1, 1, 1, 0]);
    expect(d[0]).toBe(0);
  });

  it("leaves a region open to the border unchanged, and a click on the mask or outside the slice", () => {
    const d = outline();
    d[1 * 7 + 3] = 0; // a gap in the top edge
    const before = d.slice();
    expect(fillEnclosed(d, 7, 7, 3, 3)).toBe(0);
    expect(fillEnclosed(d, 7, 7, 1, 1)).toBe(0);
    expect(fillEnclosed(d, 7, 7, -1, 3)).toBe(0);
    expect(d).toEqual(before);
  });
});
