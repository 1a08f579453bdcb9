import { describe, expect, it } from "vitest";
import { encodeRle } from "../src/lib/rle";
import { MaskStore, outlineOf, paintDisc, paintSegment } from "../src/viewer/maskStore";

describe("MaskStore", () => {
  it("loads server RLE frames and reports the frames that have a mask", () => {
    const m = new MaskStore(3, 2, 3);
    m.applyRle({ "0": [6], "1": { rle: [1, 2, 3] }, "2": [0, 6] });
    expect(m.framesWithMask()).toEqual([1, 2]);
    expect(Array.from(m.get(1)!)).toEqual([0, 1, 1, 0, 0, 0]);
    expect(m.area(2)).toBe(6);
  });

  it("never overwrites unsaved human edits with arriving model frames", () => {
    const m = new MaskStore(2, 1, 4);
    m.set(0, Uint8Array.from([1, 1, 0, 0]), { dirty: true });
    m.applyRle({ "0": [4], "1": [2, 2] });
    expect(Array.from(m.get(0)!)).toEqual([1, 1, 0, 0]);
    expect(m.has(1)).toBe(true);
  });

  it("keeps unsaved edits when a whole revision replaces the mask", () => {
    const m = new MaskStore(3, 1, 2);
    m.set(0, Uint8Array.from([1, 0]), { dirty: true });
    m.set(1, Uint8Array.from([1, 1]));
    m.applyRle({ "2": [1, 1] }, { replaceAll: true });
    expect(m.framesWithMask()).toEqual([0, 2]);
  });

  it("sends only dirty frames, encoded like the backend, and forgets them once saved", () => {
    const m = new MaskStore(4, 2, 2);
    m.set(2, Uint8Array.from([0, 1, 1, 1]), { dirty: true });
    m.set(3, null, { dirty: true });
    expect(m.dirtyPayload()).toEqual({ "2": { rle: encodeRle([0, 1, 1, 1]) }, "3": { rle: [4] } });
    m.clearDirty([2, 3]);
    expect(m.dirty).toEqual([]);
  });

  it("cuts coronal and sagittal slices with superior (last frame) first", () => {
    const m = new MaskStore(2, 2, 3); // frames z=0,1 of 2x3
    m.set(0, Uint8Array.from([1, 0, 0, 0, 0, 0]));
    m.set(1, Uint8Array.from([0, 0, 0, 0, 0, 1]));
    const cor = m.sliceFor("coronal", 0)!; // row y=0 of each frame
    expect([cor.width, cor.height]).toEqual([3, 2]);
    expect(Array.from(cor.data)).toEqual([0, 0, 0, 1, 0, 0]); // row 0 = z=1, row 1 = z=0
    const sag = m.sliceFor("sagittal", 2)!; // column x=2
    expect([sag.width, sag.height]).toEqual([2, 2]);
    expect(Array.from(sag.data)).toEqual([0, 1, 0, 0]);
  });

  it("rejects a frame of the wrong size", () => {
    expect(() => new MaskStore(1, 2, 2).set(0, new Uint8Array(3))).toThrow(/expected 4/);
  });
});

describe("painting", () => {
  it("paints a disc of the given radius and erases it again", () => {
    const w = 11;
    const mask = new Uint8Array(w * w);
    paintDisc(mask, w, w, 5.5, 5.5, 3, 1);
    const area = mask.reduce((a, b) => a + b, 0);
    expect(area).toBeGreaterThan(Math.PI * 9 * 0.8);
    expect(area).toBeLessThan(Math.PI * 9 * 1.3);
    expect(mask[5 * w + 5]).toBe(1);
    expect(mask[0]).toBe(0);
    paintDisc(mask, w, w, 5.5, 5.5, 3, 0);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("leaves no gap along a fast stroke", () => {
    const mask = new Uint8Array(40 * 5);
    paintSegment(mask, 40, 5, [1, 2.5], [39, 2.5], 1, 1);
    for (let x = 1; x < 39; x++) expect(mask[2 * 40 + x]).toBe(1);
  });

  it("outlines only boundary pixels", () => {
    const mask = new Uint8Array(25);
    for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) mask[y * 5 + x] = 1;
    const o = outlineOf(mask, 5, 5);
    expect(o[2 * 5 + 2]).toBe(0);
    expect(o.reduce((a, b) => a + b, 0)).toBe(8);
  });
});
