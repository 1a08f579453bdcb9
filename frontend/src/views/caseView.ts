/**
 * The case workspace: viewer with mask overlay, toolbar, slice slider, confidence strip, job
 * progress, targets list and the annotate / review actions. Mouse: left = active tool, middle =
 * pan, right = window/level, wheel = scroll slices (Ctrl+wheel = zoom). Keys: see HELP.
 */
import type { App, View } from "../app";
import { roleAtLeast } from "../app";
import { defaultCtWindow, percentileWindow, presetsFor, type Preset } from "../lib/windowing";
import { markersFor, readoutText, valueAt } from "../viewer/orientation";
import { SliceSource } from "../viewer/sliceSource";
import { CornerstoneViewer } from "../viewer/cornerstoneViewer";
import { Overlay, drawImagePoint, strokeImageBox } from "../viewer/overlay";
import { classifyAll, drawStrip, frameAt } from "../viewer/confidence";
import { stackFor, type Axis, type Point, type ViewerService } from "../viewer/types";
import { PanTool, TOOL_CLASSES, WindowLevelTool, toolForKey, toolsFor, type Tool, type ToolHost, type ToolPointer } from "../tools/tools";
import type { Case, Project } from "../types";
import { append, clear, errorText, h, statusBadge, toast } from "../ui/dom";
import { ReviewTools } from "./reviewTools";
import { Workspace } from "./workspace";
import { pacsSendPanel } from "./pacsSend";
import { submitCheckDialog } from "./submitCheck";
import { trackActivity } from "../services/activity";
import { windowPresets } from "../services/windows";

const HELP: [string, string][] = [
  ...TOOL_CLASSES.map((t) => [t.key.toUpperCase(), `${t.label}: ${t.help}`] as [string, string]),
  ["↑ ↓ / wheel", "Previous / next slice (PageUp/PageDown: 10)"],
  ["Ctrl+wheel", "Zoom at the cursor; 0 resets the view"],
  ["Right drag / middle drag", "Window/level / pan"],
  ["1–7", "Window presets that fit the modality: CT windows on CT (from the server), percentile ranges on MR and PET"],
  ["[  ]", "Brush / eraser size"],
  ["Ctrl+Z / Ctrl+Shift+Z", "Undo / redo (prompts and brush strokes)"],
  ["Enter", "Propagate again with the current prompts"],
  ["J", "Jump to the next suspect slice (red in the strip)"],
  ["Ctrl+Enter", "Submit the target for review"],
  ["O / M", "Outline mode / hide the mask"],
  ["A / C / S", "Axial / coronal / sagittal"],
  ["Space", "Play / pause (videos)"],
  ["?", "This help"],
];

export async function caseView(root: HTMLElement, app: App, params: URLSearchParams, match: RegExpMatchArray): Promise<View> {
  const { api, events, jobs } = app.services;
  const kase = await api.get<Case>(`/api/cases/${match[1]}/`);
  const project = await api.get<Project>(`/api/projects/${kase.project}/`);
  const ctWindows = kase.kind === "volume" && kase.modality === "CT" ? await windowPresets(api) : null;
  if (kase.status !== "ready") {
    root.append(h("p", { class: "error" }, `Case ${kase.name} is ${kase.status}. ${kase.error}`));
    return { destroy() {} };
  }
  const role = app.roleIn(kase.project);
  root.classList.add("case");
  const ws = new Workspace(api, events, jobs, kase, project);
  const unsubs: (() => void)[] = [() => ws.destroy()];
  const source = new SliceSource(api);

  // --- layout
  const viewerEl = h("div", { class: "viewer-canvas", "data-testid": "viewer" });
  const viewerHost = h("div", { class: "viewer-host" }, viewerEl);
  const slider = h("input", { type: "range", min: "0", value: "0", class: "slider", "data-testid": "slice-slider" });
  const sliceLabel = h("span", { class: "slice-label", "data-testid": "slice-label" });
  // the value under the cursor (HU on CT) and the patient's sides around the view
  const readout = h("span", { class: "muted readout", "data-testid": "readout", style: { marginLeft: "1em", fontVariantNumeric: "tabular-nums" } });
  const marker = (side: "left" | "right" | "top" | "bottom") =>
    h("span", { class: "orientation-marker", "data-testid": `orient-${side}`, style: { position: "absolute", zIndex: "6", pointerEvents: "none", color: "#ffd666", font: "bold 14px sans-serif", textShadow: "0 0 3px #000",
      ...(side === "left" ? { left: "6px", top: "50%" } : side === "right" ? { right: "6px", top: "50%" } : side === "top" ? { top: "6px", left: "50%" } : { bottom: "6px", left: "50%" }) } });
  const markers = { left: marker("left"), right: marker("right"), top: marker("top"), bottom: marker("bottom") };
  viewerHost.append(...Object.values(markers));
  const strip = h("canvas", { class: "strip", "data-testid": "confidence-strip", title: "Model confidence per slice: red = check this slice" });
  const progress = h("div", { class: "progress", "data-testid": "job-progress" }, h("div", { class: "bar" }), h("span", { class: "text" }));
  const toolbar = h("div", { class: "toolbar", role: "toolbar" });
  const side = h("aside", { class: "side" });
  const help = h("div", { class: "help hidden", role: "dialog", "data-testid": "help" });
  root.append(
    h("div", { class: "case-header" }, h("h1", {}, kase.name), h("span", { class: "muted" }, `${project.name} · ${kase.kind} ${kase.modality} · ${kase.shape.join("×")}`)),
    toolbar,
    h("div", { class: "workspace" }, h("div", { class: "viewer-col" }, viewerHost, h("div", { class: "slice-row" }, slider, sliceLabel, readout), strip, progress), side),
    help,
  );

  const viewer: ViewerService = CornerstoneViewer.create(viewerEl, source);
  unsubs.push(() => viewer.destroy());
  // for debugging and the end-to-end test (geometry checks); not an API
  (window as unknown as { medsam2Viewer?: ViewerService }).medsam2Viewer = viewer;
  (window as unknown as { medsam2Workspace?: Workspace }).medsam2Workspace = ws;
  const overlay = Overlay.create(viewerHost, viewer);
  unsubs.push(() => overlay.destroy());
  // review: first proposal, provenance, diff, reviewer's fix, slice comments
  const review = new ReviewTools(api, ws, () => axis === "axial", app.me?.id ?? null);
  unsubs.push(
    () => review.destroy(),
    overlay.addLayer(review.layer()),
    review.events.on("change", () => (renderSide(), refreshStrip(), overlay.requestDraw())),
    review.events.on("message", ({ text, kind }) => toast(text, kind)),
    review.events.on("jump", (frame) => void (axis === "axial" ? viewer.setIndex(frame) : setAxis("axial").then(() => viewer.setIndex(frame)))),
  );
  let axis: Axis = "axial";
  /** a target id from the URL that this case does not have */
  let missingTarget: string | null = null;
  let brushRadius = 6;
  let playing: ReturnType<typeof setInterval> | null = null;

  const host: ToolHost = {
    viewer,
    // prompts need the frame axis and an editable target (or none yet: the first box creates one)
    annotationFrame: () => (axis === "axial" && (!ws.target || ws.editable) ? viewer.index : null),
    mask: () => ws.mask,
    get brushRadius() {
      return brushRadius;
    },
    set brushRadius(v: number) {
      brushRadius = v;
    },
    placeBox: (frame, box) => void ws.placeBox(frame, box),
    placePoint: (frame, p, label) => void ws.placePoint(frame, p, label),
    commitStroke: (frame, before, after, mode) => ws.commitStroke(frame, before, after, mode),
    redraw: () => refreshOverlay(),
    windowRange: () => 2000,
  };
  const tools = new Map<string, Tool>(TOOL_CLASSES.map((T) => [T.toolName, new T(host)]));
  let active: Tool = tools.get("box")!;
  let dragTool: Tool | null = null;

  // prompts and tool preview on the overlay
  unsubs.push(
    overlay.addLayer({
      draw(ctx, v) {
        if (axis === "axial") {
          // where each target is on its key slice, so "lesion #2" can be told from its neighbour
          for (const x of ws.targets) {
            const loc = x.location;
            if (!loc || x.key_frame !== v.index) continue;
            const color = x.id === ws.target?.id ? "#fadb14" : "#d9d9d9";
            let at: Point | null = null;
            if (loc.box) {
              strokeImageBox(ctx, v, [loc.box[0], loc.box[1]], [loc.box[2], loc.box[3]], color, true);
              at = v.imageToCanvas([loc.box[0], loc.box[1]]);
            } else if (loc.point) {
              drawImagePoint(ctx, v, loc.point, true);
              at = v.imageToCanvas(loc.point);
            }
            if (at) {
              ctx.fillStyle = color;
              ctx.font = "12px sans-serif";
              ctx.fillText(`#${x.id}`, at[0] + 2, at[1] - 4);
            }
          }
          for (const p of ws.prompts) {
            if (p.frame !== v.index || p.withdrawn) continue;
            if (p.kind === "box") {
              const b = p.payload.box as number[];
              strokeImageBox(ctx, v, [b[0], b[1]], [b[2], b[3]], "#40a9ff");
            } else if (p.kind === "point") {
              const pts = p.payload.points as Point[];
              const labels = p.payload.labels as number[];
              pts.forEach((pt, i) => drawImagePoint(ctx, v, pt, labels[i] === 1));
            }
          }
        }
        (dragTool ?? active).draw(ctx, v);
      },
    }),
  );

  function refreshOverlay(): void {
    overlay.color = ws.labelColor;
    overlay.setMask(ws.mask && viewer.spec ? ws.mask.sliceFor(axis, viewer.index) : null);
  }

  function refreshStrip(): void {
    if (!viewer.spec) return;
    const count = viewer.spec.count;
    if (axis !== "axial" || !ws.mask) {
      drawStrip(strip, new Array(count).fill("none"), viewer.index);
      return;
    }
    // after a person's edits, the frames that differ from the first proposal are theirs; the others
    // keep the model's confidence (the edited revision itself carries no scores)
    review.compare();
    const edited = review.finalIsEdited && ws.viewing === "current" ? new Set([...ws.mask.dirty, ...review.edited]) : new Set(ws.mask.dirty);
    const scores = Object.keys(ws.scores).length ? ws.scores : review.scores;
    drawStrip(strip, classifyAll(count, scores, ws.mask.framesWithMask(), edited), viewer.index);
  }

  function refreshProgress(): void {
    const job = ws.job;
    const bar = progress.querySelector(".bar") as HTMLElement;
    const text = progress.querySelector(".text") as HTMLElement;
    progress.dataset.status = job?.status ?? "idle";
    if (!job) {
      bar.style.width = "0";
      text.textContent = "";
      return;
    }
    if (ws.workerProblem && ws.jobRunning) {
      // no live worker listens: say so rather than show a bar that never moves
      progress.dataset.status = "no-worker";
      bar.style.width = "0";
      text.textContent = ws.workerProblem;
      return;
    }
    const frac = job.frames_total ? job.frames_done / job.frames_total : job.progress;
    bar.style.width = `${Math.round(frac * 100)}%`;
    text.textContent = `${job.status} ${job.frames_done}/${job.frames_total || "?"} frames${job.device ? ` · ${job.device}` : ""}`;
  }

  async function setAxis(a: Axis): Promise<void> {
    if (kase.kind === "video" && a !== "axial") return;
    axis = a;
    const spec = stackFor(kase.id, kase.shape, kase.spacing, a);
    const start = a === "axial" ? (ws.target?.key_frame ?? Math.floor(spec.count / 2)) : Math.floor(spec.count / 2);
    slider.max = String(spec.count - 1);
    if (kase.kind === "volume") for (const [side, text] of Object.entries(markersFor(a))) markers[side as keyof typeof markers].textContent = text;
    await viewer.load(spec, start);
    renderToolbar();
    refreshOverlay();
    refreshStrip();
  }

  const setIndex = (i: number) => void viewer.setIndex(i);
  unsubs.push(
    viewer.on("index", (i) => {
      if (axis === "axial") ws.visit(i);
      slider.value = String(i);
      sliceLabel.textContent = `${axis === "axial" ? (kase.kind === "video" ? "frame" : "slice") : axis} ${i + 1} / ${viewer.spec?.count ?? 0}`;
      refreshOverlay();
      refreshStrip();
      // the per-slice diff counts, updated in place (re-rendering the panel would swallow clicks on it)
      const diffLine = side.querySelector("[data-testid=diff-slice]");
      if (review.showDiff && diffLine) diffLine.textContent = review.diffSliceText(i);
    }),
    viewer.on("error", (msg) => toast(`Slice failed to load: ${msg}`, "error")),
    viewer.on("window", () => renderToolbar()),
  );
  slider.addEventListener("input", () => setIndex(Number(slider.value)));
  strip.addEventListener("mousemove", (e) => {
    if (!viewer.spec) return;
    const f = frameAt(e.offsetX, strip.clientWidth, viewer.spec.count);
    const sc = axis === "axial" ? ws.scores[String(f)] : undefined;
    const fmt = (v: number | undefined, d: number) => (v === undefined ? "?" : v.toFixed(d));
    const unit = kase.kind === "video" ? "frame" : "slice";
    strip.title = sc ? `${unit} ${f + 1}: object score ${fmt(sc.object_score, 2)}, predicted IoU ${fmt(sc.iou, 2)}` : `${unit} ${f + 1}`;
  });
  strip.addEventListener("click", (e) => {
    if (viewer.spec) setIndex(frameAt(e.offsetX, strip.clientWidth, viewer.spec.count));
  });

  /** Why the tools cannot change the target now (null when they can). */
  function lockReason(): string | null {
    const t = ws.target;
    if (ws.editable) return null;
    if (!t || ws.viewing !== "current") return t ? "Showing the model proposal: switch to the final mask to edit." : null;
    if (t.status === "submitted") return "Submitted: locked until a reviewer accepts or rejects it.";
    if (t.status === "accepted") return "Accepted: this target is final and locked.";
    return null;
  }
  const EDIT_TOOLS = new Set(["box", "point+", "point-", "brush", "eraser"]);
  let lastLockToast = 0;

  // --- pointer input on the overlay canvas
  const canvas = overlay.canvas;
  const pointer = (e: PointerEvent | MouseEvent): ToolPointer => {
    const r = canvas.getBoundingClientRect();
    const c: Point = [e.clientX - r.left, e.clientY - r.top];
    return { canvas: c, image: viewer.canvasToImage(c), buttons: e.buttons, shift: e.shiftKey };
  };
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("pointerdown", (e) => {
    if (review.pinArmed && e.button === 0 && axis === "axial") {
      void review.pinAt(viewer.index, pointer(e).image);
      return;
    }
    canvas.setPointerCapture(e.pointerId);
    dragTool = e.button === 1 ? tools.get(PanTool.toolName)! : e.button === 2 ? tools.get(WindowLevelTool.toolName)! : active;
    const reason = lockReason();
    if (dragTool === active && EDIT_TOOLS.has(active.name) && reason && performance.now() - lastLockToast > 3000) {
      lastLockToast = performance.now();
      toast(reason, "info");
    }
    dragTool.onDown(pointer(e));
  });
  canvas.addEventListener("pointermove", (e) => {
    const p = pointer(e);
    (dragTool ?? active).onMove(p);
    void showValue(p.image);
  });

  /** Intensity readout under the cursor, from the slice already loaded for display. */
  async function showValue(p: Point): Promise<void> {
    const spec = viewer.spec;
    if (!spec) return;
    const index = viewer.index;
    const slice = await source.get(kase.id, spec.axis, index).catch(() => null);
    if (!slice || viewer.index !== index) return;
    readout.textContent = readoutText(p, valueAt(slice.pixels, slice.width, slice.height, p, slice.color ? 3 : 1), kase.modality);
  }

  function applyPreset(p: Preset): void {
    if (p.kind === "fixed") return viewer.setWindow(p.window);
    const spec = viewer.spec;
    if (!spec) return;
    void source.get(kase.id, spec.axis, viewer.index).then((s) => viewer.setWindow(percentileWindow(s.pixels, p.lo, p.hi)), () => undefined);
  }
  const presets = kase.kind === "volume" ? presetsFor(kase.modality, ctWindows?.presets ?? []) : [];
  canvas.addEventListener("pointerup", (e) => {
    const t = dragTool;
    dragTool = null;
    t?.onUp(pointer(e));
  });
  canvas.addEventListener("pointerleave", () => active.onLeave());
  canvas.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      if (e.ctrlKey) viewer.zoomBy(Math.exp(-e.deltaY / 400), pointer(e).canvas);
      else setIndex(viewer.index + (e.deltaY > 0 ? 1 : -1));
    },
    { passive: false },
  );

  // --- toolbar
  function renderToolbar(): void {
    clear(toolbar);
    const btn = (label: string, title: string, on: () => void, pressed = false, testid?: string) =>
      h("button", { class: pressed ? "tool active" : "tool", title, "aria-pressed": String(pressed), onclick: on, "data-testid": testid }, label);
    // a manual-baseline round: no model prompts, only brush, eraser and fill (timing still records)
    for (const T of toolsFor(ws.manualBaseline)) {
      toolbar.append(btn(T.label, `${T.help} (${T.key.toUpperCase()})`, () => selectTool(T.toolName), active.name === T.toolName, `tool-${T.toolName}`));
    }
    toolbar.append(
      h("label", { class: "inline", title: "Brush size ([ and ])" }, "Size", h("input", { type: "range", min: "1", max: "40", value: String(brushRadius), "data-testid": "brush-size", oninput: (e: Event) => (brushRadius = Number((e.target as HTMLInputElement).value)) })),
      h("span", { class: "sep" }),
      btn("Undo", "Ctrl+Z", () => void ws.doUndo(), false, "undo"),
      btn("Redo", "Ctrl+Shift+Z", () => void ws.doRedo(), false, "redo"),
      h("span", { class: "sep" }),
    );
    if (kase.kind === "volume") {
      for (const a of ["axial", "coronal", "sagittal"] as Axis[]) toolbar.append(btn(a[0].toUpperCase() + a.slice(1), `${a} view`, () => void setAxis(a), axis === a, `axis-${a}`));
      const preset = h("select", { "data-testid": "preset", title: `Window presets for ${kase.modality} (keys ${presets.map((p) => p.key).join(", ")})` }, h("option", { value: "" }, `W ${Math.round(viewer.window.width)} / L ${Math.round(viewer.window.level)}`), ...presets.map((p) => h("option", { value: p.key }, `${p.key} ${p.label}`)));
      preset.addEventListener("change", () => {
        const chosen = presets.find((p) => p.key === preset.value);
        if (chosen) applyPreset(chosen);
      });
      toolbar.append(preset);
    } else {
      toolbar.append(btn(playing ? "Pause" : "Play", "Space", togglePlay, !!playing, "play"));
    }
    toolbar.append(
      h("span", { class: "sep" }),
      h("label", { class: "inline" }, "Opacity", h("input", { type: "range", min: "0", max: "100", value: String(Math.round(overlay.opacity * 100)), "data-testid": "opacity", oninput: (e: Event) => ((overlay.opacity = Number((e.target as HTMLInputElement).value) / 100), refreshOverlay()) })),
      btn("Outline", "O", () => ((overlay.outline = !overlay.outline), refreshOverlay(), renderToolbar()), overlay.outline, "outline"),
      btn("?", "Keyboard shortcuts", () => toggleHelp(), false, "help-button"),
    );
  }

  function selectTool(name: string): void {
    active.onLeave();
    active = tools.get(name) ?? active;
    canvas.style.cursor = active.cursor;
    renderToolbar();
  }

  function togglePlay(): void {
    if (playing) {
      clearInterval(playing);
      playing = null;
    } else {
      const fps = kase.frame_rate && kase.frame_rate > 0 ? kase.frame_rate : 10;
      playing = setInterval(() => {
        const n = viewer.spec?.count ?? 1;
        setIndex((viewer.index + 1) % n);
      }, 1000 / fps);
    }
    renderToolbar();
  }
  unsubs.push(() => playing && clearInterval(playing));

  function toggleHelp(show?: boolean): void {
    const visible = show ?? help.classList.contains("hidden");
    help.classList.toggle("hidden", !visible);
    clear(help);
    if (visible)
      help.append(
        h("h2", {}, "Keyboard shortcuts"),
        h("table", {}, ...HELP.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
        h("button", { onclick: () => toggleHelp(false) }, "Close (Esc)"),
      );
  }

  // --- side panel: targets and actions
  function renderSide(): void {
    clear(side);
    const t = ws.target;
    const labelSelect = h("select", { "data-testid": "new-target-label" }, ...project.labels.map((l) => h("option", { value: l.name }, l.name)));
    side.append(
      h("h2", {}, "Targets"),
      h(
        "ul",
        { class: "targets", "data-testid": "targets" },
        ...ws.targets.map((x) =>
          h(
            "li",
            { class: x.id === t?.id ? "selected" : "", "data-testid": `target-${x.id}` },
            h("button", { class: "link", onclick: () => void ws.select(x.id).then(() => setAxis(axis)) }, `${x.label} #${x.id}`),
            " ",
            statusBadge(x.status),
            x.current_revision ? h("span", { class: "muted" }, ` rev ${x.current_revision.number} (${x.current_revision.source})`) : null,
            h("span", { class: "muted", "data-testid": `target-range-${x.id}` }, x.frame_range ? ` · slices ${x.frame_range[0] + 1}–${x.frame_range[1] + 1}` : x.key_frame !== null ? ` · key slice ${x.key_frame + 1}` : ""),
          ),
        ),
      ),
      h("div", { class: "row" }, labelSelect, h("button", { "data-testid": "new-target", onclick: () => void ws.createTarget(labelSelect.value).catch((e) => toast(errorText(e), "error")) }, "New target")),
    );
    if (missingTarget !== null) side.append(h("p", { class: "error", "data-testid": "target-missing" }, `Target #${missingTarget} is not in this case (or you cannot see it).`));
    if (!t) {
      side.append(h("p", { class: "muted" }, "Draw a box (R) on the object: a target is created and MedSAM2 segments it."));
      return;
    }
    append(
      side,
      h("h3", {}, `${t.label} #${t.id} `, statusBadge(t.status)),
      t.review_comment ? h("p", { class: "comment" }, `Reviewer: ${t.review_comment}`) : null,
      lockReason() ? h("p", { class: "notice", "data-testid": "locked" }, lockReason()) : null,
      h("p", { class: "muted", "data-testid": "target-info" }, `${ws.prompts.filter((p) => !p.withdrawn).length} prompts · ${ws.mask?.framesWithMask().length ?? 0} slices with mask${ws.mask?.dirty.length ? ` · ${ws.mask.dirty.length} unsaved` : ""}`),
    );
    const actions = h("div", { class: "actions" });
    const clearSlices = () => {
      const here = viewer.index + 1;
      const answer = window.prompt("Clear the mask on slices (first–last):", `${here}–${here}`);
      const m = answer ? /^\s*(\d+)\s*(?:[-–]\s*(\d+))?\s*$/.exec(answer) : null;
      if (!m) return;
      const lo = Number(m[1]) - 1;
      const hi = m[2] ? Number(m[2]) - 1 : lo;
      const n = ws.clearRange(Math.min(lo, hi), Math.max(lo, hi));
      toast(n ? `Cleared ${n} slice${n === 1 ? "" : "s"} (Ctrl+Z brings them back).` : "Nothing to clear there.", "info");
    };
    const model = !ws.manualBaseline;
    if (ws.editable) {
      append(
        actions,
        model ? h("button", { "data-testid": "propagate", disabled: ws.jobRunning, onclick: () => void ws.propagate() }, "Propagate (Enter)") : h("p", { class: "muted", "data-testid": "manual-baseline" }, "Manual-baseline round: no model proposals. Draw with the brush, eraser and fill."),
        model && axis === "axial" ? h("button", { "data-testid": "propagate-forward", disabled: ws.jobRunning, title: "Propagate only towards higher slices, from this one", onclick: () => void ws.propagateFrom(viewer.index, "forward") }, "Forward from here") : null,
        model && axis === "axial" ? h("button", { "data-testid": "propagate-backward", disabled: ws.jobRunning, title: "Propagate only towards lower slices, from this one", onclick: () => void ws.propagateFrom(viewer.index, "backward") }, "Backward from here") : null,
        axis === "axial" ? h("button", { "data-testid": "clear-range", title: "Clear the mask on a range of slices (undo brings it back)", onclick: () => clearSlices() }, "Clear slices…") : null,
        ws.jobRunning ? h("button", { "data-testid": "cancel-job", onclick: () => void ws.cancelJob() }, "Cancel") : null,
        h("button", { "data-testid": "save", disabled: !ws.mask?.dirty.length, onclick: () => void ws.save().catch(() => undefined) }, "Save edits"),
        h("button", { class: "primary", "data-testid": "submit", disabled: ws.jobRunning || !t.current_revision && !ws.mask?.dirty.length, onclick: () => trySubmit() }, "Submit (Ctrl+Enter)"),
      );
    }
    if (roleAtLeast(role, "reviewer") && t.status === "submitted" && review.ownWork) {
      actions.append(h("p", { class: "notice", "data-testid": "own-work" }, "You annotated this target: another reviewer must review it."));
    } else if (roleAtLeast(role, "reviewer") && t.status === "submitted") {
      const comment = h("textarea", { placeholder: "Comment (required to reject)", "data-testid": "review-comment", rows: 3 });
      actions.append(
        h("div", { class: "review" }, h("h3", {}, "Review"), comment,
          h("div", { class: "row" },
            h("button", { class: "primary", "data-testid": "accept", onclick: () => void ws.review("accept", comment.value) }, "Accept"),
            h("button", { class: "danger", "data-testid": "reject", onclick: () => (comment.value.trim() ? void ws.review("reject", comment.value) : toast("Say what to fix before rejecting.", "error")) }, "Reject"),
          ),
        ),
      );
    }
    if (t.current_revision) {
      actions.append(
        h("div", { class: "row" },
          h("button", { class: ws.viewing === "proposal" ? "tool active" : "tool", "data-testid": "show-proposal", onclick: () => void ws.showRevision("proposal") }, "Model proposal"),
          h("button", { class: ws.viewing === "current" ? "tool active" : "tool", "data-testid": "show-final", onclick: () => void ws.showRevision("current") }, "Final mask"),
        ),
      );
    }
    side.append(actions, review.panel(role, viewer.index));
    // accepted targets: their DICOM SEG sends to the PACS (state per revision, send and retry)
    if (t.status === "accepted" && kase.kind === "volume") side.append(pacsSendPanel(api, t, kase.project, roleAtLeast(role, "reviewer")));
  }

  /** Submit, asking first (in the page) when suspect slices of the target were not visited. */
  let submitCheck: HTMLElement | null = null;
  function trySubmit(): void {
    const unvisited = ws.editable ? ws.unvisitedSuspects() : [];
    if (!unvisited.length) return void ws.submit(); // (a locked target: the server says why)
    submitCheck?.remove();
    submitCheck = submitCheckDialog(unvisited, kase.kind === "video" ? "frame" : "slice", {
      review: (f) => void (axis === "axial" ? viewer.setIndex(f) : setAxis("axial").then(() => viewer.setIndex(f))),
      submit: () => void ws.submit(),
    });
    root.append(submitCheck);
  }
  unsubs.push(() => submitCheck?.remove());

  unsubs.push(
    ws.events.on("change", () => {
      if (axis === "axial" && ws.target) ws.visit(viewer.index); // the slice in view when the mask changes
      if (ws.manualBaseline && !toolsFor(true).some((T) => T.toolName === active.name)) selectTool("brush");
      void review.load().catch((err) => toast(errorText(err), "error"));
      renderSide();
      refreshOverlay();
      refreshStrip();
      refreshProgress();
    }),
    ws.events.on("message", ({ text, kind }) => toast(text, kind)),
    ws.events.on("firstFrames", (frames) => {
      if (axis === "axial" && ws.mask && !ws.mask.has(viewer.index) && frames.length) setIndex(frames[0]);
    }),
  );

  // --- keyboard
  const onKey = (e: KeyboardEvent) => {
    const tag = (e.target as HTMLElement)?.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key;
    if (ctrl && key.toLowerCase() === "z") {
      e.preventDefault();
      void (e.shiftKey ? ws.doRedo() : ws.doUndo());
    } else if (ctrl && key.toLowerCase() === "y") {
      e.preventDefault();
      void ws.doRedo();
    } else if (ctrl && key === "Enter") {
      e.preventDefault();
      trySubmit();
    } else if (ctrl) {
      return;
    } else if (key === "ArrowUp" || key === "ArrowLeft") setIndex(viewer.index - 1);
    else if (key === "ArrowDown" || key === "ArrowRight") setIndex(viewer.index + 1);
    else if (key === "PageUp") setIndex(viewer.index - 10);
    else if (key === "PageDown") setIndex(viewer.index + 10);
    else if (key === "Enter") void ws.propagate();
    else if (key.toLowerCase() === "j") {
      const next = ws.nextSuspect(viewer.index);
      if (next === null) toast("No suspect slices.", "info");
      else setIndex(next);
    } else if (key === "?") toggleHelp();
    else if (key === "Escape") toggleHelp(false);
    else if (key === "[") brushRadius = Math.max(1, brushRadius - 1);
    else if (key === "]") brushRadius = Math.min(40, brushRadius + 1);
    else if (key === "0") viewer.resetView();
    else if (key === " ") {
      e.preventDefault();
      if (kase.kind === "video") togglePlay();
    } else if (key.toLowerCase() === "o") (overlay.outline = !overlay.outline), refreshOverlay();
    else if (key.toLowerCase() === "m") (overlay.visible = !overlay.visible), refreshOverlay();
    else if (kase.kind === "volume" && "acs".includes(key.toLowerCase()) && key.length === 1) void setAxis(({ a: "axial", c: "coronal", s: "sagittal" } as const)[key.toLowerCase() as "a" | "c" | "s"]);
    else if (presets.some((p) => p.key === key)) applyPreset(presets.find((p) => p.key === key)!);
    else {
      const T = toolForKey(key, ws.manualBaseline);
      if (T) selectTool(T.toolName);
      else return;
    }
    renderToolbar();
  };
  window.addEventListener("keydown", onKey);
  unsubs.push(() => window.removeEventListener("keydown", onKey));
  unsubs.push(ws.undo.subscribe(() => renderToolbar()));

  // --- start
  await Promise.all([ws.loadTargets(), ws.loadRounds()]);
  const wanted = Number(params.get("target"));
  if (params.has("target") && !ws.targets.some((t) => t.id === wanted)) {
    missingTarget = params.get("target");
    toast(`Target #${missingTarget} is not in this case (or you cannot see it).`, "error");
  }
  const initial = ws.targets.find((t) => t.id === wanted) ?? (ws.targets.length === 1 ? ws.targets[0] : null);
  if (initial) await ws.select(initial.id);
  else events.setContext({ case: kase.id });
  const ctStart = ctWindows && defaultCtWindow(ctWindows);
  if (ctStart) viewer.setWindow(ctStart);
  await setAxis("axial");
  selectTool(ws.manualBaseline ? "brush" : "box");
  renderSide();
  // `idle` after the project's threshold without input, heartbeats while someone works (time per lesion)
  unsubs.push(trackActivity(events, Number(project.settings?.idle_threshold_s ?? 30)));
  root.dataset.ready = "1";

  return {
    destroy() {
      if (ws.target) events.record("target_closed", { status: ws.target.status }, { case: kase.id, target: ws.target.id });
      void ws.flushSave().catch(() => undefined);
      for (const u of unsubs.reverse()) u();
    },
  };
}
