/**
 * ViewerService on Cornerstone3D: one StackViewport per viewer, images from a custom loader scheme
 * `medsam2:<case>:<axis>:<index>` backed by SliceSource (GET .../slice/?format=raw), metadata from a
 * provider that derives plane/pixel modules from the case geometry (so no DICOM is needed).
 * Cornerstone falls back to its CPU renderer by itself when WebGL is unavailable.
 *
 * Lifecycle: the page keeps ONE RenderingEngine with one WebGL context for its whole life; each viewer
 * enables its element as its own viewport and disables it on destroy. (An engine per viewer created
 * Cornerstone's default pool of 7 contexts each time, and destroying it does not free them at once:
 * after ~3 case opens Chromium warned "Too many active WebGL contexts".) After destroy every method is
 * a no-op and `spec` is null, so a late overlay frame or slice response draws nothing.
 */
import {
  Enums,
  RenderingEngine,
  cache,
  getShouldUseCPURendering,
  init,
  metaData,
  registerImageLoader,
  utilities,
  type StackViewport,
  type Types,
} from "@cornerstonejs/core";
import { Emitter } from "../lib/pubsub";
import { windowFromRange, type Window } from "../lib/windowing";
import type { SliceSource } from "./sliceSource";
import { clampIndex, type Axis, type Point, type StackSpec, type ViewerEvents, type ViewerService } from "./types";

const SCHEME = "medsam2";
let initialised = false;
let viewportCounter = 0;
let sharedEngine: RenderingEngine | null = null;
/** WebGL contexts the shared engine keeps (Cornerstone's default is 7 per engine) */
const WEBGL_CONTEXTS = 1;
/** the slice source and geometry behind each (case, axis), for the global loader and provider */
const registry = new Map<string, { source: SliceSource; spec: StackSpec }>();

export function imageIdFor(caseId: number, axis: Axis, index: number): string {
  return `${SCHEME}:${caseId}:${axis}:${index}`;
}

export function parseImageId(imageId: string): { caseId: number; axis: Axis; index: number } | null {
  const m = /^medsam2:(\d+):(axial|coronal|sagittal):(\d+)$/.exec(imageId);
  return m ? { caseId: Number(m[1]), axis: m[2] as Axis, index: Number(m[3]) } : null;
}

function entryFor(imageId: string) {
  const p = parseImageId(imageId);
  if (!p) return null;
  const e = registry.get(`${p.caseId}:${p.axis}`);
  return e ? { ...p, ...e } : null;
}

function metadataProvider(type: string, imageId: string): unknown {
  const e = entryFor(imageId);
  if (!e) return undefined;
  const { spec, index } = e;
  const [sx, sy] = spec.spacing;
  if (type === "imagePlaneModule") {
    return {
      frameOfReferenceUID: `medsam2.${spec.caseId}.${spec.axis}`,
      rows: spec.height,
      columns: spec.width,
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      rowCosines: [1, 0, 0],
      columnCosines: [0, 1, 0],
      // slices stacked along +z one unit apart; (0,0) is the centre of the first pixel
      imagePositionPatient: [0, 0, index],
      pixelSpacing: [sy, sx],
      // Cornerstone's image fields: columnPixelSpacing is the x (between columns) spacing
      rowPixelSpacing: sy,
      columnPixelSpacing: sx,
      sliceThickness: 1,
    };
  }
  if (type === "imagePixelModule") {
    return {
      samplesPerPixel: spec.color ? 3 : 1,
      photometricInterpretation: spec.color ? "RGB" : "MONOCHROME2",
      rows: spec.height,
      columns: spec.width,
      bitsAllocated: spec.color ? 8 : 16,
      bitsStored: spec.color ? 8 : 16,
      highBit: spec.color ? 7 : 15,
      pixelRepresentation: spec.color ? 0 : 1,
    };
  }
  if (type === "generalSeriesModule") return { modality: spec.color ? "XC" : "CT", seriesInstanceUID: `medsam2.${spec.caseId}` };
  if (type === "voiLutModule") return {};
  if (type === "modalityLutModule") return { rescaleSlope: 1, rescaleIntercept: 0 };
  return undefined;
}

function loadImage(imageId: string): { promise: Promise<Types.IImage> } {
  const e = entryFor(imageId);
  if (!e) return { promise: Promise.reject(new Error(`unknown image ${imageId}`)) };
  const promise = e.source.get(e.caseId, e.axis, e.index).then((s) => {
    const components = s.color ? 3 : 1;
    const voxelManager = utilities.VoxelManager.createImageVoxelManager({
      width: s.width,
      height: s.height,
      scalarData: s.pixels,
      numberOfComponents: components,
      id: imageId,
    });
    const w = windowFromRange(s.min, s.max);
    const image = {
      imageId,
      intercept: 0,
      slope: 1,
      windowCenter: w.level,
      windowWidth: w.width,
      voiLUTFunction: Enums.VOILUTFunctionType.LINEAR,
      color: s.color,
      rgba: false,
      numberOfComponents: components,
      dataType: s.pixels instanceof Float32Array ? "Float32Array" : s.color ? "Uint8Array" : "Int16Array",
      minPixelValue: s.min,
      maxPixelValue: s.max,
      rows: s.height,
      columns: s.width,
      height: s.height,
      width: s.width,
      columnPixelSpacing: e.spec.spacing[0],
      rowPixelSpacing: e.spec.spacing[1],
      invert: false,
      getPixelData: () => s.pixels,
      getCanvas: undefined,
      voxelManager,
      sizeInBytes: s.pixels.byteLength,
      photometricInterpretation: s.color ? "RGB" : "MONOCHROME2",
    };
    return image as unknown as Types.IImage;
  });
  return { promise };
}

function ensureInit(): void {
  if (initialised) return;
  init({ rendering: { webGlContextCount: WEBGL_CONTEXTS } } as Parameters<typeof init>[0]);
  registerImageLoader(SCHEME, loadImage as unknown as Types.ImageLoaderFn);
  metaData.addProvider(metadataProvider as (type: string, ...q: string[]) => unknown, 10000);
  initialised = true;
}

/** The page's one rendering engine, created on first use and kept for the page's life. */
export function renderingEngine(): RenderingEngine {
  ensureInit();
  if (!sharedEngine) sharedEngine = new RenderingEngine("medsam2-engine");
  return sharedEngine;
}

/** How many viewports the shared engine drives now (tests check that closed viewers leave none). */
export function activeViewportCount(): number {
  return sharedEngine ? sharedEngine.getViewports().length : 0;
}

export class CornerstoneViewer implements ViewerService {
  private engine: RenderingEngine;
  private viewportId = `medsam2-vp-${++viewportCounter}`;
  private destroyed = false;
  private events = new Emitter<ViewerEvents>();
  private current: StackSpec | null = null;
  private idx = 0;
  private win: Window = { width: 400, level: 40 };
  private explicitWindow = false;
  private onRendered = () => this.events.emit("render", null);
  private resizeObserver: ResizeObserver;

  private constructor(
    readonly element: HTMLElement,
    private readonly source: SliceSource,
  ) {
    this.engine = renderingEngine();
    this.engine.enableElement({ viewportId: this.viewportId, type: Enums.ViewportType.STACK, element: element as HTMLDivElement });
    element.addEventListener(Enums.Events.IMAGE_RENDERED, this.onRendered);
    // which Cornerstone path draws (WebGL, or its CPU fallback when WebGL is unavailable)
    element.dataset.renderer = getShouldUseCPURendering() ? "cpu" : "webgl";
    this.resizeObserver = new ResizeObserver(() => {
      if (this.destroyed) return;
      this.engine.resize(true, true);
      this.events.emit("render", null);
    });
    this.resizeObserver.observe(element);
  }

  static create(element: HTMLElement, source: SliceSource): CornerstoneViewer {
    return new CornerstoneViewer(element, source);
  }

  private get viewport(): StackViewport {
    return this.engine.getViewport(this.viewportId) as StackViewport;
  }

  /** the viewport while this viewer lives; null once destroyed (or disabled by Cornerstone) */
  private get live(): StackViewport | null {
    return this.destroyed ? null : ((this.engine.getViewport(this.viewportId) as StackViewport | undefined) ?? null);
  }

  get spec(): StackSpec | null {
    return this.destroyed ? null : this.current;
  }

  get index(): number {
    return this.idx;
  }

  get window(): Window {
    return this.win;
  }

  async load(spec: StackSpec, index: number): Promise<void> {
    registry.set(`${spec.caseId}:${spec.axis}`, { source: this.source, spec });
    this.current = spec;
    this.idx = clampIndex(index, spec.count);
    const ids = Array.from({ length: spec.count }, (_, i) => imageIdFor(spec.caseId, spec.axis, i));
    try {
      const vp = this.live;
      if (!vp) return;
      await vp.setStack(ids, this.idx);
    } catch (err) {
      if (!this.destroyed) this.events.emit("error", err instanceof Error ? err.message : String(err));
      return;
    }
    if (!this.explicitWindow) {
      const s = await this.source.get(spec.caseId, spec.axis, this.idx);
      this.win = windowFromRange(s.min, s.max);
    }
    if (!this.live) return;
    this.applyWindow();
    this.viewport.render();
    this.events.emit("index", this.idx);
  }

  async setIndex(index: number): Promise<void> {
    if (!this.current) return;
    const i = clampIndex(index, this.current.count);
    if (i === this.idx) return;
    this.idx = i;
    this.events.emit("index", i);
    try {
      const vp = this.live;
      if (!vp) return;
      await vp.setImageIdIndex(i);
    } catch (err) {
      if (!this.destroyed) this.events.emit("error", err instanceof Error ? err.message : String(err));
      return;
    }
    if (!this.live) return;
    this.applyWindow();
    this.viewport.render();
    this.source.prefetch(this.current.caseId, this.current.axis, i, this.current.count);
  }

  setWindow(w: Window): void {
    this.win = { width: Math.max(1, w.width), level: w.level };
    this.explicitWindow = true;
    if (!this.live) return;
    this.applyWindow();
    this.viewport.render();
    this.events.emit("window", this.win);
  }

  private applyWindow(): void {
    if (this.current?.color) return;
    const lower = this.win.level - this.win.width / 2;
    this.viewport.setProperties({ voiRange: { lower, upper: lower + this.win.width } }, true);
  }

  /** Zoom by moving the camera: parallel scale / factor, then shift so `at` stays put. */
  zoomBy(factor: number, at?: Point): void {
    const vp = this.live;
    if (!vp) return;
    const cam = vp.getCamera();
    if (!cam.parallelScale) return;
    const before = at ? vp.canvasToWorld(at) : null;
    const scale = Math.max(0.05, Math.min(1e5, cam.parallelScale / factor));
    vp.setCamera({ ...cam, parallelScale: scale });
    if (at && before) {
      const after = vp.canvasToWorld(at);
      this.shiftCamera([before[0] - after[0], before[1] - after[1], before[2] - after[2]]);
    }
    vp.render();
  }

  /** Move the image by (dx, dy) canvas pixels. */
  panBy(dx: number, dy: number): void {
    const vp = this.live;
    if (!vp) return;
    const a = vp.canvasToWorld([0, 0]);
    const b = vp.canvasToWorld([dx, dy]);
    // the image follows the pointer, so the camera moves the opposite way
    this.shiftCamera([a[0] - b[0], a[1] - b[1], a[2] - b[2]]);
    vp.render();
  }

  private shiftCamera(d: Types.Point3): void {
    const vp = this.viewport;
    const cam = vp.getCamera();
    const f = cam.focalPoint!;
    const p = cam.position!;
    vp.setCamera({
      ...cam,
      focalPoint: [f[0] + d[0], f[1] + d[1], f[2] + d[2]],
      position: [p[0] + d[0], p[1] + d[1], p[2] + d[2]],
    });
  }

  resetView(): void {
    if (!this.live) return;
    this.viewport.resetCamera();
    this.viewport.render();
  }

  /*
   * Image <-> world by the same geometry the metadata provider gives the viewport: identity
   * cosines, pixel (i, j) centred at world (i * sx, j * sy, index). (Cornerstone's own
   * imageToWorldCoords pairs the row/column spacings the other way round, which is wrong for
   * non-square pixels such as coronal and sagittal views.)
   */
  canvasToImage(p: Point): Point {
    const s = this.current;
    const vp = this.live;
    if (!s || !vp) return [0, 0];
    const world = vp.canvasToWorld(p);
    return [world[0] / s.spacing[0] + 0.5, world[1] / s.spacing[1] + 0.5];
  }

  imageToCanvas(p: Point): Point {
    const s = this.current;
    const vp = this.live;
    if (!s || !vp) return [0, 0];
    const c = vp.worldToCanvas([(p[0] - 0.5) * s.spacing[0], (p[1] - 0.5) * s.spacing[1], this.idx]);
    return [c[0], c[1]];
  }

  on<K extends keyof ViewerEvents>(kind: K, fn: (payload: ViewerEvents[K]) => void): () => void {
    return this.events.on(kind, fn);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.resizeObserver.disconnect();
    this.element.removeEventListener(Enums.Events.IMAGE_RENDERED, this.onRendered);
    this.events.clear();
    // free this viewport only; the shared engine (and its one WebGL context) serves the next viewer
    if (this.engine.getViewport(this.viewportId)) this.engine.disableElement(this.viewportId);
    if (this.current) {
      const prefix = `${SCHEME}:${this.current.caseId}:${this.current.axis}:`;
      for (let i = 0; i < this.current.count; i++) if (cache.getImageLoadObject(prefix + i)) cache.removeImageLoadObject(prefix + i);
    }
  }
}
