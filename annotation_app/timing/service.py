"""Keeping TargetTiming rows current: each row carries a fingerprint of what it was computed from
(the newest event of the target's case, the newest revision and job of the target, the target's
status, round and label, the project's idle threshold and the rules' version). A reader calls
`refresh()` on the targets it is about to show; rows whose inputs changed since (late events, a new
revision, a job that finished, a review) are recomputed then, in the same request. Mask comparisons
are redone only when the revisions changed.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery

from annotation_app.annotations.models import InteractionEvent, MaskRevision, MaskSource, Target
from annotation_app.propagation.models import JobKind, PropagationJob
from annotation_app.timing.masks import compare, provenance
from annotation_app.timing.measure import Event, Span, measure
from annotation_app.timing.models import TargetTiming

log = logging.getLogger(__name__)

#: bump when a rule in measure.py or masks.py changes: every stored row is recomputed on next read
ALGORITHM = "1"
#: how far around a target's own events a person's other events are read (case-level events before
#: the target existed, and moves to other targets)
LOOKBACK = timedelta(hours=2)
LOOKAHEAD = timedelta(hours=1)
EVENT_FIELDS = ("client_event_id", "kind", "user_id", "client_ts", "received_at", "target_id", "case_id", "payload")


def with_fingerprints(targets: QuerySet[Target]) -> QuerySet[Target]:
    def newest(queryset, field="id"):
        return Subquery(queryset.order_by(f"-{field}").values(field)[:1])

    return targets.select_related("case__project").annotate(
        fp_event=newest(InteractionEvent.objects.filter(case_id=OuterRef("case_id"))),
        fp_revision=newest(MaskRevision.objects.filter(target=OuterRef("pk"))),
        fp_job=newest(PropagationJob.objects.filter(target=OuterRef("pk"))),
        fp_job_done=newest(
            PropagationJob.objects.filter(target=OuterRef("pk"), finished_at__isnull=False), "finished_at"
        ),
        stored_fp=Subquery(TargetTiming.objects.filter(target=OuterRef("pk")).values("fingerprint")[:1]),
    )


def fingerprint(target: Target) -> str:
    done = target.fp_job_done.isoformat() if target.fp_job_done else ""
    parts = [
        ALGORITHM,
        target.case.project.idle_threshold_s,
        target.fp_event,
        target.fp_revision,
        target.fp_job,
        done,
        target.status,
        target.round_id,
        target.label,
    ]
    return "|".join("" if p is None else str(p) for p in parts)


def refresh(targets: QuerySet[Target]) -> int:
    """Recompute the timings of `targets` whose inputs changed; returns how many were recomputed."""
    recomputed = 0
    for target in with_fingerprints(targets):
        fp = fingerprint(target)
        if target.stored_fp != fp:
            store(target, fp)
            recomputed += 1
    return recomputed


def _events(target: Target) -> list[Event]:
    own = list(InteractionEvent.objects.filter(target=target).values(*EVENT_FIELDS))
    if not own:
        return []
    users = {e["user_id"] for e in own}
    start = min(e["client_ts"] for e in own) - LOOKBACK
    end = max(e["client_ts"] for e in own) + LOOKAHEAD
    around = (
        InteractionEvent.objects.filter(user_id__in=users, client_ts__gte=start, client_ts__lte=end)
        .exclude(target=target)
        .values(*EVENT_FIELDS)
    )
    return [
        Event(
            uid=str(e["client_event_id"]),
            kind=e["kind"],
            user=e["user_id"],
            client_ts=e["client_ts"],
            received_at=e["received_at"],
            target=e["target_id"],
            case=e["case_id"],
            payload=e["payload"] or {},
        )
        for e in [*own, *around]
    ]


def _spans(jobs: list[dict]) -> list[Span]:
    spans = []
    for job in jobs:
        end = job["finished_at"] or job["heartbeat_at"] or job["started_at"] or job["created_at"]
        spans.append(Span(job["created_at"], end))
    return spans


def _mask_fields(target: Target, jobs: list[dict]) -> dict:
    """The first model proposal against the final mask, per-slice provenance and frame counts."""
    revisions = list(MaskRevision.objects.filter(target=target).select_related("model_version").order_by("number"))
    job_by_revision = {j["result_revision_id"]: j for j in jobs if j["result_revision_id"]}
    names = {
        r.pk: (r.model_version.name if r.model_version else job_by_revision.get(r.pk, {}).get("model_name", ""))
        for r in revisions
        if r.source == MaskSource.MODEL
    }
    proposals = [r for r in revisions if r.source == MaskSource.MODEL]
    # a full propagation's result is the proposal; a key-frame-only job's is one only without one
    full = [r for r in proposals if job_by_revision.get(r.pk, {}).get("kind") != JobKind.KEY_FRAME]
    first = (full or proposals or [None])[0]
    final = revisions[-1] if revisions else None
    case = target.case
    spacing = [float(s) for s in (case.spacing or [1.0, 1.0, 1.0])[:3]]
    result = compare(first, final, spacing, per_frame=case.kind == "video")
    fields = {
        "first_proposal": first,
        "final_revision": final,
        "model_version": first.model_version if first else None,
        "model_name": names.get(first.pk, "") if first else "",
        "n_frames": len(result.final_frames),
        "details_slices": provenance(revisions, names),
    }
    if first is None:  # drawn by hand: every frame of the mask is a corrected frame
        fields.update(
            voxels_changed=None,
            dice=None,
            hd95_mm=None,
            n_corrected_frames=len(result.final_frames),
            edit_fraction=1.0 if result.final_frames else None,
        )
    else:
        union = len(result.union_frames)
        fields.update(
            voxels_changed=result.voxels_changed,
            dice=round(result.dice, 6),
            hd95_mm=None if result.hd95_mm is None else round(result.hd95_mm, 4),
            n_corrected_frames=len(result.corrected_frames),
            edit_fraction=round(len(result.corrected_frames) / union, 6) if union else 0.0,
        )
    last_human = next((r for r in reversed(revisions) if r.source != MaskSource.MODEL and r.author_id), None)
    fields["last_editor_id"] = last_human.author_id if last_human else None
    return fields


def store(target: Target, fp: str) -> TargetTiming:
    case = target.case
    jobs = list(
        PropagationJob.objects.filter(target=target).values(
            "kind", "created_at", "started_at", "heartbeat_at", "finished_at", "result_revision_id", "model_name"
        )
    )
    timing = measure(target.pk, _events(target), _spans(jobs), case.project.idle_threshold_s)
    existing = TargetTiming.objects.filter(target=target).first()
    masks_fp = f"{target.fp_revision}|{case.kind}|{ALGORITHM}"
    if existing is not None and existing.masks_fingerprint == masks_fp:
        mask_fields = {
            name: getattr(existing, name)
            for name in (
                "first_proposal",
                "final_revision",
                "model_version",
                "model_name",
                "n_frames",
                "voxels_changed",
                "dice",
                "hd95_mm",
                "n_corrected_frames",
                "edit_fraction",
            )
        }
        mask_fields["details_slices"] = existing.details.get("slices", {})
        mask_fields["last_editor_id"] = existing.details.get("last_editor")
    else:
        mask_fields = _mask_fields(target, jobs)
    slices = mask_fields.pop("details_slices")
    last_editor = mask_fields.pop("last_editor_id")
    time_s = round(timing.time_s, 3)
    n_frames = mask_fields["n_frames"]
    values = {
        "project_id": case.project_id,
        "round_id": target.round_id,
        "modality": case.modality,
        "label": target.label,
        "case_kind": case.kind,
        "status": target.status,
        "submitted_by_id": timing.submitted_by or last_editor or target.created_by_id,
        "time_s": time_s,
        "per_frame_s": round(time_s / n_frames, 3) if case.kind == "video" and n_frames else None,
        "prompting_s": timing.phases["prompting"],
        "waiting_s": timing.phases["waiting"],
        "correcting_s": timing.phases["correcting"],
        "reviewing_s": timing.phases["reviewing"],
        "idle_left_out_s": timing.left_out["idle"],
        "hidden_left_out_s": timing.left_out["hidden"],
        "n_prompts": timing.counts["prompts"],
        "n_propagations": timing.counts["propagations"],
        "n_strokes": timing.counts["strokes"],
        "n_undos": timing.counts["undos"],
        "n_redos": timing.counts["redos"],
        "n_edits": timing.counts["strokes"] + timing.counts["undos"] + timing.counts["redos"],
        "n_events": timing.counts["events"],
        "n_duplicates": timing.duplicates,
        "first_event_at": timing.first_event,
        "last_event_at": timing.last_event,
        "details": {
            "users": {str(u): p for u, p in timing.per_user.items()},
            "clock_offsets_s": {str(u): o for u, o in timing.clock_offsets_s.items()},
            "slices": slices,
            "last_editor": last_editor,
        },
        "fingerprint": fp,
        "masks_fingerprint": masks_fp,
        **mask_fields,
    }
    try:
        with transaction.atomic():
            row, _ = TargetTiming.objects.update_or_create(target=target, defaults=values)
    except IntegrityError:  # a concurrent reader inserted it first: ours is as fresh
        TargetTiming.objects.filter(target=target).update(**values)
        row = TargetTiming.objects.get(target=target)
    return row
