/**
 * The confidence strip along the slice axis: one cell per frame coloured from the model's per-frame
 * outputs (revision.frame_scores or partial job frames: object_score is a logit, > 0 means "object
 * present"; iou is the predicted IoU in [0, 1]). Frames that are probably wrong are marked red so
 * the annotator checks them first.
 */
import type { FrameScore } from "../types";

export type FrameQuality = "none" | "good" | "uncertain" | "suspect" | "absent" | "human";

export const QUALITY_COLORS: Record<FrameQuality, string> = {
  none: "#2a2f3a",
  absent: "#3d4452",
  good: "#389e0d",
  uncertain: "#d48806",
  suspect: "#cf1322",
  human: "#1d39c4",
};

/**
 * Classify a frame. `inside` says whether the frame lies between the first and last frame that have
 * a mask: a frame there where the model says "no object" is a likely gap (suspect); the same
 * outside that span is just the end of the object (absent).
 */
export function classifyFrame(score: FrameScore | number | undefined, hasMask: boolean, inside: boolean, edited = false): FrameQuality {
  if (edited) return "human";
  if (score === undefined || score === null) return hasMask ? "human" : "none"; // drawn, not predicted
  const s: FrameScore = typeof score === "number" ? { iou: score } : score;
  // the worker's flags (medsam2.quality: scores + consistency along the track) decide when present
  const suspect = (s as FrameScore & { suspect?: string[] }).suspect;
  if (Array.isArray(suspect)) {
    if (suspect.length) return "suspect";
    if (!hasMask) return "absent";
    return (s.iou ?? 1) < 0.75 ? "uncertain" : "good";
  }
  const present = s.object_score === undefined ? hasMask : s.object_score > 0;
  const iou = s.iou ?? (present ? 1 : 0);
  if (!present) return inside ? "suspect" : "absent";
  if (!hasMask) return "suspect"; // the model says object but the mask is empty
  if (iou < 0.5) return "suspect";
  if (iou < 0.75) return "uncertain";
  return "good";
}

export function classifyAll(
  count: number,
  scores: Record<string, FrameScore | number>,
  maskFrames: number[],
  edited: Set<number> = new Set(),
): FrameQuality[] {
  const has = new Set(maskFrames);
  const first = maskFrames.length ? Math.min(...maskFrames) : -1;
  const last = maskFrames.length ? Math.max(...maskFrames) : -1;
  const out: FrameQuality[] = [];
  for (let i = 0; i < count; i++) out.push(classifyFrame(scores[String(i)], has.has(i), i > first && i < last, edited.has(i)));
  return out;
}

export function drawStrip(canvas: HTMLCanvasElement, qualities: FrameQuality[], current: number): void {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const hgt = canvas.clientHeight;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(hgt * dpr));
  const ctx = canvas.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  const n = qualities.length;
  if (!n) return;
  const cell = w / n;
  for (let i = 0; i < n; i++) {
    ctx.fillStyle = QUALITY_COLORS[qualities[i]];
    ctx.fillRect(i * cell, 0, Math.max(1, cell - (cell > 3 ? 1 : 0)), hgt);
  }
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 2;
  ctx.strokeRect(current * cell + 1, 1, Math.max(2, cell - 2), hgt - 2);
}

/** Frame under a click at x (CSS px) on a strip `width` px wide with `count` cells. */
export function frameAt(x: number, width: number, count: number): number {
  return Math.max(0, Math.min(count - 1, Math.floor((x / width) * count)));
}
