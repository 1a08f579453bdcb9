import { describe, expect, it } from "vitest";
import { BoxTool, BrushTool, EraserTool, FillTool, NegativePointTool, PositivePointTool, TOOL_CLASSES, WindowLevelTool, normaliseBox, toolForKey, toolsFor, type ToolHost, type ToolPointer } from "../src/tools/tools";
import { MaskStore } from "../src/viewer/maskStore";
import type { Point, StackSpec, ViewerService } from "../src/viewer/types";
import type { Window } from "../src/lib/windowing";

function fakeHost(frame: number | null = 3) {
  const spec: StackSpec = { caseId: 1, axis: "axial", count: 10, width: 20, height: 20, spacing: [1, 1], color: false };
  let win: Window = { width: 400, level: 40 };
  const viewer = {
    spec,
    index: 3,
    get window() {
      return win;
    },
    setWindow: (w: Window) => (win = w),
    imageToCanvas: (p: Point) => [p[0] * 10, p[1] * 10] as Point,
    canvasToImage: (p: Point) => [p[0] / 10, p[1] / 10] as Point,
  } as unknown as ViewerService;
  const calls: { boxes: number[][]; points: [Point, number][]; strokes: { frame: number; before: Uint8Array | null; after: Uint8Array; mode: string }[] } = { boxes: [], points: [], strokes: [] };
  const mask = new MaskStore(10, 20, 20);
  const host: ToolHost = {
    viewer,
    annotationFrame: () => frame,
    mask: () => mask,
    brushRadius: 2,
    placeBox: (_f, box) => calls.boxes.push(box),
    placePoint: (_f, p, l) => calls.points.push([p, l]),
    commitStroke: (f, before, after, mode) => calls.strokes.push({ frame: f, before, after, mode }),
    redraw: () => undefined,
    windowRange: () => 2000,
  };
  return { host, calls, mask, viewer };
}

const at = (x: number, y: number, shift = false): ToolPointer => ({ canvas: [x * 10, y * 10], image: [x, y], buttons: 1, shift });

describe("tools", () => {
  it("every tool has a unique name and shortcut key", () => {
    expect(new Set(TOOL_CLASSES.map((t) => t.toolName)).size).toBe(TOOL_CLASSES.length);
    expect(new Set(TOOL_CLASSES.map((t) => t.key)).size).toBe(TOOL_CLASSES.length);
    expect(toolForKey("R")).toBe(BoxTool);
    expect(toolForKey("x")).toBeUndefined();
  });

  it("the box tool places a normalised box clamped to the image, and ignores a click", () => {
    const { host, calls } = fakeHost();
    const box = new BoxTool(host);
    box.onDown(at(15, 12));
    box.onMove(at(8, 4));
    box.onUp(at(25, 4)); // beyond the right edge -> clamped to 20
    expect(calls.boxes).toEqual([[15, 4, 20, 12]]);
    box.onDown(at(5, 5));
    box.onUp(at(5.5, 5.5));
    expect(calls.boxes).toHaveLength(1);
    expect(normaliseBox([3.14159, 9], [1, 2])).toEqual([1, 2, 3.1, 9]);
  });

  it("does nothing on a view that cannot be annotated", () => {
    const { host, calls } = fakeHost(null);
    const box = new BoxTool(host);
    box.onDown(at(1, 1));
    box.onUp(at(9, 9));
    new PositivePointTool(host).onUp(at(2, 2));
    expect(calls.boxes).toEqual([]);
    expect(calls.points).toEqual([]);
  });

  it("point tools place positive and negative points; shift flips them", () => {
    const { host, calls } = fakeHost();
    new PositivePointTool(host).onUp(at(2, 3));
    new NegativePointTool(host).onUp(at(4, 5));
    new PositivePointTool(host).onUp(at(6, 7, true));
    expect(calls.points.map(([, l]) => l)).toEqual([1, 0, 0]);
    expect(calls.points[0][0]).toEqual([2, 3]);
  });

  it("a brush stroke paints the current frame and reports before/after for undo", () => {
    const { host, calls, mask } = fakeHost();
    const brush = new BrushTool(host);
    brush.onDown(at(5, 5));
    brush.onMove(at(12, 5));
    brush.onUp();
    expect(calls.strokes).toHaveLength(1);
    const s = calls.strokes[0];
    expect([s.frame, s.mode, s.before]).toEqual([3, "brush", null]);
    expect(s.after[5 * 20 + 8]).toBe(1);
    expect(mask.area(3)).toBeGreaterThan(20);

    const eraser = new EraserTool(host);
    eraser.onDown(at(8, 5));
    eraser.onUp();
    const e = calls.strokes[1];
    expect(e.mode).toBe("eraser");
    expect(e.before![5 * 20 + 8]).toBe(1);
    expect(e.after[5 * 20 + 8]).toBe(0);
  });

  it("the window/level tool widens with a rightward drag and raises the level downward", () => {
    const { host, viewer } = fakeHost();
    const wl = new WindowLevelTool(host);
    wl.onDown(at(0, 0));
    wl.onMove(at(10, 5)); // 100 px right, 50 px down, 4 units per px
    wl.onUp();
    expect(viewer.window).toEqual({ width: 800, level: 240 });
  });

  it("a manual-baseline round offers no model prompt: brush, eraser and fill stay", () => {
    const names = toolsFor(true).map((t) => t.toolName);
    expect(names).toEqual(expect.arrayContaining(["brush", "eraser", "fill", "wl", "pan", "zoom", "ruler"]));
    expect(names).not.toContain("box");
    expect(names).not.toContain("point+");
    expect(names).not.toContain("point-");
    expect(toolForKey("r", true)).toBeUndefined();
    expect(toolForKey("f", true)).toBe(FillTool);
    expect(toolsFor(false)).toEqual(TOOL_CLASSES);
  });

  it("the fill tool fills the inside of a brushed outline as one stroke, and ignores an open one", () => {
    const { host, calls, mask } = fakeHost(3);
    const data = mask.ensure(3);
    for (let i = 5; i <= 10; i++) data[5 * 20 + i] = data[10 * 20 + i] = data[i * 20 + 5] = data[i * 20 + 10] = 1;
    new FillTool(host).onDown(at(7, 7));
    expect(calls.strokes).toHaveLength(1);
    expect(calls.strokes[0]).toMatchObject({ frame: 3, mode: "fill" });
    expect(calls.strokes[0].after[7 * 20 + 7]).toBe(1);
    expect(calls.strokes[0].before![7 * 20 + 7]).toBe(0);
    new FillTool(host).onDown(at(1, 1)); // outside the outline: open to the border
    expect(calls.strokes).toHaveLength(1);
  });
});
