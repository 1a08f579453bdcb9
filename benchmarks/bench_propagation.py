"""Propagation speed: our predictor vs the reference SAM2 video predictor, same weights and volume.

Session per model: box on the middle slice, propagate both ways (pass 1), click correction on
another slice, propagate both ways again (pass 2). Prints ms per propagated frame for each pass,
the ratio to the reference, mask agreement (Dice) with the reference (ours fp32) and with ours
fp32 (fast mode), and the arithmetic floors (FLOPs of one tracked frame, attention included,
over this CPU's fp32 and, where fast mode uses it, bf16 matrix-product rate) as ratios to the
reference. Phases of the three runs
are interleaved so that load from other processes on a shared machine hits them alike.

    python benchmarks/bench_propagation.py --slices 20 --threads 2 [--checkpoint MedSAM2_latest.pt]

Without a checkpoint the reference's random init is perturbed with a fixed seed and the object
score head is biased towards "present" (random heads otherwise report no object anywhere).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medsam2.build import build_model, load_weights  # noqa: E402
from medsam2.checkpoints import checkpoint_filter_fn  # noqa: E402
from medsam2.predictor import VolumePredictor  # noqa: E402
from medsam2.preprocessing import to_model_input, to_uint8  # noqa: E402

WINDOW = (400.0, 40.0)


def make_volume(d: int, size: int) -> np.ndarray:
    """CT-like volume (HU): an ellipsoid 'organ' spanning the middle half of the slices."""
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[0:d, 0:size, 0:size].astype(np.float32)
    c = size / 2
    inside = ((x - c) / (0.2 * size)) ** 2 + ((y - c) / (0.16 * size)) ** 2 + ((z - d / 2) / (d / 4)) ** 2 <= 1
    return np.where(inside, 160.0, 30.0) + rng.normal(0, 25, (d, size, size)).astype(np.float32)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * np.logical_and(a, b).sum() / s)


@dataclass
class Run:
    name: str
    times: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)


def reference_session(ref, images: torch.Tensor, h: int, w: int):
    """The dict the reference's init_state builds (it only reads JPEG folders), with our frames."""
    st: dict = {
        "images": images,
        "num_frames": images.shape[0],
        "offload_video_to_cpu": False,
        "offload_state_to_cpu": False,
        "video_height": h,
        "video_width": w,
        "device": torch.device("cpu"),
        "storage_device": torch.device("cpu"),
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }
    ref._get_image_feature(st, frame_idx=0, batch_size=1)
    return st


def fp32_floor(pred: VolumePredictor, vol: np.ndarray, threads: int) -> tuple[float, float]:
    """(GFLOP of one tracked frame with a full memory bank, fp32 GEMM GFLOP/s on this CPU).

    Their quotient is the time a frame cannot go below in fp32 on this machine, however the
    code is arranged: every FLOP counted is a matrix product or convolution of the model.
    """
    from torch.utils.flop_counter import FlopCounterMode

    st = pred.init_state(vol, "CT", WINDOW)
    d = vol.shape[0]
    pred.add_prompt(st, 0, 1, box=(0.3 * vol.shape[2], 0.34 * vol.shape[1], 0.7 * vol.shape[2], 0.66 * vol.shape[1]))
    frames = pred.propagate(st, "forward")
    for _ in range(min(d - 1, 8)):  # fill the 7-slot memory bank
        next(frames)
    # FlopCounterMode has no formula for the CPU flash-attention kernel: count attention here
    sdpa = torch.nn.functional.scaled_dot_product_attention
    attn_flops = 0

    def counted(q, k, v, *args, **kwargs):
        nonlocal attn_flops
        attn_flops += 2 * 2 * q.shape[:-1].numel() * k.shape[-2] * q.shape[-1]  # QK^T and AV
        return sdpa(q, k, v, *args, **kwargs)

    counter = FlopCounterMode(display=False)
    torch.nn.functional.scaled_dot_product_attention = counted
    try:
        with counter:
            next(frames)
    finally:
        torch.nn.functional.scaled_dot_product_attention = sdpa
    frames.close()
    torch.set_num_threads(threads)
    return (counter.get_total_flops() + attn_flops) / 1e9, gemm_rate(torch.float32)


def gemm_rate(dtype: torch.dtype) -> float:
    """GFLOP/s of a 2048^3 matrix product in ``dtype`` at the current thread count."""
    a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", type=Path, default=None)
    args = ap.parse_args()
    if args.slices < 4:
        sys.exit("error: --slices must be at least 4")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from sam2.build_sam import build_sam2_video_predictor

    ref = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        None,
        device="cpu",
        hydra_overrides_extra=["++model.image_size=512", "++model.add_all_frames_to_correct_as_cond=true"],
    )
    ref.fill_hole_area = 0  # needs the reference's CUDA extension; skipped on CPU anyway
    if args.checkpoint is not None:
        sd = checkpoint_filter_fn(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    else:
        g = torch.Generator().manual_seed(1)
        sd = {
            k: v + 0.02 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
            for k, v in ref.state_dict().items()
        }
        sd["sam_mask_decoder.pred_obj_score_head.layers.2.bias"] = torch.tensor([4.0])
    ref.load_state_dict(sd, strict=True)
    ref.eval()
    ours = build_model("medsam2_t512")
    load_weights(ours, sd)
    ours_fast = build_model("medsam2_t512")
    load_weights(ours_fast, sd)
    fp32 = VolumePredictor(ours)
    fast = VolumePredictor(ours_fast, fast=True)

    d, s = args.slices, args.size
    vol = make_volume(d, s)
    mid, corr = d // 2, d // 2 + 3
    box = (0.3 * s, 0.34 * s, 0.7 * s, 0.66 * s)
    click = (0.5 * s, 0.5 * s)
    images = to_model_input(to_uint8(vol, "CT", WINDOW), 512)

    runs = {n: Run(n) for n in ("reference", "ours fp32", "ours fast")}
    rs = reference_session(ref, images, s, s)
    states = {
        "ours fp32": fp32.init_state(vol, "CT", WINDOW),
        "ours fast": fast.init_state(vol, "CT", WINDOW),
    }
    preds = {"ours fp32": fp32, "ours fast": fast}

    def ref_pass(tag: str) -> None:
        out = np.zeros((d, s, s), bool)
        n = 0
        t0 = time.perf_counter()
        for reverse in (False, True):
            for f, _, logits in ref.propagate_in_video(rs, reverse=reverse):
                out[f] = logits[0, 0].numpy() > 0
                n += 1
        runs["reference"].times[tag] = time.perf_counter() - t0
        runs["reference"].frames[tag] = n
        runs["reference"].masks[tag] = out

    def our_pass(name: str, tag: str) -> None:
        out = np.zeros((d, s, s), bool)
        n = 0
        t0 = time.perf_counter()
        for r in tqdm(preds[name].propagate(states[name]), total=d, desc=f"{name} {tag}", leave=False):
            out[r.frame_idx] = r.masks[0]
            n += 1
        runs[name].times[tag] = time.perf_counter() - t0
        runs[name].frames[tag] = n
        runs[name].masks[tag] = out

    with torch.inference_mode():
        ref.add_new_points_or_box(rs, mid, 1, box=np.array(box, np.float32))
        for name in preds:
            preds[name].add_prompt(states[name], mid, 1, box=box)
        ref_pass("pass1")
        for name in preds:
            our_pass(name, "pass1")
        ref.add_new_points_or_box(rs, corr, 1, points=np.array([click], np.float32), labels=np.array([1], np.int32))
        for name in preds:
            preds[name].add_prompt(states[name], corr, 1, points=[click], labels=[1])
        ref_pass("pass2")
        for name in preds:
            our_pass(name, "pass2")

    base = runs["reference"]
    print(f"volume {d}x{s}x{s}, threads {args.threads}, weights: {args.checkpoint or 'random (seeded)'}")
    print(f"fast mode autocast: {fast.autocast_dtype}, encode batch {fast.encode_batch}")
    print(
        f"{'run':<11} {'pass1 ms/f':>11} {'pass2 ms/f':>11} {'session ms/f':>13} {'ratio p1':>9} "
        f"{'ratio p2':>9} {'ratio sess':>10} {'dice vs ref':>12}"
    )
    for run in runs.values():
        p1 = 1000 * run.times["pass1"] / run.frames["pass1"]
        p2 = 1000 * run.times["pass2"] / run.frames["pass2"]
        sess = 1000 * sum(run.times.values()) / sum(run.frames.values())
        b1 = 1000 * base.times["pass1"] / base.frames["pass1"]
        b2 = 1000 * base.times["pass2"] / base.frames["pass2"]
        bs = 1000 * sum(base.times.values()) / sum(base.frames.values())
        dv = min(dice(run.masks[t], base.masks[t]) for t in ("pass1", "pass2"))
        print(
            f"{run.name:<11} {p1:>11.0f} {p2:>11.0f} {sess:>13.0f} {p1 / b1:>9.2f} {p2 / b2:>9.2f} "
            f"{sess / bs:>10.2f} {dv:>12.4f}"
        )
    for t in ("pass1", "pass2"):
        a, b = runs["ours fp32"].masks[t], base.masks[t]
        print(
            f"{t}: ours fp32 vs reference: {int((a != b).sum())} differing pixels of {a.size}; "
            f"foreground fraction {b.mean():.3f}"
        )
        print(f"{t}: fast vs ours fp32 Dice {dice(runs['ours fast'].masks[t], a):.4f}")
    gflop, rate = fp32_floor(fp32, vol, args.threads)
    floor_ms = 1000 * gflop / rate
    b1 = 1000 * base.times["pass1"] / base.frames["pass1"]
    print(f"fp32 floor: {gflop:.1f} GFLOP per tracked frame at {rate:.0f} GFLOP/s (fp32 GEMM on this CPU) = "
          f"{floor_ms:.0f} ms = {floor_ms / b1:.2f}x the reference's pass 1")
    if fast.autocast_dtype is torch.bfloat16:
        rate16 = gemm_rate(torch.bfloat16)
        f1 = 1000 * runs["ours fast"].times["pass1"] / runs["ours fast"].frames["pass1"]
        print(f"bf16 floor: the same FLOPs at {rate16:.0f} GFLOP/s (bf16 GEMM) = {1000 * gflop / rate16:.0f} ms = "
              f"{1000 * gflop / rate16 / b1:.2f}x the reference's pass 1; fast mode runs at "
              f"{gflop / f1 * 1000 / rate16:.0%} of that rate")
    n_fp32, n_fast = states["ours fp32"].encode_count, states["ours fast"].encode_count
    print(f"image encodes: ours fp32 {n_fp32}, fast {n_fast} (the reference re-encodes every frame each pass)")


if __name__ == "__main__":
    main()
