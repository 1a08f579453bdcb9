import { describe, expect, it } from "vitest";
import { applyWindow, defaultCtWindow, dragWindow, presetsFor, windowFromRange, windowToRgba, type WindowPresets } from "../src/lib/windowing";

// the shape of GET /api/windows/ (its values are medsam2.window.PRESETS, checked by the server's tests)
const served: WindowPresets = {
  default: "abdomen",
  presets: [
    { name: "abdomen", label: "CT abdomen", level: 40, width: 400 },
    { name: "lung", label: "Lung", level: -600, width: 1500 },
  ],
};

describe("window/level", () => {
  it("maps the abdomen window's edges to black and white and its centre to mid grey", () => {
    const w = defaultCtWindow(served)!; // 400/40 -> [-160, 240]
    expect(w).toEqual({ width: 400, level: 40 });
    expect(applyWindow(-160, w)).toBe(0);
    expect(applyWindow(-1000, w)).toBe(0);
    expect(applyWindow(240, w)).toBe(255);
    expect(applyWindow(40, w)).toBe(128);
  });

  it("numbers the server's CT presets 1, 2, ... in its order (the values: medsam2/tests/test_window.py)", () => {
    const ct = presetsFor("CT", served.presets);
    expect(ct.map((p) => [p.key, p.label])).toEqual([["1", "CT abdomen (400/40)"], ["2", "Lung (1500/-600)"]]);
    expect(ct[1]).toMatchObject({ kind: "fixed", window: { width: 1500, level: -600 } });
    expect(defaultCtWindow({ default: "kidney", presets: served.presets })).toBeNull();
  });

  it("widens on a rightward drag and raises the level on a downward drag, never below width 1", () => {
    expect(dragWindow({ width: 400, level: 40 }, 10, 5, 2)).toEqual({ width: 420, level: 50 });
    expect(dragWindow({ width: 10, level: 0 }, -100, 0, 1).width).toBe(1);
  });

  it("fills RGBA grey pixels", () => {
    const out = new Uint8ClampedArray(8);
    windowToRgba([0, 100], { width: 100, level: 50 }, out);
    expect(Array.from(out)).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
  });

  it("derives a window that spans a value range", () => {
    expect(windowFromRange(-1000, 1000)).toEqual({ width: 2000, level: 0 });
  });
});
