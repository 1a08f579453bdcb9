"""Clip sampling: shapes, preprocessing identical to inference, determinism, augmentation."""

import numpy as np
import pytest
import torch

from medsam2.preprocessing import to_model_input, to_uint8
from medsam2.training.data import AugmentConfig, Case, ClipDataset


def _case():
    rng = np.random.default_rng(0)
    img = rng.normal(0, 20, (20, 32, 32)).astype(np.int16)
    lab = np.zeros((20, 32, 32), np.uint8)
    lab[4:12, 8:16, 8:20] = 1
    lab[6:9, 20:28, 20:28] = 2
    img[lab > 0] += 120
    return Case(image=img, labels=lab, spacing=(2.0, 1.0, 1.0), modality="CT", name="toy")


def test_clips_have_eight_frames_and_their_first_frame_shows_every_object():
    ds = ClipDataset([_case()], image_size=32, clips_per_epoch=30, seed=0)
    for i in range(len(ds)):
        clip = ds[i]
        assert clip.images.shape == (8, 3, 32, 32) and clip.images.dtype == torch.float32
        assert clip.masks.shape == (len(clip.object_ids), 8, 32, 32)
        assert clip.masks[:, 0].flatten(1).any(1).all()
        steps = np.diff(clip.frames)
        assert (steps == 1).all() or (steps == -1).all()


def test_without_augmentation_a_clip_is_exactly_the_inference_preprocessing():
    case = _case()
    ds = ClipDataset([case], image_size=32, clips_per_epoch=5, seed=1, augment=AugmentConfig(enabled=False))
    clip = ds[0]
    expected = to_model_input(to_uint8(case.image[clip.frames], "CT"), 32)
    assert torch.equal(clip.images, expected)
    for k, oid in enumerate(clip.object_ids):
        assert torch.equal(clip.masks[k], torch.from_numpy(case.labels[clip.frames] == oid))


def test_the_same_seed_epoch_and_index_give_the_same_clip_and_another_epoch_differs():
    a = ClipDataset([_case()], image_size=32, clips_per_epoch=4, seed=7)
    b = ClipDataset([_case()], image_size=32, clips_per_epoch=4, seed=7)
    assert torch.equal(a[2].images, b[2].images) and torch.equal(a[2].masks, b[2].masks)
    b.set_epoch(1)
    assert not all(torch.equal(a[i].images, b[i].images) for i in range(4))


def test_augmentation_moves_image_and_mask_together():
    case = _case()
    ds = ClipDataset([case], image_size=32, clips_per_epoch=20, seed=3)
    # the object is bright (+120 HU) on a 0 HU background: after any flip/affine the pixels
    # under the augmented mask must still be the bright ones
    for i in range(20):
        clip = ds[i]
        inside = clip.images[:, 0][clip.masks.any(0)].mean()
        outside = clip.images[:, 0][~clip.masks.any(0)].mean()
        assert inside > outside + 0.5


def test_a_case_with_mismatched_label_shape_is_rejected():
    with pytest.raises(ValueError, match="disagree"):
        Case(image=np.zeros((4, 8, 8)), labels=np.zeros((4, 8, 9)))


def test_zoom_enlarges_the_first_object_and_keeps_it_in_view():
    case = _case()
    plain = AugmentConfig(hflip=0, vflip=0, reverse=0, rotate_deg=0, scale=(1, 1), translate=0, shear_deg=0)
    zoomed = AugmentConfig(hflip=0, vflip=0, reverse=0, rotate_deg=0, scale=(1, 1), translate=0, shear_deg=0,
                           zoom_prob=1.0, zoom=(2.0, 2.0))
    a = ClipDataset([case], image_size=32, clips_per_epoch=6, seed=5, augment=plain)
    b = ClipDataset([case], image_size=32, clips_per_epoch=6, seed=5, augment=zoomed)
    for i in range(6):
        area_a = a[i].masks[0, 0].sum().item()
        area_b = b[i].masks[0, 0].sum().item()
        # twice the side -> about four times the area (minus what leaves the field of view)
        assert 2.5 * area_a < area_b <= 4.5 * area_a


def test_rgb_video_frames_become_three_channel_clips_with_their_masks():
    from medsam2.synthetic import make_endoscopy_video

    video = make_endoscopy_video(0, n_frames=12, size=(48, 64))
    case = Case(image=video.frames, labels=video.masks, modality="ES", name="endo")
    clip = ClipDataset([case], image_size=32, clips_per_epoch=1, seed=0)[0]
    assert clip.images.shape == (8, 3, 32, 32)
    assert clip.masks.shape == (1, 8, 32, 32) and clip.masks[0, 0].any()
    # colour survives: the three channels differ (grayscale input would repeat one channel)
    assert not torch.allclose(clip.images[:, 0], clip.images[:, 1])


def test_key_slice_starts_put_the_objects_largest_slice_first():
    img = np.zeros((20, 32, 32), np.int16)
    lab = np.zeros((20, 32, 32), np.uint8)
    for z, half in zip(range(4, 13), [1, 2, 3, 4, 6, 4, 3, 2, 1], strict=True):
        lab[z, 16 - half:16 + half, 16 - half:16 + half] = 1  # largest on slice 8
    img[lab > 0] = 200
    ds = ClipDataset([Case(img, lab)], image_size=32, clips_per_epoch=10, seed=2, key_slice_prob=1.0)
    assert {ds[i].frames[0] for i in range(10)} == {8}
    # and the clips run in both directions from it
    assert {ds[i].frames[1] for i in range(10)} == {7, 9}


def test_mid_clip_starts_prompt_a_frame_inside_the_clip_that_shows_every_object():
    ds = ClipDataset([_case()], image_size=32, clips_per_epoch=40, seed=5, mid_clip_prob=1.0)
    starts = []
    for i in range(len(ds)):
        clip = ds[i]
        assert clip.masks[:, clip.start].flatten(1).any(1).all()
        steps = np.diff(clip.frames)
        assert len(clip.frames) == 8 and ((steps == 1).all() or (steps == -1).all())
        starts.append(clip.start)
    assert min(starts) == 0 and max(starts) >= 5 and len(set(starts)) >= 4


def test_tail_clips_start_on_an_objects_last_slices_and_run_past_its_end():
    case = _case()
    spans = {1: (4, 11), 2: (6, 8)}
    ds = ClipDataset([case], image_size=32, num_frames=4, clips_per_epoch=40, seed=0, tail_prob=1.0,
                     augment=AugmentConfig(enabled=False))
    absent_frames = 0
    for i in range(len(ds)):
        clip = ds[i]
        lo, hi = spans[clip.object_ids[0]]
        first, step = clip.frames[0], clip.frames[1] - clip.frames[0]
        # prompted on the last or second-to-last slice in play order, then leaving the object
        assert first in ((hi, hi - 1) if step == 1 else (lo, lo + 1))
        shown = clip.masks[0].flatten(1).any(1)
        assert shown[0] and not shown[-1]
        absent_frames += int((~shown).sum())
    assert absent_frames >= 2 * len(ds)
