"""Command line: ``medsam2`` / ``python -m medsam2``.

Subcommands::

    segment-volume IMAGE --box x0 y0 x1 y1 --slice K --out mask.nii.gz [--modality CT --window abdomen]
    segment-video VIDEO --box x0 y0 x1 y1 [--frame 0] --out-dir DIR
    batch CSV            (columns: image, box, slice, out[, modality, window])
    configs              (registered model configs)
    download [--dest DIR] (MedSAM2_latest.pt from the Hugging Face Hub)

Boxes are ``x0 y0 x1 y1`` pixel coordinates on the prompted slice/frame (x = column, y = row).
Model weights: ``--checkpoint``, else ``$MEDSAM2_CHECKPOINT``, else the weights the config registry
ships for ``--config`` (default: the bundled bootstrap model; see medsam2.configs.pretrained_weights).
Any bad input ends with one line ``medsam2: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from medsam2.io import (
    InputError,
    overlay_masks,
    read_video,
    read_volume,
    write_mask_like,
    write_png_masks,
    write_video,
)
from medsam2.preprocessing import normalize_modality, parse_window

PROG = "medsam2"
DEFAULT_CONFIG = "medsam2_t512"
EXIT_BAD_INPUT = 2


class CLIError(Exception):
    """A user-facing problem; ``main`` prints it as one line and exits with ``status``."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as the same single line as every other error."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------------------------------------------
# argument checks (cheap, before any model is loaded)


def _parse_box(values: Sequence[str | float]) -> tuple[float, float, float, float]:
    if isinstance(values, str):
        values = [v for v in re.split(r"[\s,;]+", values.strip()) if v]
    if len(values) != 4:
        raise CLIError(f"a box needs 4 numbers x0 y0 x1 y1, got {len(values)}")
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except ValueError:
        raise CLIError(f"box values must be numbers, got {' '.join(map(str, values))}") from None
    if not (x1 > x0 and y1 > y0):
        raise CLIError(f"box must have x1 > x0 and y1 > y0, got ({x0:g}, {y0:g}, {x1:g}, {y1:g})")
    return x0, y0, x1, y1


def _check_box_inside(box: tuple[float, float, float, float], height: int, width: int) -> None:
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise CLIError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {width}x{height} (width x height) image")


def _check_index(index: int, count: int, what: str) -> int:
    if not 0 <= index < count:
        raise CLIError(f"{what} {index} is out of range: the image has {count} {what}s (0..{count - 1})")
    return index


def _modality(value: str) -> str:
    try:
        return normalize_modality(value)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _window(value: str | None) -> str | tuple[float, float] | None:
    if value is None or value == "":
        return None
    try:
        return parse_window(value)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


# ---------------------------------------------------------------------------------------------------
# model


def resolve_model_source(checkpoint: str | None, config: str | None) -> tuple[Path, str]:
    """Pick the weights and config: --checkpoint, else $MEDSAM2_CHECKPOINT, else the weights the config
    registry ships for --config (default: its PRETRAINED_DEFAULT, the bootstrap model)."""
    from medsam2.configs import PRETRAINED_DEFAULT, pretrained_weights

    if checkpoint:
        return Path(checkpoint), config or DEFAULT_CONFIG
    env = os.environ.get("MEDSAM2_CHECKPOINT")
    if env:
        return Path(env), config or os.environ.get("MEDSAM2_CONFIG") or DEFAULT_CONFIG
    try:
        path, cfg = pretrained_weights(config or PRETRAINED_DEFAULT)
    except (KeyError, LookupError) as exc:
        reason = exc.args[0]
        raise CLIError(f"no model checkpoint: pass --checkpoint PATH or set MEDSAM2_CHECKPOINT ({reason})") from None
    if not path.is_file():
        raise CLIError(
            "no model checkpoint: pass --checkpoint PATH or set MEDSAM2_CHECKPOINT (the bootstrap model "
            f"{path} is missing; build it with 'python -m medsam2.training bootstrap')"
        )
    return path, cfg.name


def load_predictor(args: argparse.Namespace) -> Any:
    """Build the model named by the arguments and wrap it in a ``VolumePredictor``."""
    import torch

    from medsam2.build import build_model
    from medsam2.checkpoints import CheckpointError
    from medsam2.predictor import VolumePredictor

    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda: no CUDA device is available")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CLIError("--device mps: Apple MPS is not available")
    path, config = resolve_model_source(args.checkpoint, args.config)
    if not path.is_file():
        raise CLIError(f"checkpoint not found: {path}")
    try:
        model = build_model(config, path, device=device)
    except KeyError as exc:
        raise CLIError(str(exc.args[0] if exc.args else exc)) from None
    except CheckpointError as exc:
        text = str(exc)
        raise CLIError(f"checkpoint {path} does not fit config {config!r}: {text[:300]}") from None
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:  # corrupt file
        raise CLIError(f"cannot load checkpoint {path}: {str(exc).splitlines()[0][:300]}") from None
    return VolumePredictor(model, device=device, fast=args.fast)


def _segment(
    predictor: Any,
    array: np.ndarray,
    modality: str,
    window: str | tuple[float, float] | None,
    frame_idx: int,
    box: tuple[float, float, float, float],
    show_progress: bool,
) -> np.ndarray:
    """Prompt object 1 with ``box`` on ``frame_idx`` and propagate both ways; bool ``(T, H, W)``."""
    from tqdm import tqdm

    state = predictor.init_state(array, modality=modality, window=window)
    predictor.add_prompt(state, frame_idx=frame_idx, obj_id=1, box=box)
    masks = np.zeros((state.num_frames, state.height, state.width), dtype=bool)
    with tqdm(total=state.num_frames, desc="propagating", unit="frame", disable=not show_progress) as bar:
        for res in predictor.propagate(state, direction="both"):
            if 1 in res.obj_ids:
                masks[res.frame_idx] = res.masks[res.obj_ids.index(1)]
            bar.update(1)
    return masks


# ---------------------------------------------------------------------------------------------------
# subcommands


def _volume_job(
    predictor: Any, image: str, box_values: Sequence[str | float] | str, slice_index: int, out: str,
    modality: str, window: str | None, largest_component: bool, show_progress: bool,
) -> str:  # fmt: skip
    box = _parse_box(box_values)
    mod = _modality(modality)
    win = _window(window)
    array, reference = read_volume(image)
    depth, height, width = array.shape
    _check_index(slice_index, depth, "slice")
    _check_box_inside(box, height, width)
    mask = _segment(predictor(), array, mod, win, slice_index, box, show_progress)
    if largest_component:
        from medsam2.postprocess import largest_component_3d

        mask = largest_component_3d(mask)
    path = write_mask_like(mask.astype(np.uint8), reference, out)
    n = int(mask.sum())
    spacing = reference.GetSpacing()
    ml = n * float(np.prod(spacing)) / 1000.0
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    extent = f"slices {slices[0]}..{slices[-1]}" if slices.size else "empty"
    return f"{path}: {n} voxels ({ml:.2f} ml), {extent}"


class _LazyPredictor:
    """Loads the model on first use, so input errors are reported before the (slow) model load."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.value: Any = None

    def __call__(self) -> Any:
        if self.value is None:
            self.value = load_predictor(self.args)
        return self.value


def cmd_segment_volume(args: argparse.Namespace) -> int:
    summary = _volume_job(
        _LazyPredictor(args), args.image, args.box, args.slice, args.out, args.modality, args.window,
        args.largest_component, not args.quiet,
    )  # fmt: skip
    print(summary)
    return 0


def cmd_segment_video(args: argparse.Namespace) -> int:
    box = _parse_box(args.box)
    mod = _modality(args.modality)
    frames, fps = read_video(args.video, max_frames=args.max_frames)
    n_frames, height, width = frames.shape[:3]
    _check_index(args.frame, n_frames, "frame")
    _check_box_inside(box, height, width)
    predictor = load_predictor(args)
    masks = _segment(predictor, frames, mod, None, args.frame, box, not args.quiet).astype(np.uint8)
    out_dir = Path(args.out_dir)
    pngs = write_png_masks(masks, out_dir / "masks")
    codec = write_video(overlay_masks(frames, masks), out_dir / "overlay.mp4", fps=fps)
    present = int(np.count_nonzero(masks.any(axis=(1, 2))))
    print(f"{out_dir}: {len(pngs)} PNG masks in masks/, overlay.mp4 ({codec}, {fps:g} fps)")
    print(f"object found on {present} of {n_frames} frames")
    return 0


BATCH_COLUMNS = ("image", "box", "slice", "out")
BOX_HELP = "box corners in pixels of the prompted slice/frame (x = column, y = row)"


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    csv_path = Path(args.csv)
    if not csv_path.is_file():
        raise CLIError(f"no such CSV file: {csv_path}")
    try:
        with csv_path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read CSV {csv_path}: {exc}") from None
    header = set(rows[0]) if rows else set()
    missing = [c for c in BATCH_COLUMNS if c not in header]
    if not rows or missing:
        detail = f"; missing: {', '.join(missing)}" if rows else ""
        raise CLIError(f"{csv_path} needs columns {', '.join(BATCH_COLUMNS)} and at least one row{detail}")
    base = csv_path.parent
    predictor = _LazyPredictor(args)
    failures: list[str] = []
    done = 0
    start = time.perf_counter()
    for n, row in enumerate(tqdm(rows, desc="batch", unit="case", disable=args.quiet), start=1):
        try:
            try:
                slice_index = int(str(row["slice"]).strip())
            except ValueError:
                raise CLIError(f"slice must be an integer, got {row['slice']!r}") from None
            summary = _volume_job(
                predictor, str(base / row["image"].strip()), row["box"], slice_index,
                str(base / row["out"].strip()), (row.get("modality") or "").strip() or args.modality,
                (row.get("window") or "").strip() or args.window, args.largest_component, False,
            )  # fmt: skip
            done += 1
            if args.quiet:
                continue
            tqdm.write(f"row {n}: {summary}")
        except (CLIError, InputError) as exc:
            if isinstance(exc, CLIError) and exc.status != EXIT_BAD_INPUT:
                raise  # model problems concern every row: stop at once
            failures.append(f"row {n} ({row.get('image', '?')}): {exc}")
    elapsed = time.perf_counter() - start
    for line in failures:
        print(f"{PROG}: error: {line}", file=sys.stderr)
    print(f"batch: {done} of {len(rows)} cases segmented, {len(failures)} failed, {elapsed:.1f} s")
    return EXIT_BAD_INPUT if failures else 0


def cmd_configs(args: argparse.Namespace) -> int:
    from medsam2.configs import get_config, list_configs

    for name in list_configs():
        print(f"{name}\timage_size={get_config(name).image_size}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from medsam2.checkpoints import download_medsam2

    try:  # the hub client logs every retry; our error line says what to do
        from huggingface_hub.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - pinned dependency
        pass
    try:
        path = download_medsam2(args.dest)
    except RuntimeError as exc:
        raise CLIError(str(exc).splitlines()[0], status=1) from None
    print(path)
    return 0


# ---------------------------------------------------------------------------------------------------
# parser


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="model weights (.pt); default $MEDSAM2_CHECKPOINT, else the bootstrap model")
    p.add_argument("--config", help=f"model config name (default {DEFAULT_CONFIG} with a checkpoint)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"])
    p.add_argument("--fast", action="store_true",
                   help="bf16 on CUDA and where it measures faster on the CPU; stop once the object has left")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="MedSAM2 segmentation of 3D medical images and videos.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("segment-volume", help="segment one object in a 3D scan from a box on one slice")
    p.add_argument("image", help="NIfTI/NRRD/MHA file or DICOM folder")
    p.add_argument("--box", nargs=4, required=True, metavar=("X0", "Y0", "X1", "Y1"), help=BOX_HELP)
    p.add_argument("--slice", type=int, required=True, metavar="K", help="index of the slice the box is drawn on")
    p.add_argument("--modality", default="CT", help="CT, MR, PET, US, ... (default CT)")
    p.add_argument("--window", help="CT window: name (abdomen, lung, brain, ...) or WIDTH,LEVEL")
    p.add_argument("--out", required=True, help="output mask (.nii.gz, .nrrd, .mha)")
    p.add_argument("--largest-component", action="store_true", help="keep the largest 3D connected component")
    _add_model_args(p)
    p.set_defaults(func=cmd_segment_volume)

    p = sub.add_parser("segment-video", help="segment one object in a video from a box on one frame")
    p.add_argument("video", help="video file (mp4, avi, ...) or folder of JPEG/PNG frames")
    p.add_argument("--box", nargs=4, required=True, metavar=("X0", "Y0", "X1", "Y1"), help=BOX_HELP)
    p.add_argument("--frame", type=int, default=0, help="index of the frame the box is drawn on (default 0)")
    p.add_argument("--modality", default="OT", help="US, ES (endoscopy) or OT (default)")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")
    p.add_argument("--out-dir", required=True, help="folder for masks/*.png and overlay.mp4")
    _add_model_args(p)
    p.set_defaults(func=cmd_segment_video)

    p = sub.add_parser("batch", help="segment-volume over the rows of a CSV file")
    p.add_argument("csv", help="CSV with columns image, box ('x0 y0 x1 y1'), slice, out[, modality, window]")
    p.add_argument("--modality", default="CT", help="modality for rows without one (default CT)")
    p.add_argument("--window", help="window for rows without one")
    p.add_argument("--largest-component", action="store_true")
    _add_model_args(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("configs", help="list the registered model configs")
    p.set_defaults(func=cmd_configs)

    p = sub.add_parser("download", help="download MedSAM2_latest.pt from the Hugging Face Hub")
    p.add_argument("--dest", default=str(Path.home() / ".cache" / "medsam2"), help="folder (default ~/.cache/medsam2)")
    p.set_defaults(func=cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 1 other failure)."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for users; MEDSAM2_DEBUG=1 shows it
        if os.environ.get("MEDSAM2_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"{PROG}: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
