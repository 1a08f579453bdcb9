"""The propagation task: a target's prompts -> MedSAM2 -> one model MaskRevision.

Flow of `propagate_target(job_id)` (gpu queue, acks late, one job at a time per worker process):
re-read the job; claim it with a conditional update (only one delivery wins); resolve and load the
model through the per-process cache; open the case array; reuse or build the predictor state (image
features) for the case; apply the prompts frame by frame (key frame first) and publish each frame's
mask at once (the browser shows the key frame before propagation ends); propagate within the
requested direction and frame range, recording progress + heartbeat and checking the cancel flag every
frame; finally write exactly ONE MaskRevision (job_key = the job's idempotency key, so a redelivered
task cannot write a second) and mark the job succeeded and the target proposed, in one transaction.

Errors: database/Redis connection trouble is retried with backoff (the job goes back to queued);
anything else fails the job with a one-line reason (missing model, missing image, bad prompt).
A background thread beats the job's heartbeat while it runs, so a job whose worker died is found by
`inference_worker.recovery` and queued again.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator

import numpy as np
from celery.exceptions import Reject, SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision, MaskSource, Prompt, Target, TargetStatus
from annotation_app.imaging.storage import open_case_array
from annotation_app.lib import tasks as contract
from annotation_app.lib.maskcodec import MaskFormatError, decode_slice_rle, encode_slice_rle
from annotation_app.propagation import realtime
from annotation_app.propagation.models import JobKind, JobStatus, PropagationJob
from inference_worker import sessions
from inference_worker.intensity import model_input, model_input_key
from inference_worker.model_cache import CACHE, ModelUnavailable, choose_device
from inference_worker.model_source import resolve_model_spec
from inference_worker.sessions import SESSIONS

log = logging.getLogger(__name__)

OBJ_ID = sessions.OBJ_ID
EDITABLE = [TargetStatus.DRAFT, TargetStatus.PROPOSED, TargetStatus.CORRECTING]



def model_window(case) -> str | tuple[float, float] | None:
    """The CT window the model sees: ingest stores {"width", "level", "preset"}; the predictor takes a
    preset name or (width, level). Other modalities are scaled by percentiles, so no window."""
    window = (case.image_meta or {}).get("window")
    if case.modality != "CT" or not window:
        return None
    if isinstance(window, dict):
        if "width" in window and "level" in window:
            return (float(window["width"]), float(window["level"]))
        return window.get("preset") or None
    if isinstance(window, (list, tuple)) and len(window) == 2:
        return (float(window[0]), float(window[1]))
    return str(window)

def heartbeat_s() -> float:
    return float(settings.PROPAGATION_HEARTBEAT_S)


def stale_after_s() -> int:
    return int(settings.PROPAGATION_STALE_AFTER_S)


class JobError(Exception):
    """A permanent problem with the job's inputs: fail it with this message, do not retry."""


def _transient_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        import redis

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis is a pinned dependency
        pass
    return tuple(errors)


TRANSIENT = _transient_errors()


class Heartbeat(threading.Thread):
    """Refresh `heartbeat_at` of a running job every `interval` seconds until stopped."""

    def __init__(self, job_id: int, worker: str, interval: float):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id, self.worker, self.interval = job_id, worker, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    PropagationJob.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, worker=self.worker).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception as exc:  # keep beating; the task itself reports DB trouble
                    log.warning("heartbeat of job %s failed: %s", self.job_id, exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def _test_frame_delay(results: Iterator, delay: float) -> Iterator:
    """Test-only slow motion (MEDSAM2_TEST_FRAME_DELAY_S): lets tests kill or cancel mid-run."""
    for res in results:
        time.sleep(delay)
        yield res


# --- prompts ---------------------------------------------------------------------------------------
def collect_prompts(target: Target, height: int, width: int) -> dict[int, dict]:
    """Live prompts merged per frame: {frame: {"box", "points", "labels", "mask"}} (coordinates x, y)."""
    return merge_prompts(live_prompts(target), height, width)


def live_prompts(target: Target) -> list[Prompt]:
    return list(Prompt.objects.filter(target=target, withdrawn=False).order_by("created_at", "id"))


def merge_prompts(rows, height: int, width: int) -> dict[int, dict]:
    """Prompts (in creation order) merged per frame: {frame: {"box", "points", "labels", "mask"}}.

    On one frame the latest box counts, all points accumulate, and a drawn mask wins over both."""
    frames: dict[int, dict] = {}
    for prompt in rows:
        entry = frames.setdefault(prompt.frame, {"box": None, "points": [], "labels": [], "mask": None})
        payload = prompt.payload or {}
        try:
            if prompt.kind == "box":
                x0, y0, x1, y1 = (float(v) for v in payload["box"])
                entry["box"] = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            elif prompt.kind == "point":
                points = [(float(x), float(y)) for x, y in payload["points"]]
                labels = [int(v) for v in payload.get("labels", [1] * len(points))]
                if len(points) != len(labels):
                    raise ValueError("points and labels differ in length")
                entry["points"] += points
                entry["labels"] += labels
            elif prompt.kind == "mask":
                h, w = int(payload.get("height", height)), int(payload.get("width", width))
                if (h, w) != (height, width):
                    raise ValueError(f"mask is {h}x{w}, the frames are {height}x{width}")
                entry["mask"] = decode_slice_rle(payload["rle"], h, w)
            else:
                raise ValueError(f"unknown kind {prompt.kind!r}")
        except (KeyError, TypeError, ValueError, MaskFormatError) as exc:
            where = f"prompt {prompt.pk} ({prompt.kind} on frame {prompt.frame})"
            raise JobError(f"{where} is invalid: {exc}") from None
    return frames


def key_frame_of(target: Target, rows: list[Prompt], prompts: dict[int, dict]) -> int:
    """The target's key frame: the one set on it, else the slice of its (first live) box, else the
    lowest prompted slice; a key without prompts moves to the nearest prompted slice."""
    key = target.key_frame
    if key is None:
        boxes = [p.frame for p in rows if p.kind == "box"]
        key = boxes[0] if boxes else min(prompts)
    if key not in prompts:
        key = min(prompts, key=lambda f: (abs(f - key), f))
    return key


# --- the job ---------------------------------------------------------------------------------------
def _frame_plan(job: PropagationJob, n_frames: int, key: int) -> tuple[int, int, list[tuple[str, int]]]:
    """(first, last, passes): the inclusive frame range and [(direction, max_frames)] from the key
    (the predictor visits the start frame plus up to max_frames frames in that direction)."""
    first, last = 0, n_frames - 1
    if job.frame_range:
        first, last = max(0, int(job.frame_range[0])), min(n_frames - 1, int(job.frame_range[1]))
    if not first <= key <= last:
        raise JobError(f"key frame {key} lies outside the frame range [{first}, {last}]")
    passes = []
    if job.direction in ("both", "forward"):
        passes.append(("forward", last - key))
    if job.direction in ("both", "backward"):
        passes.append(("backward", key - first))
    return first, last, passes


def run_job(job_id: int, worker: str) -> dict:
    t0 = time.monotonic()
    job = PropagationJob.objects.select_related("target__case").filter(pk=job_id).first()
    if job is None:
        return {"job": job_id, "skipped": "no such job"}
    if job.cancel_requested and not job.is_finished:
        job.mark_cancelled()
        return {"job": job_id, "status": job.status}
    if job.is_finished:
        return {"job": job_id, "skipped": f"already {job.status}"}
    device = choose_device()
    if not job.claim(worker, device, stale_after_s=stale_after_s()):
        return {"job": job_id, "skipped": f"claimed elsewhere ({job.status}, {job.worker})"}
    heart = Heartbeat(job.pk, worker, heartbeat_s())
    heart.start()
    try:
        return _execute(job, worker, device, t0)
    except JobError as exc:
        job.fail(str(exc))
    except ModelUnavailable as exc:
        job.fail(str(exc))
    except FileNotFoundError as exc:
        job.fail(f"image missing: {exc}")
    except SoftTimeLimitExceeded:
        job.fail(f"time limit exceeded after {time.monotonic() - t0:.0f}s")
    except TRANSIENT:
        raise
    except Exception as exc:
        log.exception("propagation job %s failed", job.pk)
        job.fail(f"{type(exc).__name__}: {exc}")
    finally:
        heart.stop()
    return {"job": job.pk, "status": job.status, "error": job.error}


def _execute(job: PropagationJob, worker: str, device: str, t0: float) -> dict:
    timings: dict[str, float] = {"queued_s": round((job.started_at - job.created_at).total_seconds(), 3)}
    target, case = job.target, job.target.case
    if target.status not in EDITABLE:
        raise JobError(f"target is {target.status}; only draft, proposed or correcting targets propagate")

    if target.round is not None and not target.round.allows_model_help:
        raise JobError(f"round {target.round.number} is the manual baseline: the model makes no proposals in it")
    spec = resolve_model_spec(case.project_id, target.round)  # the model the target's round pinned
    PropagationJob.objects.filter(pk=job.pk).update(model_name=spec.name, model_version_id=spec.model_version_id)
    job.model_version_id = spec.model_version_id
    tick = time.monotonic()
    model, _ = CACHE.model(spec, device)
    timings["load_s"] = round(time.monotonic() - tick, 3)

    array = open_case_array(case)
    n_frames, height, width = int(array.shape[0]), int(array.shape[1]), int(array.shape[2])
    rows = live_prompts(target)
    prompts = merge_prompts(rows, height, width)
    if not prompts:
        raise JobError("the target has no prompts; place a box, points or a mask first")
    if any(not 0 <= f < n_frames for f in prompts):
        raise JobError(f"a prompt lies outside the case's {n_frames} frames")
    key = key_frame_of(target, rows, prompts)
    try:
        first, last, _ = _frame_plan(job, n_frames, key)
        key_outside = None
    except JobError as exc:  # "from here": fine once the session tracks the object, else an error
        if not job.frame_range:
            raise
        first, last = max(0, int(job.frame_range[0])), min(n_frames - 1, int(job.frame_range[1]))
        key_outside = exc

    tick = time.monotonic()
    model_key = spec.cache_key(device)
    # the pixels the annotator sees: stored rescale, then the renderer's window (inference_worker.intensity)
    look = model_input_key(case)
    case_key = (case.pk, case.image_key, case.modality, look)

    def build():
        from medsam2.predictor import VolumePredictor

        # fast: bf16 (CUDA; CPUs where a probe measures it faster), early stop once the object has left.
        fast = settings.MEDSAM2_FAST
        predictor = VolumePredictor(model, device=device, fast=fast)
        seen = model_input(case, array)
        return predictor, predictor.init_state(seen.array, modality=seen.modality, display=seen.display)

    predictor, base_state, hit = CACHE.case_state(case_key, model_key, build)
    session_key = (*case_key, model_key, target.pk)
    model_id = json.dumps([str(v) for v in model_key])
    session, how = _session(target, predictor, base_state, session_key, model_id, height, width)
    timings["state_s"] = round(time.monotonic() - tick, 3)
    timings["features_cached"] = float(hit)
    timings["session"] = {"kept": 1.0, "rebuilt": 2.0}.get(how, 0.0)
    realtime.set_case_affinity(case.pk, worker.split("#")[0])

    if key_outside is not None and session.applied is None:
        raise key_outside
    live = {p.pk: p.frame for p in rows}
    plan = sessions.plan_job(
        session.applied, live, key, first, last, job.direction, job.kind == JobKind.PROPAGATE,
        local=job.frame_range is None,
    )
    ids_by_frame: dict[int, list[int]] = {}
    for p in rows:
        ids_by_frame.setdefault(p.frame, []).append(p.pk)
    try:
        outcome = _run_plan(job, predictor, session.state, plan, prompts, first, last, timings, t0)
    except BaseException:
        SESSIONS.drop(session_key)  # the state may hold part of this job: rebuild it next time
        raise
    CACHE.refresh_size(case_key, model_key)
    if outcome is None:
        SESSIONS.drop(session_key)
        job.mark_cancelled()
        return {"job": job.pk, "status": job.status}

    timings["total_s"] = round(time.monotonic() - t0, 3)
    ops = sessions.ops_record(plan, ids_by_frame, model_id)
    try:
        revision = _write_result(job, target, case, outcome, timings, ops)
    except BaseException:
        SESSIONS.drop(session_key)
        raise
    session.applied, session.last_job = set(live), job.pk
    SESSIONS.put(session_key, session)
    return {"job": job.pk, "status": job.status, "revision": revision.pk, "frames": len(outcome)}


def _session(target: Target, predictor, base_state, key: tuple, model_id: str, height: int, width: int):
    """(session, "kept" | "rebuilt" | "new"): the target's session as the stored ops leave it.

    The session in memory is used when it ends with the target's newest op; otherwise it is rebuilt
    by replaying the ops since the last reset (when they were made with this model and none of their
    prompts was withdrawn since); otherwise a new, empty session (the job then resets)."""
    chain = list(
        PropagationJob.objects.filter(target=target, status=JobStatus.SUCCEEDED)
        .exclude(session_ops={})
        .order_by("finished_at", "id")
        .values_list("pk", "session_ops")
    )
    held = SESSIONS.get(key)
    if held is not None and chain and held.last_job == chain[-1][0] and held.model == model_id:
        return held, "kept"
    resets = [i for i, (_, ops) in enumerate(chain) if ops.get("reset")]
    since = chain[resets[-1]:] if resets else []
    fresh = sessions.TargetSession(sessions.fresh_state(base_state), None, None, model_id)
    if not since or any(ops.get("model") != model_id for _, ops in since):
        return fresh, "new"
    applied = {int(i) for _, ops in since for _, ids in ops.get("prompts", []) for i in ids}
    withdrawn = Prompt.objects.filter(pk__in=applied, withdrawn=True).exists()
    if withdrawn or len(applied) != Prompt.objects.filter(pk__in=applied, target=target).count():
        return fresh, "new"  # an undo since: the job starts over from the live prompts

    def merged(ids: list[int]) -> dict:
        rows = list(Prompt.objects.filter(pk__in=ids).order_by("created_at", "id"))
        return next(iter(merge_prompts(rows, height, width).values()))

    sessions.replay(predictor, fresh.state, [ops for _, ops in since], merged)
    fresh.applied, fresh.last_job = applied, since[-1][0]
    SESSIONS.rebuilds += 1
    return fresh, "rebuilt"


def _run_plan(job, predictor, state, plan: sessions.Plan, prompts: dict, first: int, last: int, timings: dict,
              t0: float) -> dict[int, tuple[np.ndarray, float, float]] | None:
    """Re-prompt the plan's frames, then run its passes, publishing every frame at once (the first
    prompted frame before any propagated one); None when cancelled."""
    planned = {f for f in plan.frames if first <= f <= last}
    for direction, start, steps in plan.passes:
        planned.update(range(start, start + steps + 1) if direction == "forward" else range(start - steps, start + 1))
    frames_total = len(planned)
    results: dict[int, tuple[np.ndarray, float, float]] = {}
    stop = threading.Event()  # set when the cancel flag is seen; the predictor checks it per frame

    painted = {f: p["mask"] for f, p in prompts.items() if p["mask"] is not None}

    def record(res) -> bool:
        # a painted (mask-prompted) slice keeps the human's pixels, not the model's low-res copy of them
        mask = np.asarray(painted.get(int(res.frame_idx), res.masks[0]), dtype=bool)
        score, iou = float(np.asarray(res.object_scores)[0]), float(np.asarray(res.ious)[0])
        results[int(res.frame_idx)] = (mask, score, iou)
        realtime.publish_frame(job.pk, int(res.frame_idx), encode_slice_rle(mask), score, iou)
        keep_going = job.record_progress(len(results), frames_total)
        if not keep_going:
            stop.set()
        return keep_going

    tick = time.monotonic()
    if plan.reset:
        predictor.reset(state)
    for i, frame in enumerate(plan.frames):
        res = sessions.apply_prompt(predictor, state, frame, prompts[frame])
        if first <= frame <= last and not record(res):
            return None
        if i == 0:
            timings["first_frame_s"] = round(time.monotonic() - t0, 3)
    timings["prompts_s"] = round(time.monotonic() - tick, 3)
    if plan.passes:
        tick = time.monotonic()
        delay = settings.MEDSAM2_TEST_FRAME_DELAY_S
        for direction, start, max_frames in plan.passes:
            stream = predictor.propagate(
                state, direction=direction, start_frame=start, max_frames=max_frames, should_cancel=stop.is_set
            )
            if delay > 0:
                stream = _test_frame_delay(stream, delay)
            for res in stream:
                if first <= int(res.frame_idx) <= last and not record(res):
                    return None
            if stop.is_set():
                return None
        timings["propagate_s"] = round(time.monotonic() - tick, 3)
    return results


def _write_result(
    job: PropagationJob, target: Target, case, results: dict, timings: dict, ops: dict | None = None
) -> MaskRevision:
    """One revision: the current mask with the frames this job computed replaced (frames outside the
    job's range or direction keep what the annotator had); in the same transaction the job succeeds and
    the target becomes proposed."""
    shape = tuple(int(s) for s in case.shape[:3])
    with transaction.atomic():
        locked = Target.objects.select_for_update().get(pk=target.pk)
        existing = MaskRevision.objects.filter(job_key=job.idempotency_key).first()
        if existing is not None:  # defensive: revision and job state commit together
            job.succeed(existing, timings)
            return existing
        if locked.status not in EDITABLE:
            raise JobError(f"target became {locked.status} while the job ran; result discarded")
        base = locked.current_revision
        volume = base.mask() if base is not None and tuple(base.shape) == shape else np.zeros(shape, bool)
        scores = dict(base.frame_scores) if base is not None and base.frame_scores else {}
        for frame, (mask, score, iou) in results.items():
            volume[frame] = mask
            scores[str(frame)] = {"object_score": round(score, 4), "iou": round(iou, 4)}
        mark_suspects(volume, scores)
        revision = MaskRevision.append(
            locked,
            volume,
            source=str(MaskSource.MODEL),
            author=job.requested_by,
            model_version=job.model_version if job.model_version_id else None,
            frame_scores=scores,
            job_key=job.idempotency_key,
            note=f"job {job.pk} ({job.kind}, {job.direction})",
        )
        locked.mark_proposed()
        job.succeed(revision, timings)
        if ops is not None:
            PropagationJob.objects.filter(pk=job.pk).update(session_ops=ops)
    return revision


def mark_suspects(volume: np.ndarray, scores: dict) -> None:
    """Add the confidence strip's flags to the frame scores: "suspect" lists the reasons against each
    slice (medsam2.quality: the model's scores and consistency along the track; [] = none)."""
    from medsam2.quality import frame_flags

    n = volume.shape[0]
    obj = np.array([scores.get(str(f), {}).get("object_score", np.nan) for f in range(n)], dtype=np.float64)
    iou = np.array([scores.get(str(f), {}).get("iou", np.nan) for f in range(n)], dtype=np.float64)
    for f, why in enumerate(frame_flags(volume, obj, iou)):
        if str(f) in scores:  # slices the model computed (an empty one it computed can be "lost")
            scores[str(f)]["suspect"] = why


def _release(job_id: int, worker: str) -> None:
    """Give a claimed job back to the queue before a retry (best effort: the DB may be down)."""
    try:
        if not connection.in_atomic_block:  # drop a broken connection so the update reconnects
            close_old_connections()
        PropagationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker=worker).update(
            status=JobStatus.QUEUED, worker=""
        )
    except Exception as exc:
        log.warning("could not release job %s before retry: %s", job_id, exc)


@contract.contract_task(contract.PROPAGATE, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=6)
def propagate_target(self, job_id: int) -> dict:
    worker = f"{self.request.hostname}#{os.getpid()}"
    try:
        return run_job(int(job_id), worker)
    except TRANSIENT as exc:
        # at least a second, so the retry never runs before the release below is written
        countdown = max(1.0, min(60.0, 2.0**self.request.retries) * (0.5 + random.random()))
        try:
            retry = self.retry(exc=exc, countdown=countdown, throw=False)
        except Reject:
            # The broker is unreachable too, so no retry message exists. Releasing the job now would
            # leave it queued with nothing to run it; kept claimed, its heartbeat stops and recovery
            # requeues it once the broker is back.
            log.warning("job %s: transient error (%s) and no broker for a retry; left to recovery", job_id, exc)
            raise
        _release(int(job_id), worker)
        log.warning("job %s: transient error (%s); retry in %.1fs", job_id, exc, countdown)
        raise retry from None
