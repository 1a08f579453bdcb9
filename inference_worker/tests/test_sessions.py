"""Each target's tracking session, run in-process with the shipped bootstrap model on a synthetic CT:
a click on a tracked slice goes in with that slice's tracked mask, a restarted worker rebuilds the
session identically from the stored ops, an undo starts over, re-propagation stays local, painted
slices stay as painted, and the key frame is the box's slice."""

import itertools

import numpy as np
import pytest

from annotation_app.annotations.models import MaskRevision, Prompt, PromptKind, Target
from annotation_app.lib.maskcodec import encode_slice_rle
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case
from inference_worker.model_cache import CACHE
from inference_worker.sessions import SESSIONS
from inference_worker.tasks import propagation

JOBS = itertools.count()


@pytest.fixture(scope="module")
def phantom():
    from medsam2.training.bootstrap import synthetic_cases

    case = synthetic_cases(10_000, 1, 3, "val")[0]  # (32, 128, 128) HU, 3 lesions
    oid = 1
    areas = (case.labels == oid).reshape(32, -1).sum(1)
    key = int(np.argmax(areas))
    ys, xs = np.nonzero(case.labels[key] == oid)
    return {"image": case.image, "labels": case.labels, "oid": oid, "key": key,
            "box": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())], "slices": np.flatnonzero(areas)}


@pytest.fixture
def case(project, settings, tmp_path, monkeypatch, phantom):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setenv("MEDSAM2_DEVICE", "cpu")
    monkeypatch.setenv("MEDSAM2_CPU_BF16", "0")
    CACHE.clear()
    SESSIONS.clear()
    return make_case(project, array=phantom["image"])


def new_target(case, user, phantom, key_frame=True) -> Target:
    target = Target.objects.create(case=case, label="lesion", key_frame=phantom["key"] if key_frame else None,
                                   created_by=user)
    Prompt.objects.create(target=target, frame=phantom["key"], kind=PromptKind.BOX, payload={"box": phantom["box"]})
    return target


def click(target, frame, xy, label=1) -> Prompt:
    return Prompt.objects.create(target=target, frame=frame, kind=PromptKind.POINT,
                                 payload={"points": [list(xy)], "labels": [label]})


def run(target, **fields) -> PropagationJob:
    job = PropagationJob.objects.create(target=target, idempotency_key=f"s-{target.pk}-{next(JOBS)}", **fields)
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


def mask_of(job) -> np.ndarray:
    return MaskRevision.objects.get(pk=job.result_revision_id).mask()


def centre_of(region: np.ndarray) -> tuple[int, int]:
    from medsam2.training.clicks import click_at_centre

    return click_at_centre(region)[0]


def test_a_click_on_a_tracked_slice_goes_in_with_that_slices_tracked_mask(case, annotator, phantom):
    from medsam2.build import build_model
    from medsam2.predictor import VolumePredictor
    from medsam2.weights import bootstrap_checkpoint_path

    target = new_target(case, annotator, phantom)
    first = run(target)
    key, gt = phantom["key"], phantom["labels"] == phantom["oid"]
    frame = int(phantom["slices"][-2])  # a tracked slice near the lesion's end
    xy = centre_of(gt[frame])
    click(target, frame, xy)
    second = run(target)
    assert second.session_ops["reset"] is False and second.timings["session"] == 1.0
    assert [f for f, _ in second.session_ops["prompts"]] == [frame]

    # the reference behaviour, by hand: box, propagate both ways, then the click on the tracked slice
    predictor = VolumePredictor(build_model("bootstrap_s", bootstrap_checkpoint_path()), fast=True)
    state = predictor.init_state(phantom["image"], modality="CT")
    predictor.add_prompt(state, key, 1, box=phantom["box"])
    for _ in predictor.propagate(state, "forward", start_frame=key, max_frames=31 - key):
        pass
    for _ in predictor.propagate(state, "backward", start_frame=key, max_frames=key):
        pass
    tracked = predictor.add_prompt(state, frame, 1, points=[xy], labels=[1]).masks[0]
    # ... and what the old worker did: a new session with the click as a fresh prompt
    predictor.reset(state)
    predictor.add_prompt(state, key, 1, box=phantom["box"])
    replayed = predictor.add_prompt(state, frame, 1, points=[xy], labels=[1]).masks[0]

    after = mask_of(second)[frame]
    assert np.array_equal(after, tracked), "the worker's click result differs from the tracked-mask reference"
    assert not np.array_equal(tracked, replayed), "this click cannot tell the two behaviours apart"
    # local: the key slice and everything before it keep their masks
    assert mask_of(first)[: key + 1].tobytes() == mask_of(second)[: key + 1].tobytes()


def test_a_restarted_worker_rebuilds_the_session_identically(case, annotator, phantom):
    gt = phantom["labels"] == phantom["oid"]
    f1, f2 = int(phantom["slices"][1]), int(phantom["slices"][-2])
    kept, rebuilt = new_target(case, annotator, phantom), new_target(case, annotator, phantom)
    for target in (kept, rebuilt):
        run(target)
        click(target, f1, centre_of(gt[f1]))
        run(target)
    click(kept, f2, centre_of(gt[f2]))
    on_kept = run(kept)
    SESSIONS.clear()  # a worker restart: no session, no features
    CACHE.clear()
    click(rebuilt, f2, centre_of(gt[f2]))
    on_rebuilt = run(rebuilt)
    assert (on_kept.timings["session"], on_rebuilt.timings["session"]) == (1.0, 2.0)
    assert mask_of(on_kept).tobytes() == mask_of(on_rebuilt).tobytes()
    assert on_kept.session_ops["passes"] == on_rebuilt.session_ops["passes"]


def test_an_undone_click_gives_back_exactly_the_mask_before_it(case, annotator, phantom):
    gt = phantom["labels"] == phantom["oid"]
    target = new_target(case, annotator, phantom)
    before = mask_of(run(target))
    frame = int(phantom["slices"][-2])
    prompt = click(target, frame, centre_of(gt[frame]))
    clicked = mask_of(run(target))
    assert clicked.tobytes() != before.tobytes()
    Prompt.objects.filter(pk=prompt.pk).update(withdrawn=True)
    undone = run(target)
    assert undone.session_ops["reset"] is True
    assert mask_of(undone).tobytes() == before.tobytes()


def test_a_correction_changes_only_the_slices_up_to_the_next_prompted_slice_each_way(case, annotator, phantom):
    gt = phantom["labels"] == phantom["oid"]
    key, slices = phantom["key"], phantom["slices"]
    target = new_target(case, annotator, phantom)
    run(target)
    upper = int(slices[-1])
    click(target, upper, centre_of(gt[upper]))
    run(target)
    middle = (key + upper) // 2
    assert key < middle < upper
    click(target, middle, centre_of(gt[middle]))
    job = run(target)
    passes = [["forward", middle, upper - 1 - middle], ["backward", middle, middle - key - 1]]
    assert job.session_ops["passes"] == passes
    computed = set(range(key + 1, upper))
    revision = MaskRevision.objects.get(pk=job.result_revision_id)
    parent = revision.parent.mask()
    outside = [f for f in range(32) if f not in computed]
    assert revision.mask()[outside].tobytes() == parent[outside].tobytes()


def test_a_painted_slice_stays_as_painted_after_a_correction_next_to_it(case, annotator, phantom):
    gt = phantom["labels"] == phantom["oid"]
    key, slices = phantom["key"], phantom["slices"]
    target = new_target(case, annotator, phantom)
    run(target)
    painted = int(slices[-2])
    paint = np.zeros(gt[painted].shape, bool)
    paint[40:60, 40:70] = True  # not what the model would draw
    Prompt.objects.create(target=target, frame=painted, kind=PromptKind.MASK,
                          payload={"rle": encode_slice_rle(paint), "height": 128, "width": 128})
    run(target)
    below = key + 1
    click(target, below, centre_of(gt[below]))
    job = run(target)
    assert mask_of(job)[painted].tobytes() == paint.tobytes()
    assert max(f for d, s, n in job.session_ops["passes"] for f in ([s + n] if d == "forward" else [s])) < painted


def test_the_key_frame_of_a_target_without_one_is_the_slice_of_its_box(case, annotator, phantom):
    target = Target.objects.create(case=case, label="lesion", created_by=annotator)
    low = int(phantom["slices"][0])
    click(target, low, centre_of(phantom["labels"][low] == phantom["oid"]))  # placed first, lower slice
    Prompt.objects.create(target=target, frame=phantom["key"], kind=PromptKind.BOX, payload={"box": phantom["box"]})
    job = run(target)
    assert job.session_ops["prompts"][0][0] == phantom["key"]
    assert {tuple(p[:2]) for p in job.session_ops["passes"]} == {("forward", phantom["key"]),
                                                                 ("backward", phantom["key"])}


def test_forward_from_here_propagates_from_the_slice_in_view_and_leaves_the_rest(case, annotator, phantom):
    target = new_target(case, annotator, phantom)
    before = mask_of(run(target))
    here = phantom["key"] + 3
    job = run(target, direction="forward", frame_range=[here, 31])
    assert job.session_ops["passes"] == [["forward", here, 31 - here]]
    assert mask_of(job)[:here].tobytes() == before[:here].tobytes()


def test_from_here_on_a_target_never_propagated_is_refused_with_the_reason(case, annotator, phantom):
    target = new_target(case, annotator, phantom)
    job = PropagationJob.objects.create(target=target, idempotency_key=f"h-{next(JOBS)}", direction="forward",
                                        frame_range=[phantom["key"] + 3, 31])
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == f"key frame {phantom['key']} lies outside the frame range [{phantom['key'] + 3}, 31]"
