"""One intensity path: the worker's model input is the renderer's 8-bit slice, stored rescale included."""

import io

import numpy as np
import pytest
from PIL import Image

from annotation_app.annotations.models import MaskRevision, Prompt, PromptKind, Target
from annotation_app.imaging.rendering import render_slice
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case
from inference_worker.intensity import model_input
from inference_worker.model_cache import CACHE
from inference_worker.sessions import SESSIONS
from inference_worker.tasks import propagation


@pytest.fixture
def hu(settings, tmp_path, monkeypatch):
    from medsam2.training.bootstrap import synthetic_cases

    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setenv("MEDSAM2_DEVICE", "cpu")
    monkeypatch.setenv("MEDSAM2_CPU_BF16", "0")
    CACHE.clear()
    SESSIONS.clear()
    case = synthetic_cases(10_000, 1, 3, "val")[0]
    image = case.image.astype(np.int16)
    image -= image % 2  # even HU: exact in a slope-2 store
    return image, case.labels


def stored_with_slope(project, image, slope=2.0, intercept=-1024.0):
    stored = ((image.astype(np.float64) - intercept) / slope).astype(np.int16)
    assert np.array_equal(stored * slope + intercept, image)
    case = make_case(project, array=stored, name="rescaled")
    case.image_meta = {"rescale": {"slope": slope, "intercept": intercept}, "window": {"level": 40, "width": 400}}
    case.save(update_fields=["image_meta"])
    return case


def test_the_model_sees_a_rescaled_ct_exactly_as_the_slice_renderer_shows_it(project, hu):
    image, _ = hu
    rescaled = stored_with_slope(project, image)
    plain = make_case(project, array=image, name="plain")
    plain.image_meta = {"window": {"level": 40, "width": 400}}
    plain.save(update_fields=["image_meta"])
    from annotation_app.imaging.storage import open_case_array

    seen = model_input(rescaled, open_case_array(rescaled))
    assert seen.display and seen.array.dtype == np.uint8
    for z in (0, 13, 31):
        body, _ = render_slice(rescaled, "axial", z, "png")
        np.testing.assert_array_equal(seen.array[z], np.asarray(Image.open(io.BytesIO(body))))
    same = model_input(plain, open_case_array(plain)).array
    np.testing.assert_array_equal(seen.array, same)
    # the raw stored values windowed as HU would be another picture altogether
    wrong = np.clip((open_case_array(rescaled).astype(np.float32) + 160) * 255 / 400, 0, 255).astype(np.uint8)
    assert np.mean(wrong != seen.array) > 0.5


def test_a_ct_stored_with_slope_two_segments_like_the_same_ct_in_hu(project, annotator, hu):
    image, labels = hu
    masks = []
    for case in (stored_with_slope(project, image), make_case(project, array=image, name="plain")):
        key = int(np.argmax((labels == 1).reshape(32, -1).sum(1)))
        ys, xs = np.nonzero(labels[key] == 1)
        target = Target.objects.create(case=case, label="lesion", key_frame=key, created_by=annotator)
        Prompt.objects.create(target=target, frame=key, kind=PromptKind.BOX,
                              payload={"box": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]})
        job = PropagationJob.objects.create(target=target, idempotency_key=f"rescale-{case.pk}")
        propagation.run_job(job.pk, "test-worker")
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
        masks.append(MaskRevision.objects.get(pk=job.result_revision_id).mask())
    gt = labels == 1
    dice = 2 * (masks[0] & gt).sum() / (masks[0].sum() + gt.sum())
    assert masks[0].tobytes() == masks[1].tobytes() and dice > 0.6, dice


def test_renderer_worker_and_training_data_give_the_same_bytes_for_a_ct_stored_with_slope_two(project, hu):
    from annotation_app.imaging.rendering import case_rescale
    from annotation_app.imaging.storage import open_case_array
    from medsam2.training.data import Case as TrainCase
    from medsam2.training.data import ClipDataset
    from medsam2.window import PRESETS

    image, labels = hu
    case = stored_with_slope(project, image)
    case.image_meta["window"] = PRESETS["liver"].as_dict()  # a narrow window: most voxels in between
    case.save(update_fields=["image_meta"])
    stored = np.asarray(open_case_array(case))
    assert case_rescale(case) == (2.0, -1024.0)
    worker = model_input(case, stored).array
    training = ClipDataset(
        [TrainCase(image=stored, labels=labels, modality="CT", window="liver", rescale=case_rescale(case))], 64
    )._u8[0]
    rendered = np.stack([np.asarray(Image.open(io.BytesIO(render_slice(case, "axial", z, "png")[0])))
                         for z in range(stored.shape[0])])
    assert worker.dtype == training.dtype == rendered.dtype == np.uint8 and worker.shape == stored.shape
    np.testing.assert_array_equal(worker, rendered)
    np.testing.assert_array_equal(training, rendered)
    grey = (rendered > 0) & (rendered < 255)
    assert grey.mean() > 0.05, grey.mean()  # not a saturated black/white picture
