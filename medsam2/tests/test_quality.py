"""The confidence strip's suspect flags on hand-made tracks."""

import numpy as np

from medsam2.quality import Thresholds, frame_flags


def disc_track(radii, size=64, centres=None):
    t = len(radii)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((t, size, size), bool)
    for f, r in enumerate(radii):
        cy, cx = centres[f] if centres else (32, 32)
        out[f] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if r > 0 else False
    return out


def test_a_smooth_track_that_tapers_off_raises_no_flag():
    track = disc_track([0, 0, 3, 6, 9, 11, 12, 11, 9, 6, 3, 0, 0])
    assert frame_flags(track) == [[] for _ in range(13)]


def test_a_track_dropped_from_a_big_cross_section_flags_the_next_empty_slices_as_lost():
    track = disc_track([0, 3, 6, 9, 11, 12, 12, 0, 0, 0, 0, 0])
    flags = frame_flags(track)
    assert [f for f, why in enumerate(flags) if "lost" in why] == [7, 8, 9]


def test_gaps_jumps_and_low_model_scores_are_flagged_with_their_reason():
    track = disc_track([6, 9, 0, 9, 9, 18, 9, 9], centres=[(32, 32)] * 7 + [(12, 12)])
    ious = np.array([0.9, 0.9, np.nan, 0.9, 0.9, 0.9, 0.9, 0.5])
    scores = np.array([9, 9, -9, 9, 0.5, 9, 9, 9], dtype=float)
    flags = frame_flags(track, scores, ious, Thresholds())
    assert "lost" in flags[2] and "unsure" in flags[4]
    assert "area_jump" in flags[5] and "shift" in flags[7] and "low_iou" in flags[7]
    assert flags[0] == []
