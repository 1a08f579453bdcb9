import { describe, expect, it } from "vitest";
import { classifyAll, classifyFrame, frameAt } from "../src/viewer/confidence";

describe("confidence strip", () => {
  it("marks a confident frame with a mask as good", () => {
    expect(classifyFrame({ object_score: 3.2, iou: 0.91 }, true, true)).toBe("good");
  });

  it("marks low predicted IoU as uncertain, then suspect", () => {
    expect(classifyFrame({ object_score: 1, iou: 0.6 }, true, true)).toBe("uncertain");
    expect(classifyFrame({ object_score: 1, iou: 0.3 }, true, true)).toBe("suspect");
  });

  it("flags a no-object frame inside the object's span as a suspect gap but not one past its end", () => {
    expect(classifyFrame({ object_score: -2, iou: 0.9 }, false, true)).toBe("suspect");
    expect(classifyFrame({ object_score: -2, iou: 0.9 }, false, false)).toBe("absent");
  });

  it("shows human-edited frames as such and unscored empty frames as none", () => {
    expect(classifyFrame({ object_score: -2 }, false, true, true)).toBe("human");
    expect(classifyFrame(undefined, false, false)).toBe("none");
    expect(classifyFrame(undefined, true, false)).toBe("human");
  });

  it("classifies a whole stack using the mask span", () => {
    const scores = { "0": { object_score: -1, iou: 0.1 }, "1": { object_score: 2, iou: 0.9 }, "2": { object_score: -1, iou: 0.9 }, "3": { object_score: 2, iou: 0.4 } };
    expect(classifyAll(5, scores, [1, 3])).toEqual(["absent", "good", "suspect", "suspect", "none"]);
  });

  it("maps a click position to a frame", () => {
    expect(frameAt(0, 100, 10)).toBe(0);
    expect(frameAt(55, 100, 10)).toBe(5);
    expect(frameAt(100, 100, 10)).toBe(9);
  });
});

describe("the worker's suspect flags decide the strip", () => {
  it("a flagged slice is suspect even with a high IoU; a lost slice is suspect, not grey", () => {
    expect(classifyFrame({ object_score: 8, iou: 0.95, suspect: ["area_jump"] } as never, true, true)).toBe("suspect");
    expect(classifyFrame({ suspect: ["lost"] } as never, false, false)).toBe("suspect");
    expect(classifyFrame({ object_score: 8, iou: 0.95, suspect: [] } as never, true, true)).toBe("good");
    expect(classifyFrame({ object_score: -9, iou: 0.1, suspect: [] } as never, false, false)).toBe("absent");
  });
});
