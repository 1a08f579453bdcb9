import { describe, expect, it } from "vitest";
import { MaskStore } from "../src/viewer/maskStore";
import { diffFrame, diffToRgba, diffTotals, editedFrames } from "../src/viewer/reviewDiff";

function store(frames: Record<number, number[]>): MaskStore {
  const s = new MaskStore(4, 2, 3);
  for (const [f, px] of Object.entries(frames)) s.set(Number(f), Uint8Array.from(px));
  return s;
}

describe("review diff against the first proposal", () => {
  const proposal = store({ 0: [1, 1, 0, 0, 0, 0], 1: [0, 1, 1, 0, 1, 1], 2: [0, 0, 0, 0, 0, 0] });
  const final = store({ 0: [1, 1, 0, 0, 0, 0], 1: [0, 1, 0, 1, 1, 1], 3: [1, 0, 0, 0, 0, 0] });

  it("marks as edited only the frames that differ (an empty frame equals a missing one)", () => {
    expect([...editedFrames(proposal, final)].sort()).toEqual([1, 3]);
  });

  it("counts added and removed voxels per frame and over the volume", () => {
    const { pixels, counts } = diffFrame(proposal.get(1), final.get(1), 6);
    expect(Array.from(pixels)).toEqual([0, 0, 2, 1, 0, 0]);
    expect(counts).toEqual({ added: 1, removed: 1 });
    expect(diffFrame(undefined, final.get(3), 6).counts).toEqual({ added: 1, removed: 0 });
    expect(diffTotals(proposal, final, [0, 1, 2, 3])).toEqual({ added: 2, removed: 1 });
  });

  it("paints added voxels green and removed ones magenta, the rest transparent", () => {
    const rgba = diffToRgba(Uint8Array.from([0, 1, 2]), 200);
    expect(Array.from(rgba.slice(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(rgba.slice(4, 8))).toEqual([82, 196, 26, 200]);
    expect(Array.from(rgba.slice(8, 12))).toEqual([235, 47, 150, 200]);
  });
});
