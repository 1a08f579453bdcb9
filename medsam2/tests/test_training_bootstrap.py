"""The bootstrap command end to end on a tiny budget, its CLI errors, and the shipped weights."""

import json

import pytest
import torch

from medsam2.build import build_model, file_sha256
from medsam2.training.__main__ import main
from medsam2.training.bootstrap import (
    BootstrapConfig,
    bootstrap_checkpoint_path,
    bootstrap_metadata_path,
    run_bootstrap,
    synthetic_cases,
)
from medsam2.training.evaluate import evaluate


def test_a_three_step_bootstrap_writes_weights_and_metadata(tmp_path):
    cfg = BootstrapConfig(steps=3, train_cases=2, val_cases=1, warmup_steps=1)
    meta = run_bootstrap(tmp_path / "out", cfg, work_dir=tmp_path / "run", show_progress=False)
    weights = tmp_path / "out" / "bootstrap_s.pt"
    saved = json.loads((tmp_path / "out" / "bootstrap_s.json").read_text())
    assert saved == meta
    assert meta["config"] == "bootstrap_s" and meta["seed"] == 0
    assert meta["steps_done"] == 3 and not meta["stopped_by_cpu_cap"]
    assert meta["sha256"] == file_sha256(weights)
    assert 0.0 <= meta["validation"]["mean_dice"] <= 1.0
    build_model("bootstrap_s", checkpoint=weights)  # strict load


def test_the_cli_reports_a_missing_checkpoint_in_one_line_and_exits_non_zero(capsys):
    assert main(["evaluate", "--checkpoint", "/nonexistent/weights.pt"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_the_shipped_bootstrap_weights_load_strictly_and_reproduce_their_recorded_scores():
    path = bootstrap_checkpoint_path()
    meta = json.loads(bootstrap_metadata_path().read_text())
    assert meta["sha256"] == file_sha256(path)
    assert meta["train_cpu_seconds"] <= meta["bootstrap"]["max_cpu_minutes"] * 60 + 30
    torch.set_num_threads(1)
    model = build_model("bootstrap_s", checkpoint=path)
    seed = meta["validation"].get("seed", meta["seed"] + 10_000)
    case = synthetic_cases(seed, 1, meta["bootstrap"]["val_lesions"], "val")[0]
    score = evaluate(model, [case]).per_case()["val0"]
    assert score["dice"] == pytest.approx(meta["validation"]["per_case"]["val0"]["dice"], abs=1e-6)


def test_boolean_options_parse_false_as_false():
    from medsam2.training.__main__ import _parser

    args = _parser().parse_args(["bootstrap", "--all-candidates", "false"])
    assert args.all_candidates is False
    assert _parser().parse_args(["bootstrap", "--all-candidates", "1"]).all_candidates is True


def test_a_bootstrap_plans_no_more_steps_than_fit_its_cpu_cap(tmp_path, monkeypatch):
    from medsam2.training import bootstrap

    monkeypatch.setattr(bootstrap, "CALIBRATION_STEPS", 30)
    torch.set_num_threads(1)
    cfg = BootstrapConfig(steps=5000, max_cpu_minutes=0.1, train_cases=2, val_cases=1, warmup_steps=1)
    meta = run_bootstrap(tmp_path / "out", cfg, work_dir=tmp_path / "run", show_progress=False)
    per_step = meta["calibration_cpu_ms_per_step"]
    assert per_step > 0
    assert meta["steps_planned"] == int(0.85 * 6000 / per_step) < 5000
    assert meta["steps_done"] == meta["steps_planned"] and not meta["stopped_by_cpu_cap"]
    assert meta["train_cpu_seconds"] <= 6.0
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan == {"steps": meta["steps_planned"], "cpu_ms_per_step": per_step}  # what a resume reuses


def test_the_calibration_leaves_the_trained_weights_unchanged(tmp_path, monkeypatch):
    from medsam2.training import bootstrap

    monkeypatch.setattr(bootstrap, "CALIBRATION_STEPS", 20)
    torch.set_num_threads(1)
    base = dict(steps=45, train_cases=2, val_cases=1, warmup_steps=1)
    fitted = run_bootstrap(tmp_path / "a", BootstrapConfig(**base), work_dir=tmp_path / "wa", show_progress=False)
    plain = run_bootstrap(tmp_path / "b", BootstrapConfig(**base, fit_steps_to_cap=False), work_dir=tmp_path / "wb",
                          show_progress=False)
    assert fitted["calibration_cpu_ms_per_step"] is not None and plain["calibration_cpu_ms_per_step"] is None
    assert fitted["steps_done"] == plain["steps_done"] == 45
    a = torch.load(tmp_path / "a" / "bootstrap_s.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "bootstrap_s.pt", weights_only=True)["model"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert fitted["final_loss_mean_last_100"] == plain["final_loss_mean_last_100"]
