/**
 * Canvas overlay on top of the viewer: the target's mask (filled with opacity, or outline only),
 * prompts on the current frame and the active tool's preview. It redraws whenever the viewer
 * renders, so it follows scroll, zoom and pan; mask pixels map through viewer.imageToCanvas.
 */
import { outlineOf } from "./maskStore";
import type { Point, ViewerService } from "./types";

export interface OverlayLayer {
  draw(ctx: CanvasRenderingContext2D, viewer: ViewerService): void;
}

export interface MaskImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export function hexToRgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex.trim());
  if (!m) return [255, 77, 79];
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** RGBA pixels for a mask: fill (alpha = opacity) or outline (opaque boundary pixels). */
export function maskToRgba(mask: MaskImage, rgb: [number, number, number], opacity: number, outline: boolean): Uint8ClampedArray {
  const src = outline ? outlineOf(mask.data, mask.width, mask.height) : mask.data;
  const out = new Uint8ClampedArray(mask.width * mask.height * 4);
  const a = Math.round((outline ? 1 : opacity) * 255);
  for (let i = 0, j = 0; i < src.length; i++, j += 4) {
    if (!src[i]) continue;
    out[j] = rgb[0];
    out[j + 1] = rgb[1];
    out[j + 2] = rgb[2];
    out[j + 3] = a;
  }
  return out;
}

export class Overlay {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private maskCanvas = document.createElement("canvas");
  private layers: OverlayLayer[] = [];
  private unsubs: (() => void)[] = [];
  private frameRequested = false;
  private frameHandle = 0;
  private destroyed = false;
  mask: MaskImage | null = null;
  color = "#ff4d4f";
  opacity = 0.45;
  outline = false;
  visible = true;

  private constructor(
    private readonly host: HTMLElement,
    private readonly viewer: ViewerService,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "overlay";
    this.canvas.dataset.testid = "overlay";
    host.appendChild(this.canvas);
    this.ctx = this.canvas.getContext("2d")!;
    this.unsubs.push(viewer.on("render", () => this.requestDraw()));
  }

  static create(host: HTMLElement, viewer: ViewerService): Overlay {
    return new Overlay(host, viewer);
  }

  addLayer(layer: OverlayLayer): () => void {
    this.layers.push(layer);
    this.requestDraw();
    return () => {
      this.layers = this.layers.filter((l) => l !== layer);
      this.requestDraw();
    };
  }

  setMask(mask: MaskImage | null): void {
    this.mask = mask;
    if (mask) {
      this.maskCanvas.width = mask.width;
      this.maskCanvas.height = mask.height;
      const rgba = maskToRgba(mask, hexToRgb(this.color), this.opacity, this.outline);
      this.maskCanvas.getContext("2d")!.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, mask.width, mask.height), 0, 0);
    }
    this.requestDraw();
  }

  requestDraw(): void {
    if (this.frameRequested || this.destroyed) return;
    this.frameRequested = true;
    this.frameHandle = requestAnimationFrame(() => {
      this.frameRequested = false;
      this.draw();
    });
  }

  draw(): void {
    // a frame requested just before the view closed must not reach the destroyed viewer
    if (this.destroyed) return;
    const dpr = window.devicePixelRatio || 1;
    const w = this.host.clientWidth;
    const h = this.host.clientHeight;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.viewer.spec) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (this.visible && this.mask) {
      const o = this.viewer.imageToCanvas([0, 0]);
      const ex = this.viewer.imageToCanvas([this.mask.width, 0]);
      const ey = this.viewer.imageToCanvas([0, this.mask.height]);
      ctx.save();
      ctx.imageSmoothingEnabled = false;
      ctx.transform((ex[0] - o[0]) / this.mask.width, (ex[1] - o[1]) / this.mask.width, (ey[0] - o[0]) / this.mask.height, (ey[1] - o[1]) / this.mask.height, o[0], o[1]);
      ctx.drawImage(this.maskCanvas, 0, 0);
      ctx.restore();
    }
    for (const layer of this.layers) {
      ctx.save();
      layer.draw(ctx, this.viewer);
      ctx.restore();
    }
  }

  destroy(): void {
    this.destroyed = true;
    if (this.frameRequested) cancelAnimationFrame(this.frameHandle);
    this.frameRequested = false;
    for (const u of this.unsubs) u();
    this.layers = [];
    this.canvas.remove();
  }
}

/** Draw a box given in image coordinates. */
export function strokeImageBox(ctx: CanvasRenderingContext2D, viewer: ViewerService, a: Point, b: Point, color: string, dashed = false): void {
  const p = viewer.imageToCanvas(a);
  const q = viewer.imageToCanvas(b);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  if (dashed) ctx.setLineDash([6, 4]);
  ctx.strokeRect(Math.min(p[0], q[0]), Math.min(p[1], q[1]), Math.abs(q[0] - p[0]), Math.abs(q[1] - p[1]));
}

export function drawImagePoint(ctx: CanvasRenderingContext2D, viewer: ViewerService, p: Point, positive: boolean): void {
  const c = viewer.imageToCanvas(p);
  ctx.beginPath();
  ctx.arc(c[0], c[1], 5, 0, Math.PI * 2);
  ctx.fillStyle = positive ? "#52c41a" : "#f5222d";
  ctx.fill();
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#fff";
  ctx.stroke();
}
