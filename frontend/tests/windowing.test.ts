import { describe, expect, it } from "vitest";
import { applyWindow, dragWindow, PRESETS, windowFromRange, windowToRgba } from "../src/lib/windowing";

describe("window/level", () => {
  it("maps the abdomen window's edges to black and white and its centre to mid grey", () => {
    const w = PRESETS.abdomen; // 400/40 -> [-160, 240]
    expect(applyWindow(-160, w)).toBe(0);
    expect(applyWindow(-1000, w)).toBe(0);
    expect(applyWindow(240, w)).toBe(255);
    expect(applyWindow(40, w)).toBe(128);
  });

  it("has the standard CT presets", () => {
    expect([PRESETS.lung.width, PRESETS.lung.level]).toEqual([1500, -600]);
    expect([PRESETS.brain.width, PRESETS.brain.level]).toEqual([80, 40]);
    expect([PRESETS.bone.width, PRESETS.bone.level]).toEqual([1800, 400]);
    expect([PRESETS.mediastinum.width, PRESETS.mediastinum.level]).toEqual([350, 50]);
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
