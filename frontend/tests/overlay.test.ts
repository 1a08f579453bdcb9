import { describe, expect, it } from "vitest";
import { hexToRgb, maskToRgba } from "../src/viewer/overlay";

describe("mask overlay pixels", () => {
  it("parses label colours and falls back to red", () => {
    expect(hexToRgb("#1890ff")).toEqual([24, 144, 255]);
    expect(hexToRgb("teal")).toEqual([255, 77, 79]);
  });

  it("fills set pixels with the label colour at the chosen opacity", () => {
    const rgba = maskToRgba({ data: Uint8Array.from([0, 1]), width: 2, height: 1 }, [10, 20, 30], 0.5, false);
    expect(Array.from(rgba)).toEqual([0, 0, 0, 0, 10, 20, 30, 128]);
  });

  it("in outline mode draws only the boundary, opaque", () => {
    const data = new Uint8Array(9).fill(1); // 3x3 block: all but the centre are boundary
    const rgba = maskToRgba({ data, width: 3, height: 3 }, [1, 2, 3], 0.2, true);
    const alpha = Array.from({ length: 9 }, (_, i) => rgba[i * 4 + 3]);
    expect(alpha).toEqual([255, 255, 255, 255, 0, 255, 255, 255, 255]);
  });
});
