"""Correction clicks: where the evaluation clicks, and that the shipped model answers clicks on the fixed
held-out synthetic set (16 phantoms, 48 lesions) with the rates recorded next to its weights."""

import json

import numpy as np
import pytest
import torch

from medsam2.build import build_model
from medsam2.training.bootstrap import bootstrap_checkpoint_path, bootstrap_metadata_path, synthetic_cases
from medsam2.training.clicks import click_at_centre, evaluate_clicks
from medsam2.training.prompts import sample_error_clicks


def test_the_click_goes_to_the_deepest_pixel_of_the_largest_region():
    region = np.zeros((20, 20), bool)
    region[2:4, 2:4] = True  # small
    region[8:17, 5:12] = True  # large: 9 rows x 7 columns; 4 px from the edge on rows 11-13 of x=8
    (x, y), comp = click_at_centre(region)
    assert (x, y) == (8, 11) and comp.sum() == 63 and not comp[2, 2]


def test_centre_clicks_in_training_land_on_the_largest_error_region():
    gt = torch.zeros(1, 16, 16, dtype=torch.bool)
    gt[0, 2:14, 2:14] = True
    pred = gt.clone()
    pred[0, 4:11, 4:11] = False  # a 7x7 hole: the only error
    coords, labels = sample_error_clicks(gt, pred, torch.Generator().manual_seed(0), centre_prob=1.0)
    assert coords[0, 0].tolist() == [7.0, 7.0] and labels.tolist() == [[1]]


@pytest.mark.slow
def test_the_shipped_model_answers_clicks_as_recorded_and_better_than_before_its_click_training():
    torch.set_num_threads(1)
    meta = json.loads(bootstrap_metadata_path().read_text())
    model = build_model("bootstrap_s", checkpoint=bootstrap_checkpoint_path())
    seed = meta["clicks"].get("seed", meta["seed"] + 10_000)
    report = evaluate_clicks(model, synthetic_cases(seed, meta["validation"]["cases"], 3, "val"))
    summary = report.summary()
    recorded = meta["clicks"]
    for kind in ("positive", "negative"):
        assert summary[kind]["trials"] == recorded[kind]["trials"]
        assert summary[kind]["success_rate"] == pytest.approx(recorded[kind]["success_rate"], abs=1e-9)
    # measured: 23 of 38 positive clicks raise their slice's Dice (the from-scratch model: 19 of 37),
    # 5 of 29 negative clicks remove their false region (3 of 35); item 1 asks for 90%: not reached yet
    before = meta["fine_tune"]["before_on_seed_10000"]
    assert summary["positive"]["success_rate"] >= 0.6 > before["clicks_positive"]["success_rate"]
    assert summary["negative"]["success_rate"] >= 0.15 > before["clicks_negative"]["success_rate"]
    assert summary["positive"]["mean_slice_dice_after"] > summary["positive"]["mean_slice_dice_before"]
    assert summary["jumps"] == 0, [t for t in report.trials if t.other_after > t.other_before]
