"""The ``medsam2`` command line: success paths on a tiny model and one-line errors for bad input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medsam2.build import build_model, save_checkpoint
from medsam2.cli import CLIError, main, resolve_model_source
from medsam2.io import read_video, read_volume, write_video
from medsam2.predictor import VolumePredictor
from medsam2.synthetic import make_ct_volume, make_echo_video

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(build_model("test_tiny"), path)
    return path


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory):
    vol = make_ct_volume(0, shape=(6, 64, 64), n_lesions=1, spacing=(10.0, 3.2, 3.2))
    image = sitk.GetImageFromArray(vol.image)
    image.SetSpacing((3.2, 3.2, 10.0))
    image.SetOrigin((-100.0, -100.0, 0.0))
    path = tmp_path_factory.mktemp("ct") / "ct.nii.gz"
    sitk.WriteImage(image, str(path))
    return path, vol


@pytest.fixture(autouse=True)
def _no_env_checkpoint(monkeypatch):
    monkeypatch.delenv("MEDSAM2_CHECKPOINT", raising=False)
    monkeypatch.delenv("MEDSAM2_CONFIG", raising=False)


def _run(*args):
    """``python -m medsam2`` in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MEDSAM2_CHECKPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "medsam2", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("medsam2: error: ")
    assert "Traceback" not in stderr
    return lines[0]


def _volume_args(ct_path, tiny_checkpoint, out, *extra):
    return [
        "segment-volume",
        str(ct_path),
        "--box",
        "10",
        "10",
        "40",
        "40",
        "--slice",
        "3",
        "--out",
        str(out),
        "--checkpoint",
        str(tiny_checkpoint),
        "--config",
        "test_tiny",
        "--quiet",
        *extra,
    ]


# ------------------------------------------------------------------------------------------ success


def test_segment_volume_writes_the_predictors_mask_with_the_image_geometry(tmp_path, ct_file, tiny_checkpoint):
    ct_path, _ = ct_file
    out = tmp_path / "mask.nii.gz"
    assert main(_volume_args(ct_path, tiny_checkpoint, out)) == 0
    mask, ref = read_volume(out)
    image, image_ref = read_volume(ct_path)
    assert mask.shape == image.shape and mask.dtype == np.uint8
    assert ref.GetSpacing() == pytest.approx(image_ref.GetSpacing())
    assert ref.GetOrigin() == pytest.approx(image_ref.GetOrigin())
    # The CLI's mask is exactly what the library gives for the same prompt.
    predictor = VolumePredictor(build_model("test_tiny", tiny_checkpoint))
    state = predictor.init_state(image, modality="CT")
    predictor.add_prompt(state, frame_idx=3, obj_id=1, box=(10, 10, 40, 40))
    expected = predictor.propagate_volume(state)[1]
    np.testing.assert_array_equal(mask, expected.astype(np.uint8))


def test_largest_component_option_leaves_one_connected_component(tmp_path, ct_file, tiny_checkpoint):
    from scipy import ndimage

    ct_path, _ = ct_file
    out = tmp_path / "mask.nrrd"
    assert main(_volume_args(ct_path, tiny_checkpoint, out, "--largest-component")) == 0
    mask, _ = read_volume(out)
    _, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    assert n <= 1


def test_python_dash_m_runs_segment_volume(tmp_path, ct_file, tiny_checkpoint):
    ct_path, _ = ct_file
    out = tmp_path / "mask.nii.gz"
    proc = _run(*_volume_args(ct_path, tiny_checkpoint, out))
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "voxels" in proc.stdout
    assert read_volume(out)[0].shape == (6, 64, 64)


def test_segment_video_writes_png_masks_and_an_overlay_video(tmp_path, tiny_checkpoint):
    video = make_echo_video(1, n_frames=5, size=(64, 64))
    write_video(video.frames, tmp_path / "echo.mp4", fps=20)
    out_dir = tmp_path / "result"
    rc = main(
        [
            "segment-video",
            str(tmp_path / "echo.mp4"),
            "--box",
            "12",
            "10",
            "40",
            "50",
            "--frame",
            "2",
            "--out-dir",
            str(out_dir),
            "--checkpoint",
            str(tiny_checkpoint),
            "--config",
            "test_tiny",
            "--quiet",
        ]
    )
    assert rc == 0
    pngs = sorted((out_dir / "masks").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(5)]
    frames, fps = read_video(out_dir / "overlay.mp4")
    assert frames.shape == (5, 64, 64, 3) and fps == pytest.approx(20.0)


def test_batch_segments_good_rows_and_reports_bad_ones(tmp_path, ct_file, tiny_checkpoint, capsys):
    ct_path, _ = ct_file
    (tmp_path / "cases.csv").write_text(
        "image,box,slice,out,window\n"
        f"{ct_path},10 10 40 40,3,out/a.nii.gz,\n"
        f'{ct_path},"12,12,30,30",2,out/b.nii.gz,lung\n'
        f"{ct_path},10 10 40 40,99,out/c.nii.gz,\n"
    )
    rc = main(
        [
            "batch",
            str(tmp_path / "cases.csv"),
            "--checkpoint",
            str(tiny_checkpoint),
            "--config",
            "test_tiny",
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 2
    assert (tmp_path / "out" / "a.nii.gz").is_file() and (tmp_path / "out" / "b.nii.gz").is_file()
    assert not (tmp_path / "out" / "c.nii.gz").exists()
    assert "batch: 2 of 3 cases segmented, 1 failed" in captured.out
    assert captured.err.count("medsam2: error: row 3") == 1 and "slice 99 is out of range" in captured.err


def test_configs_lists_registered_configs(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert "medsam2_t512\timage_size=512" in out and "test_tiny\timage_size=64" in out


def test_download_returns_an_already_present_checkpoint_without_network(tmp_path, capsys):
    (tmp_path / "MedSAM2_latest.pt").write_bytes(b"weights")
    assert main(["download", "--dest", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "MedSAM2_latest.pt")


# ------------------------------------------------------------------------------------- model source


def test_model_source_prefers_the_flag_then_the_environment(monkeypatch, tmp_path):
    assert resolve_model_source("a.pt", None) == (Path("a.pt"), "medsam2_t512")
    monkeypatch.setenv("MEDSAM2_CHECKPOINT", str(tmp_path / "env.pt"))
    assert resolve_model_source(None, "test_tiny") == (tmp_path / "env.pt", "test_tiny")
    assert resolve_model_source("flag.pt", None)[0] == Path("flag.pt")


def _ship_weights(monkeypatch, name: str, path) -> None:
    """Make the registry's default pretrained config `name`, its weights at `path`."""
    from medsam2 import configs

    monkeypatch.setitem(configs._REGISTRY, name, configs.get_config(name).with_overrides(weights=str(path)))
    monkeypatch.setattr(configs, "PRETRAINED_DEFAULT", name)


def test_model_source_falls_back_to_the_bootstrap_model_and_its_config(monkeypatch, tmp_path):
    weights = tmp_path / "bootstrap.pt"
    weights.write_bytes(b"weights")
    _ship_weights(monkeypatch, "test_tiny", weights)
    assert resolve_model_source(None, None) == (weights, "test_tiny")


def test_bootstrap_weights_not_yet_built_give_a_clear_error(monkeypatch, tmp_path):
    _ship_weights(monkeypatch, "test_tiny", tmp_path / "absent.pt")
    with pytest.raises(CLIError, match="python -m medsam2.training bootstrap"):
        resolve_model_source(None, None)


def test_a_config_that_ships_no_weights_asks_for_a_checkpoint(monkeypatch):
    monkeypatch.delenv("MEDSAM2_CHECKPOINT", raising=False)
    with pytest.raises(CLIError, match="'medsam2_t512' ships no weights"):
        resolve_model_source(None, "medsam2_t512")


def test_the_shipped_bootstrap_weights_are_found_by_the_registry_without_the_training_stack():
    code = (
        "import sys; from medsam2.cli import resolve_model_source; "
        "path, name = resolve_model_source(None, None); "
        "print(path.name, name, 'medsam2.training' in sys.modules, 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MEDSAM2_CHECKPOINT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["bootstrap_s.pt", "bootstrap_s", "False", "False"]


def test_without_a_checkpoint_the_shipped_bootstrap_model_is_used(tmp_path, ct_file, capsys):
    from medsam2.weights import bootstrap_checkpoint_path

    assert bootstrap_checkpoint_path().is_file(), "medsam2/weights/bootstrap_s.pt must ship with the package"
    ct_path, _ = ct_file
    out = tmp_path / "boot.nii.gz"
    argv = ["segment-volume", str(ct_path), "--box", "10", "10", "40", "40", "--slice", "3", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    assert "voxels" in capsys.readouterr().out
    mask, ref = read_volume(out)
    assert mask.shape == (6, 64, 64) and set(np.unique(mask)) <= {0, 1}
    assert ref.GetSpacing() == pytest.approx((3.2, 3.2, 10.0))


def test_missing_bootstrap_model_gives_a_clear_error(monkeypatch, tmp_path, ct_file, capsys):
    _ship_weights(monkeypatch, "bootstrap_s", tmp_path / "not-built.pt")  # the registry's file is absent
    ct_path, _ = ct_file
    rc = main(
        [
            "segment-volume",
            str(ct_path),
            "--box",
            "1",
            "1",
            "9",
            "9",
            "--slice",
            "0",
            "--out",
            str(tmp_path / "m.nii.gz"),
            "--quiet",
        ]
    )
    assert rc == 2
    assert "pass --checkpoint PATH or set MEDSAM2_CHECKPOINT" in _one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------------ errors


def test_missing_image_is_one_error_line_and_exit_2_in_a_subprocess(tmp_path):
    proc = _run(
        "segment-volume",
        tmp_path / "absent.nii.gz",
        "--box",
        1,
        2,
        3,
        4,
        "--slice",
        0,
        "--out",
        tmp_path / "m.nii.gz",
    )
    assert proc.returncode == 2
    assert "no such file or folder" in _one_error_line(proc.stderr)


def test_box_outside_the_image_is_rejected_in_a_subprocess(tmp_path, ct_file, tiny_checkpoint):
    ct_path, _ = ct_file
    proc = _run(
        "segment-volume",
        ct_path,
        "--box",
        10,
        10,
        90,
        40,
        "--slice",
        3,
        "--out",
        tmp_path / "m.nii.gz",
        "--checkpoint",
        tiny_checkpoint,
        "--config",
        "test_tiny",
    )
    assert proc.returncode == 2
    assert "lies outside the 64x64" in _one_error_line(proc.stderr)
    assert not (tmp_path / "m.nii.gz").exists()


def test_usage_errors_are_one_line_in_a_subprocess():
    proc = _run("segment-volume")
    assert proc.returncode == 2
    assert "required" in _one_error_line(proc.stderr)


@pytest.mark.parametrize(
    ("box", "slice_", "message"),
    [
        (["10", "10", "40", "40"], "6", "slice 6 is out of range"),
        (["10", "10", "40", "40"], "-1", "slice -1 is out of range"),
        (["40", "10", "10", "40"], "3", "x1 > x0"),
        (["10", "10", "40", "x"], "3", "must be numbers"),
    ],
)
def test_bad_slice_or_box_exits_2(tmp_path, ct_file, tiny_checkpoint, capsys, box, slice_, message):
    ct_path, _ = ct_file
    rc = main(
        [
            "segment-volume",
            str(ct_path),
            "--box",
            *box,
            "--slice",
            slice_,
            "--out",
            str(tmp_path / "m.nii.gz"),
            "--checkpoint",
            str(tiny_checkpoint),
            "--config",
            "test_tiny",
        ]
    )
    assert rc == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_wrong_dimensionality_and_unreadable_files_exit_2(tmp_path, tiny_checkpoint, capsys):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8), np.int16)), str(tmp_path / "flat.nii.gz"))
    (tmp_path / "junk.nii.gz").write_bytes(b"garbage")
    for name, message in [("flat.nii.gz", "expected a 3D volume"), ("junk.nii.gz", "cannot read")]:
        rc = main(
            [
                "segment-volume",
                str(tmp_path / name),
                "--box",
                "1",
                "1",
                "4",
                "4",
                "--slice",
                "0",
                "--out",
                str(tmp_path / "m.nii.gz"),
                "--checkpoint",
                str(tiny_checkpoint),
                "--config",
                "test_tiny",
            ]
        )
        assert rc == 2
        assert message in _one_error_line(capsys.readouterr().err)


def test_bad_modality_window_and_checkpoint_exit_2(tmp_path, ct_file, tiny_checkpoint, capsys):
    ct_path, _ = ct_file
    base = [
        "segment-volume",
        str(ct_path),
        "--box",
        "10",
        "10",
        "40",
        "40",
        "--slice",
        "3",
        "--out",
        str(tmp_path / "m.nii.gz"),
    ]
    model = ["--checkpoint", str(tiny_checkpoint), "--config", "test_tiny"]
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    cases = [
        (base + model + ["--modality", "XRAYZ"], "unknown modality"),
        (base + model + ["--window", "sideways"], "unknown CT window"),
        (base + ["--checkpoint", str(tmp_path / "absent.pt")], "checkpoint not found"),
        (
            base + ["--checkpoint", str(tmp_path / "corrupt.pt"), "--config", "test_tiny"],
            "cannot load checkpoint",
        ),
        (base + ["--checkpoint", str(tiny_checkpoint), "--config", "bootstrap_s"], "does not fit config"),
        (base + ["--checkpoint", str(tiny_checkpoint), "--config", "nope"], "unknown model config"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in _one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_device_without_cuda_exits_2(tmp_path, ct_file, tiny_checkpoint, capsys):
    ct_path, _ = ct_file
    assert main(_volume_args(ct_path, tiny_checkpoint, tmp_path / "m.nii.gz", "--device", "cuda")) == 2
    assert "no CUDA device" in _one_error_line(capsys.readouterr().err)


def test_batch_with_missing_columns_exits_2(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("image,slice\nct.nii.gz,3\n")
    assert main(["batch", str(tmp_path / "bad.csv")]) == 2
    assert "missing: box, out" in _one_error_line(capsys.readouterr().err)
    assert main(["batch", str(tmp_path / "absent.csv")]) == 2
    assert "no such CSV file" in _one_error_line(capsys.readouterr().err)
