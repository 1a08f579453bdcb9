import { describe, expect, it } from "vitest";
import { percentileWindow, presetsFor, type WindowPreset } from "../src/lib/windowing";

// five CT windows as GET /api/windows/ serves them (the table itself lives in medsam2/window.py)
const ctWindows: WindowPreset[] = [["abdomen", "CT abdomen", 40, 400], ["lung", "Lung", -600, 1500], ["brain", "Brain", 40, 80], ["bone", "Bone", 400, 1800], ["mediastinum", "Mediastinum", 50, 350]].map(
  ([name, label, level, width]) => ({ name, label, level, width }) as WindowPreset,
);
import { distanceMm } from "../src/tools/tools";
import { markersFor, readoutText, valueAt } from "../src/viewer/orientation";

describe("viewer basics", () => {
  it("offers CT windows only on CT and percentile presets on MR and PET", () => {
    expect(presetsFor("CT", ctWindows).map((p) => p.kind)).toEqual(["fixed", "fixed", "fixed", "fixed", "fixed"]);
    expect(presetsFor("CT", ctWindows)[0].label).toBe("CT abdomen (400/40)");
    for (const m of ["MR", "PT"]) expect(presetsFor(m, ctWindows).every((p) => p.kind === "percentile")).toBe(true);
    expect(presetsFor("US", ctWindows)).toEqual([]);
  });

  it("windows the 1st to 99th percentile of a slice", () => {
    const pixels = Array.from({ length: 1001 }, (_, i) => i); // 0..1000
    expect(percentileWindow(pixels, 1, 99)).toEqual({ width: 980, level: 500 });
    expect(percentileWindow(pixels, 0, 100)).toEqual({ width: 1000, level: 500 });
  });

  it("measures in mm with the slice's own pixel spacing", () => {
    expect(distanceMm([0, 0], [3, 4], [1, 1])).toBe(5);
    expect(distanceMm([0, 0], [0, 10], [0.5, 2.5])).toBe(25); // a coronal view: 2.5 mm between rows
  });

  it("labels the sides of each view in LPS order, radiological style", () => {
    expect(markersFor("axial")).toEqual({ left: "R", right: "L", top: "A", bottom: "P" });
    expect(markersFor("coronal")).toEqual({ left: "R", right: "L", top: "S", bottom: "I" });
    expect(markersFor("sagittal")).toEqual({ left: "A", right: "P", top: "S", bottom: "I" });
  });

  it("reads the value under the cursor, in HU on CT", () => {
    const px = Int16Array.from([-1000, 40, 35, 7]);
    expect(valueAt(px, 2, 2, [1.7, 1.2])).toEqual([7]);
    expect(valueAt(px, 2, 2, [2.1, 0])).toBeNull();
    expect(readoutText([0.5, 1.5], [35], "CT")).toBe("x 0, y 1 · 35 HU");
    expect(readoutText([0.5, 1.5], [812.25], "MR")).toBe("x 0, y 1 · 812.25");
    expect(readoutText([3, 4], [10, 20, 30], "US")).toBe("x 3, y 4 · RGB 10, 20, 30");
  });
});
