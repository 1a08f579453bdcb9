/**
 * The review side of a case: the model's FIRST proposal (later model runs are steered by the
 * annotator's edits, so they look like the final mask), per-frame provenance against it, a diff
 * overlay (added / removed voxels), the model's per-frame confidence kept for the strip, a reviewer's
 * fix mode (saved as "review" revisions) and comments pinned to a frame and position, which the
 * annotator sees on a rejected target and jumps to.
 */
import { roleAtLeast } from "../app";
import { Emitter } from "../lib/pubsub";
import { ApiError, type ApiClient } from "../services/api";
import type { FrameScore, MaskRevision, Prompt, Role, SliceComment } from "../types";
import { h } from "../ui/dom";
import { MaskStore, type RleFrames } from "../viewer/maskStore";
import type { OverlayLayer } from "../viewer/overlay";
import { diffFrame, diffToRgba, diffTotals, editedFrames, type FrameDiff } from "../viewer/reviewDiff";
import type { Point, ViewerService } from "../viewer/types";
import type { Workspace } from "./workspace";

type Revision = MaskRevision & { frame_scores?: Record<string, FrameScore> };

export interface ReviewEvents extends Record<string, unknown> {
  change: null;
  jump: number;
  message: { text: string; kind: "info" | "error" | "ok" };
}

export class ReviewTools {
  readonly events = new Emitter<ReviewEvents>();
  /** the model's scores per frame (latest model run wins per frame): the strip keeps them after edits */
  scores: Record<string, FrameScore> = {};
  /** frames that differ from the first proposal */
  edited = new Set<number>();
  totals: FrameDiff = { added: 0, removed: 0 };
  comments: SliceComment[] = [];
  proposalId: number | null = null;
  showDiff = false;
  pinArmed = false;
  /** the signed-in user annotated this target (prompts or their own masks): they may not review it */
  ownWork = false;
  private proposal: MaskStore | null = null;
  private comparedWith: number | null | undefined = undefined;
  private loadedFor: number | null = null;
  private diffCache: { key: string; canvas: HTMLCanvasElement; counts: FrameDiff } | null = null;
  private commentText: HTMLTextAreaElement | null = null;
  private destroyed = false;

  constructor(
    private readonly api: ApiClient,
    private readonly ws: Workspace,
    private readonly isAxial: () => boolean,
    private readonly me: number | null = null,
  ) {}

  destroy(): void {
    this.destroyed = true;
    this.events.clear();
  }

  private emit(): void {
    if (!this.destroyed) this.events.emit("change", null);
  }

  /** Fetch the proposal, the model scores and the comments of the selected target (once per target). */
  async load(): Promise<void> {
    const target = this.ws.target;
    const id = target?.id ?? null;
    if (id === this.loadedFor) return;
    this.loadedFor = id;
    this.proposal = null;
    this.proposalId = null;
    this.scores = {};
    this.edited = new Set();
    this.comments = [];
    this.showDiff = false;
    this.pinArmed = false;
    this.commentText = null;
    this.comparedWith = undefined;
    this.ownWork = false;
    if (!target) return this.emit();
    const [revisions, comments, prompts] = await Promise.all([
      this.api.list<Revision>("/api/mask-revisions/", { target: target.id }),
      this.api.list<SliceComment>("/api/slice-comments/", { target: target.id }),
      this.api.list<Prompt & { author?: number | null }>("/api/prompts/", { target: target.id }),
    ]);
    if (this.destroyed || this.loadedFor !== id) return;
    this.comments = comments;
    // the server's rule (Target.is_work_of): own prompts, or own masks other than a review fix
    const mine = (author: number | null | undefined) => this.me !== null && author === this.me;
    this.ownWork = prompts.some((p) => mine(p.author)) || revisions.some((r) => r.source !== "review" && mine((r as { author?: number | null }).author));
    const models = revisions.filter((r) => r.source === "model").sort((a, b) => a.number - b.number);
    for (const m of models) Object.assign(this.scores, m.frame_scores ?? {});
    if (models.length) {
      this.proposalId = models[0].id;
      const frames = await this.api.get<RleFrames>(`/api/mask-revisions/${models[0].id}/frames/`);
      if (this.destroyed || this.loadedFor !== id) return;
      const [d, hgt, w] = this.ws.kase.shape;
      this.proposal = new MaskStore(d, hgt, w);
      this.proposal.applyRle(frames, { replaceAll: true });
    }
    this.compare();
    this.emit();
  }

  /** Recompare with the working mask when it now stands on another revision (cheap otherwise). */
  compare(): void {
    const mask = this.ws.mask;
    if (!mask || !this.proposal || this.ws.viewing !== "current") return;
    if (this.comparedWith === mask.baseRevision && !mask.dirty.length) return;
    this.comparedWith = mask.baseRevision;
    this.edited = editedFrames(this.proposal, mask);
    this.totals = diffTotals(this.proposal, mask, this.edited);
    this.diffCache = null;
  }

  /** The strip's provenance applies once a person's revision is the current one. */
  get finalIsEdited(): boolean {
    const source = this.ws.target?.current_revision?.source;
    return !!source && source !== "model";
  }

  /** Overlay layer: the diff of the shown frame and the comment pins on it. */
  layer(): OverlayLayer {
    return {
      draw: (ctx, viewer) => {
        if (!this.isAxial()) return;
        if (this.showDiff && this.proposal && this.ws.mask && this.ws.viewing === "current") this.drawDiff(ctx, viewer);
        this.comments.forEach((c, i) => {
          if (c.frame !== viewer.index) return;
          const p = viewer.imageToCanvas([c.x, c.y]);
          ctx.beginPath();
          ctx.arc(p[0], p[1], 9, 0, Math.PI * 2);
          ctx.fillStyle = "#fa8c16";
          ctx.fill();
          ctx.fillStyle = "#000";
          ctx.font = "bold 11px sans-serif";
          ctx.textAlign = "center";
          ctx.fillText(String(i + 1), p[0], p[1] + 4);
        });
      },
    };
  }

  /** The panel's line for one frame ("" without a proposal). */
  diffSliceText(frame: number): string {
    const d = this.frameDiff(frame);
    return d ? `this slice: +${d.added} added (green), −${d.removed} removed (magenta)` : "";
  }

  /** Added/removed voxels on one frame (for the panel). */
  frameDiff(frame: number): FrameDiff | null {
    if (!this.proposal || !this.ws.mask) return null;
    return diffFrame(this.proposal.get(frame), this.ws.mask.get(frame), this.ws.mask.frameSize).counts;
  }

  private drawDiff(ctx: CanvasRenderingContext2D, viewer: ViewerService): void {
    const mask = this.ws.mask!;
    const frame = viewer.index;
    const key = `${frame}:${mask.baseRevision}:${mask.dirty.join(",")}`;
    if (this.diffCache?.key !== key) {
      const { pixels, counts } = diffFrame(this.proposal!.get(frame), mask.get(frame), mask.frameSize);
      const canvas = document.createElement("canvas");
      canvas.width = mask.width;
      canvas.height = mask.height;
      canvas.getContext("2d")!.putImageData(new ImageData(diffToRgba(pixels) as Uint8ClampedArray<ArrayBuffer>, mask.width, mask.height), 0, 0);
      this.diffCache = { key, canvas, counts };
    }
    const o = viewer.imageToCanvas([0, 0]);
    const ex = viewer.imageToCanvas([mask.width, 0]);
    const ey = viewer.imageToCanvas([0, mask.height]);
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.transform((ex[0] - o[0]) / mask.width, (ex[1] - o[1]) / mask.width, (ey[0] - o[0]) / mask.height, (ey[1] - o[1]) / mask.height, o[0], o[1]);
    ctx.drawImage(this.diffCache.canvas, 0, 0);
    ctx.restore();
  }

  /** Place a comment at an image point of `frame` (the pin was armed from the panel). */
  async pinAt(frame: number, p: Point): Promise<void> {
    const target = this.ws.target;
    this.pinArmed = false;
    const text = this.commentText?.value.trim() ?? "";
    if (!target || !text) return this.say("Write the comment first, then click where it applies.", "error");
    try {
      const round = (v: number) => Math.round(v * 10) / 10;
      const c = await this.api.post<SliceComment>("/api/slice-comments/", { target: target.id, frame, x: round(p[0]), y: round(p[1]), text });
      this.comments.push(c);
      if (this.commentText) this.commentText.value = "";
      this.say(`Comment pinned to slice ${frame + 1}.`, "ok");
    } catch (err) {
      this.say(err instanceof ApiError ? err.summary : String(err), "error");
    }
    this.emit();
  }

  private say(text: string, kind: "info" | "error" | "ok"): void {
    if (!this.destroyed) this.events.emit("message", { text, kind });
  }

  /** The side-panel part: diff toggle and counts, the reviewer's fix and pin, the comment list. */
  panel(role: Role | null, frame: number): HTMLElement {
    const t = this.ws.target;
    const box = h("div", { class: "review-tools", "data-testid": "review-tools" });
    if (!t) return box;
    const reviewer = roleAtLeast(role, "reviewer") && t.status === "submitted" && !this.ownWork;
    if (this.proposalId !== null && t.current_revision && t.current_revision.id !== this.proposalId) {
      const here = this.frameDiff(frame);
      box.append(
        h("div", { class: "row" },
          h("button", { class: this.showDiff ? "tool active" : "tool", "data-testid": "show-diff", onclick: () => this.toggleDiff() }, "Diff vs proposal"),
          h("span", { class: "muted", "data-testid": "diff-totals" }, `+${this.totals.added} / −${this.totals.removed} voxels on ${this.edited.size} edited slices`),
        ),
      );
      if (this.showDiff && here) box.append(h("p", { class: "muted", "data-testid": "diff-slice" }, this.diffSliceText(frame)));
    }
    if (reviewer) {
      // one textarea per target, kept across re-renders so a half-written note survives them
      this.commentText ??= h("textarea", { placeholder: "Note for the annotator, then Pin and click the spot", rows: 2, "data-testid": "slice-comment-text" });
      box.append(
        h("div", { class: "row" },
          h("button", { class: this.ws.reviewFix ? "tool active" : "tool", "data-testid": "review-fix", title: "Brush/eraser edits are saved as a reviewer's fix", onclick: () => this.toggleFix() }, this.ws.reviewFix ? "Fixing: brush/eraser" : "Fix a slice"),
        ),
        this.commentText,
        h("button", { class: this.pinArmed ? "tool active" : "tool", "data-testid": "pin-comment", onclick: () => ((this.pinArmed = !this.pinArmed), this.emit()) }, this.pinArmed ? "Click the spot on the image…" : "Pin comment"),
      );
    }
    if (this.comments.length) {
      box.append(
        h("h3", {}, t.status === "rejected" ? "Reviewer's notes (click to go there)" : "Slice comments"),
        h("ol", { class: "comments", "data-testid": "slice-comments" },
          ...this.comments.map((c) =>
            h("li", {}, h("button", { class: "link", "data-testid": `comment-${c.id}`, onclick: () => this.events.emit("jump", c.frame) }, `slice ${c.frame + 1}: ${c.text}`), h("span", { class: "muted" }, ` — ${c.author_username ?? "?"}`)),
          ),
        ),
      );
    }
    return box;
  }

  private toggleDiff(): void {
    this.showDiff = !this.showDiff;
    this.compare();
    this.emit();
  }

  private toggleFix(): void {
    this.ws.reviewFix = !this.ws.reviewFix;
    this.say(this.ws.reviewFix ? "Fix mode: brush (B) and eraser (E) edits are saved as a reviewer's fix." : "Fix mode off.", "info");
    this.emit();
  }
}
