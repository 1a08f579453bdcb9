/**
 * Interaction tools as classes with a static `toolName` and shortcut `key`. A tool turns pointer
 * input (canvas and image coordinates) into calls on its ToolHost (the case workspace), and draws its
 * own preview on the overlay. Tools hold no server logic, which keeps them unit-testable.
 */
import { fillEnclosed } from "../lib/fill";
import { dragWindow, sensitivityFor, type Window } from "../lib/windowing";
import { paintSegment, type MaskStore } from "../viewer/maskStore";
import { drawImagePoint, strokeImageBox } from "../viewer/overlay";
import type { Point, ViewerService } from "../viewer/types";

export interface ToolPointer {
  canvas: Point;
  image: Point;
  buttons: number;
  shift: boolean;
}

export interface ToolHost {
  readonly viewer: ViewerService;
  /** the frame annotation tools act on, or null when the view cannot be annotated (e.g. coronal) */
  annotationFrame(): number | null;
  mask(): MaskStore | null;
  brushRadius: number;
  placeBox(frame: number, box: [number, number, number, number]): void;
  placePoint(frame: number, point: Point, label: 0 | 1): void;
  commitStroke(frame: number, before: Uint8Array | null, after: Uint8Array, mode: "brush" | "eraser" | "fill"): void;
  redraw(): void;
  windowRange(): number;
}

export abstract class Tool {
  static toolName = "tool";
  static key = "";
  static label = "Tool";
  static help = "";
  /** a prompt for the model: hidden in a manual-baseline round, where the model makes no proposals */
  static usesModel = false;
  cursor = "crosshair";

  constructor(protected readonly host: ToolHost) {}

  get name(): string {
    return (this.constructor as typeof Tool).toolName;
  }

  onDown(_p: ToolPointer): void {}
  onMove(_p: ToolPointer): void {}
  onUp(_p: ToolPointer): void {}
  onLeave(): void {}
  draw(_ctx: CanvasRenderingContext2D, _viewer: ViewerService): void {}
}

function clampToImage(p: Point, viewer: ViewerService): Point {
  const s = viewer.spec!;
  return [Math.max(0, Math.min(s.width, p[0])), Math.max(0, Math.min(s.height, p[1]))];
}

export class BoxTool extends Tool {
  static toolName = "box";
  static key = "r";
  static label = "Box";
  static help = "Drag a box around the object: MedSAM2 segments it and propagates";
  static usesModel = true;
  private start: Point | null = null;
  private end: Point | null = null;

  onDown(p: ToolPointer): void {
    if (this.host.annotationFrame() === null) return;
    this.start = clampToImage(p.image, this.host.viewer);
    this.end = this.start;
  }

  onMove(p: ToolPointer): void {
    if (!this.start) return;
    this.end = clampToImage(p.image, this.host.viewer);
    this.host.redraw();
  }

  onUp(p: ToolPointer): void {
    if (!this.start) return;
    const a = this.start;
    const b = clampToImage(p.image, this.host.viewer);
    this.start = this.end = null;
    this.host.redraw();
    const frame = this.host.annotationFrame();
    const box = normaliseBox(a, b);
    if (frame === null || box[2] - box[0] < 2 || box[3] - box[1] < 2) return; // a click, not a box
    this.host.placeBox(frame, box);
  }

  draw(ctx: CanvasRenderingContext2D, viewer: ViewerService): void {
    if (this.start && this.end) strokeImageBox(ctx, viewer, this.start, this.end, "#40a9ff", true);
  }
}

/** [x0, y0, x1, y1] with x0 <= x1, y0 <= y1, rounded to 0.1 px. */
export function normaliseBox(a: Point, b: Point): [number, number, number, number] {
  const r = (v: number) => Math.round(v * 10) / 10;
  return [r(Math.min(a[0], b[0])), r(Math.min(a[1], b[1])), r(Math.max(a[0], b[0])), r(Math.max(a[1], b[1]))];
}

export class PositivePointTool extends Tool {
  static toolName = "point+";
  static key = "p";
  static label = "Point +";
  static help = "Click inside the object to add it to the mask (Shift-click: negative)";
  static usesModel = true;
  protected label: 0 | 1 = 1;

  onUp(p: ToolPointer): void {
    const frame = this.host.annotationFrame();
    if (frame === null) return;
    const label: 0 | 1 = p.shift ? ((1 - this.label) as 0 | 1) : this.label;
    this.host.placePoint(frame, clampToImage(p.image, this.host.viewer), label);
  }
}

export class NegativePointTool extends PositivePointTool {
  static toolName = "point-";
  static key = "n";
  static label = "Point −";
  static help = "Click on what should NOT be in the mask";
  protected label: 0 | 1 = 0;
}

export class BrushTool extends Tool {
  static toolName = "brush";
  static key = "b";
  static label = "Brush";
  static help = "Paint the mask by hand ([ and ] change the size)";
  cursor = "none";
  protected value: 0 | 1 = 1;
  private before: Uint8Array | null = null;
  private frame: number | null = null;
  private last: Point | null = null;
  private hover: Point | null = null;

  onDown(p: ToolPointer): void {
    const frame = this.host.annotationFrame();
    const mask = this.host.mask();
    if (frame === null || !mask) return;
    this.frame = frame;
    const existing = mask.get(frame);
    this.before = existing ? existing.slice() : null;
    const data = mask.ensure(frame);
    this.last = p.image;
    paintSegment(data, mask.width, mask.height, p.image, p.image, this.host.brushRadius, this.value);
    this.host.redraw();
  }

  onMove(p: ToolPointer): void {
    this.hover = p.canvas;
    const mask = this.host.mask();
    if (this.frame !== null && this.last && mask) {
      paintSegment(mask.ensure(this.frame), mask.width, mask.height, this.last, p.image, this.host.brushRadius, this.value);
      this.last = p.image;
    }
    this.host.redraw();
  }

  onUp(): void {
    const mask = this.host.mask();
    if (this.frame === null || !mask) return;
    const after = mask.ensure(this.frame).slice();
    this.host.commitStroke(this.frame, this.before, after, this.value ? "brush" : "eraser");
    this.frame = null;
    this.before = null;
    this.last = null;
  }

  onLeave(): void {
    this.hover = null;
    this.host.redraw();
  }

  draw(ctx: CanvasRenderingContext2D, viewer: ViewerService): void {
    if (!this.hover) return;
    // radius on screen: image radius mapped through the current zoom
    const a = viewer.imageToCanvas([0, 0]);
    const b = viewer.imageToCanvas([this.host.brushRadius, 0]);
    const r = Math.hypot(b[0] - a[0], b[1] - a[1]);
    ctx.beginPath();
    ctx.arc(this.hover[0], this.hover[1], Math.max(1, r), 0, Math.PI * 2);
    ctx.strokeStyle = this.value ? "#fadb14" : "#13c2c2";
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}

export class EraserTool extends BrushTool {
  static toolName = "eraser";
  static key = "e";
  static label = "Eraser";
  static help = "Erase mask pixels ([ and ] change the size)";
  protected value: 0 | 1 = 0;
}

/** Click inside an outline drawn with the brush: the enclosed region becomes mask (one undo step). */
export class FillTool extends Tool {
  static toolName = "fill";
  static key = "f";
  static label = "Fill";
  static help = "Click inside an outline drawn with the brush to fill it";

  onDown(p: ToolPointer): void {
    const frame = this.host.annotationFrame();
    const mask = this.host.mask();
    if (frame === null || !mask) return;
    const existing = mask.get(frame);
    const before = existing ? existing.slice() : null;
    const data = mask.ensure(frame);
    if (fillEnclosed(data, mask.width, mask.height, p.image[0], p.image[1]) > 0) {
      this.host.commitStroke(frame, before, data.slice(), "fill");
    }
    this.host.redraw();
  }
}

export class WindowLevelTool extends Tool {
  static toolName = "wl";
  static key = "w";
  static label = "W/L";
  static help = "Drag: horizontal = window width, vertical = level";
  cursor = "ns-resize";
  private start: { p: Point; w: Window } | null = null;

  onDown(p: ToolPointer): void {
    this.start = { p: p.canvas, w: this.host.viewer.window };
  }

  onMove(p: ToolPointer): void {
    if (!this.start) return;
    const s = sensitivityFor(this.host.windowRange());
    this.host.viewer.setWindow(dragWindow(this.start.w, p.canvas[0] - this.start.p[0], p.canvas[1] - this.start.p[1], s));
  }

  onUp(): void {
    this.start = null;
  }
}

export class PanTool extends Tool {
  static toolName = "pan";
  static key = "h";
  static label = "Pan";
  static help = "Drag to move the image (middle mouse button anywhere)";
  cursor = "grab";
  private last: Point | null = null;

  onDown(p: ToolPointer): void {
    this.last = p.canvas;
  }

  onMove(p: ToolPointer): void {
    if (!this.last) return;
    this.host.viewer.panBy(p.canvas[0] - this.last[0], p.canvas[1] - this.last[1]);
    this.last = p.canvas;
  }

  onUp(): void {
    this.last = null;
  }
}

export class ZoomTool extends Tool {
  static toolName = "zoom";
  static key = "z";
  static label = "Zoom";
  static help = "Drag up/down to zoom (Ctrl+wheel anywhere)";
  cursor = "zoom-in";
  private last: Point | null = null;
  private anchor: Point | null = null;

  onDown(p: ToolPointer): void {
    this.last = p.canvas;
    this.anchor = p.canvas;
  }

  onMove(p: ToolPointer): void {
    if (!this.last || !this.anchor) return;
    this.host.viewer.zoomBy(Math.exp((this.last[1] - p.canvas[1]) / 150), this.anchor);
    this.last = p.canvas;
  }

  onUp(): void {
    this.last = null;
  }
}

/** Distance between two points in mm (pixel spacing of the shown slice: x and y may differ). */
export function distanceMm(a: Point, b: Point, spacing: [number, number]): number {
  return Math.hypot((b[0] - a[0]) * spacing[0], (b[1] - a[1]) * spacing[1]);
}

export class RulerTool extends Tool {
  static toolName = "ruler";
  static key = "l";
  static label = "Ruler";
  static help = "Drag to measure a distance in mm (on any view)";
  /** the last measurement, on the slice it was drawn on */
  line: { a: Point; b: Point; index: number; axis: string } | null = null;
  private dragging = false;

  onDown(p: ToolPointer): void {
    const s = this.host.viewer.spec;
    if (!s) return;
    this.line = { a: p.image, b: p.image, index: this.host.viewer.index, axis: s.axis };
    this.dragging = true;
  }

  onMove(p: ToolPointer): void {
    if (!this.dragging || !this.line) return;
    this.line.b = p.image;
    this.host.redraw();
  }

  onUp(): void {
    this.dragging = false;
  }

  get lengthMm(): number | null {
    const s = this.host.viewer.spec;
    return this.line && s ? distanceMm(this.line.a, this.line.b, s.spacing) : null;
  }

  draw(ctx: CanvasRenderingContext2D, viewer: ViewerService): void {
    const l = this.line;
    if (!l || !viewer.spec || l.index !== viewer.index || l.axis !== viewer.spec.axis) return;
    const a = viewer.imageToCanvas(l.a);
    const b = viewer.imageToCanvas(l.b);
    ctx.strokeStyle = "#69c0ff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
    ctx.fillStyle = "#69c0ff";
    ctx.font = "13px sans-serif";
    ctx.fillText(`${(this.lengthMm ?? 0).toFixed(1)} mm`, b[0] + 6, b[1] - 6);
  }
}

export const TOOL_CLASSES = [BoxTool, PositivePointTool, NegativePointTool, BrushTool, EraserTool, FillTool, WindowLevelTool, PanTool, ZoomTool, RulerTool];

/** The tools of a workspace: without the model's prompts in a manual-baseline round. */
export function toolsFor(manualBaseline: boolean): (typeof TOOL_CLASSES)[number][] {
  return TOOL_CLASSES.filter((t) => !(manualBaseline && t.usesModel));
}

export function toolForKey(key: string, manualBaseline = false): (typeof TOOL_CLASSES)[number] | undefined {
  return toolsFor(manualBaseline).find((t) => t.key === key.toLowerCase());
}

export { drawImagePoint };
