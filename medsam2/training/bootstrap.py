"""Bootstrap model: ``bootstrap_s`` trained from scratch on synthetic CT lesions on a CPU.

The app and CLI fall back to this checkpoint when no MedSAM2 checkpoint is configured, so a
fresh install can annotate synthetic data end to end without downloading weights. The run is
fully determined by its seed; the metadata JSON written next to the weights records the config,
seed, hyper-parameters, the steps done, wall and CPU time and the held-out metrics.

From-scratch deviations from the fine-tuning recipe (all passed as arguments, the recipe's
defaults stay untouched): a single higher lr with warm-up and no layer decay (there is nothing
pretrained to protect), one correction click (more clips per CPU minute), prompts boxed three
times in four, three clips in four starting on the lesion's largest slice (the evaluation's and
an annotator's first box; the clip then runs past the lesion's end, which teaches the
object-score head to stop), and a zoom augmentation that shows lesions up to twice their size
(small lesions give a weak learning signal from scratch); half of the steps are single
slices (SAM2 mixes still images into video training), which train box -> mask at a fraction
of a clip's cost. Clips are 4 slices (more steps per CPU minute than 8, and 8-slice clips
gave loss spikes from scratch); half of them are prompted on an inner slice and tracked
forward then backward, as the predictor propagates (without these, backward propagation
after a forward pass came out empty); the prompt encoder's Fourier frequencies are doubled.
All three candidate masks of a tracked frame are trained on the object (SAM2 trains the best
one, which let the decoder hedge with three salient blobs instead of following the object), and
frames where the object is absent also train the mask towards empty (with the object score
alone, masks ran on over lesion-free slices). The ``bootstrap_s`` config also feeds the box and
the previous frame's mask as dense prompts (``box_mask_prompt``, ``track_mask_prompt``): from
scratch, these take the place of what corner codes and memory attention learn only slowly.
The shipped weights are an exponential moving average of the last ~1000 steps' weights (decay
0.999): on the same runs it raised held-out Dice by 0.01-0.06 and made it depend less on where
the run happened to stop. Before training, 100 steps of a throwaway copy are timed and the run
plans no more steps than fit 85% of the CPU cap, so a slower CPU trains fewer steps but still
ends its learning-rate schedule (6765 of 7000 on a 2-core Zen 5). The held-out set has 16
phantoms (48 lesions): with 6, two runs of similar quality differed by up to 0.09 in mean Dice.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from medsam2.configs import get_config
from medsam2.modeling.sam2_base import SAM2Base
from medsam2.training.clicks import evaluate_clicks
from medsam2.training.data import AugmentConfig, Case, ClipDataset
from medsam2.training.evaluate import evaluate
from medsam2.training.loop import PromptConfig, TrainConfig, train
from medsam2.training.losses import LossWeights
from medsam2.training.optim import OptimConfig
from medsam2.weights import BOOTSTRAP_CONFIG as CONFIG_NAME
from medsam2.weights import bootstrap_checkpoint_path, bootstrap_metadata_path

__all__ = ["BootstrapConfig", "bootstrap_checkpoint_path", "bootstrap_metadata_path", "run_bootstrap",
           "synthetic_cases"]

WEIGHTS_DIR = bootstrap_checkpoint_path().parent
WEIGHTS_NAME = bootstrap_checkpoint_path().name
METADATA_NAME = bootstrap_metadata_path().name
VOLUME_SHAPE = (32, 128, 128)
TARGET_DICE = 0.8  # what the bootstrap is meant to reach on held-out synthetic lesions


@dataclass(frozen=True)
class BootstrapConfig:
    seed: int = 0
    steps: int = 7000
    # cap on the training's CPU time (this process, evaluation excluded); with one thread that is
    # its wall time on an idle machine, and it stays meaningful on a shared one
    max_cpu_minutes: float = 10.0
    train_cases: int = 32
    train_lesions: int = 5
    val_cases: int = 16  # 48 lesions: 6 cases (18) moved the mean by +-0.04 between similar runs
    val_lesions: int = 3
    val_seed: int = -1  # seed of the held-out phantoms; -1: seed + 10000 (a fine-tune keeps its parent's)
    num_frames: int = 4
    key_slice_prob: float = 0.75
    single_frame_prob: float = 0.5
    mid_clip_prob: float = 0.5
    tail_prob: float = 0.0  # clips prompted on an object's last slices that run past its end
    # multiplies the prompt encoder's random Fourier frequencies (a buffer saved with the
    # weights): from scratch, sharper position codes let box corners tell small lesions apart
    pe_scale: float = 2.0
    obj_weight: float = 1.0  # object-score BCE weight (the recipe's 1; its head decides when to stop)
    # train all three candidate masks of tracked frames (multimask output) on the object, not
    # just the best: the best-of-3 loss lets the decoder ignore the memory
    all_candidates: bool = True
    # weight of the mask loss (target empty) on frames where the object is absent (SAM2: 0)
    absent_mask: float = 1.0
    max_objects: int = 5
    lr: float = 1e-3
    warmup_steps: int = 100
    grad_clip: float = 0.1
    zoom_prob: float = 0.5
    prob_mask: float = 0.25
    num_corrections: int = 1
    max_correct_frames: int = 2  # frames of a box-prompted clip that get correction clicks
    click_centre_prob: float = 0.0  # share of correction clicks at the centre of the largest error
    # a checkpoint to continue from instead of random weights ("" = from scratch): the click
    # fine-tune starts from the shipped model (its Fourier scale is in the weights, pe_scale is
    # then not applied again)
    init_from: str = ""
    ema_decay: float = 0.999  # > 0: ship an exponential moving average of the weights
    threads: int = 1  # the step is latency-bound: more threads mostly add contention
    # time a few steps first and plan no more steps than fit 85% of the CPU cap, so that a slower
    # CPU still finishes the cosine schedule (a run cut by the cap ends at a high learning rate)
    fit_steps_to_cap: bool = True


def val_seed(cfg: BootstrapConfig) -> int:
    """Seed of the held-out phantoms (disjoint from the training phantoms' seed stream)."""
    return cfg.val_seed if cfg.val_seed >= 0 else cfg.seed + 10_000


def synthetic_cases(seed: int, n: int, n_lesions: int, prefix: str) -> list[Case]:
    """CT phantoms of the default field of view at ``VOLUME_SHAPE`` (lesions 5-25 mm)."""
    from medsam2.synthetic import DEFAULT_CT_SHAPE, DEFAULT_CT_SPACING, make_ct_volume

    sz, sy, sx = (float(s0 * n0 / n1) for s0, n0, n1 in zip(DEFAULT_CT_SPACING, DEFAULT_CT_SHAPE,
                                                             VOLUME_SHAPE, strict=True))
    spacing = (sz, sy, sx)
    cases = []
    for i in range(n):
        case_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        vol = make_ct_volume(case_seed, shape=VOLUME_SHAPE, n_lesions=n_lesions, spacing=spacing)
        cases.append(Case(image=vol.image, labels=vol.labels, spacing=vol.spacing, modality="CT",
                          name=f"{prefix}{i}"))
    return cases


CALIBRATION_STEPS = 100  # clips cost 1-4 frames: 40 steps misjudged a run's mean step by 18%
CAP_SHARE = 0.85  # of the CPU cap that the planned steps may take
PLAN_NAME = "plan.json"


def _planned_steps(cfg: BootstrapConfig, model: SAM2Base, clips: Callable[[int], ClipDataset],
                   tcfg: TrainConfig, work: Path) -> tuple[int, float | None]:
    """(steps to train, measured CPU ms per step or None): ``cfg.steps`` or fewer, so the run fits the cap.

    The first call times ``CALIBRATION_STEPS`` steps of a throwaway copy of the model (torch's RNG
    is restored, so the real run is the same as without calibration) and writes the plan into
    ``work``; a resumed run reads it back, so its schedule never changes under it.
    """
    plan_path = work / PLAN_NAME
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
        return int(plan["steps"]), plan["cpu_ms_per_step"]
    steps, per_step = cfg.steps, None
    if cfg.fit_steps_to_cap and cfg.steps > CALIBRATION_STEPS:
        rng = torch.get_rng_state()
        with tempfile.TemporaryDirectory() as tmp:
            probe = train(dataclasses.replace(tcfg, show_progress=False), copy.deepcopy(model),
                          clips(CALIBRATION_STEPS), tmp)
        torch.set_rng_state(rng)
        per_step = 1000 * probe.cpu_seconds / CALIBRATION_STEPS
        steps = max(1, min(cfg.steps, int(CAP_SHARE * cfg.max_cpu_minutes * 60_000 / per_step)))
    work.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps({"steps": steps, "cpu_ms_per_step": per_step}))
    return steps, per_step


def run_bootstrap(out_dir: str | Path = WEIGHTS_DIR, cfg: BootstrapConfig = BootstrapConfig(),
                  work_dir: str | Path | None = None, show_progress: bool = True) -> dict:
    """Train, evaluate and write ``bootstrap_s.pt`` + ``bootstrap_s.json`` into ``out_dir``.

    ``work_dir`` holds the resumable training checkpoint (default: a per-seed folder in the
    system temp dir, so that nothing but the two results lands in ``out_dir``);
    rerunning with the same arguments after a kill resumes there. Returns the metadata dict.
    """
    from medsam2.build import build_model, file_sha256, save_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir()) / f"medsam2_bootstrap_{cfg.seed}"
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    model = build_model(CONFIG_NAME, checkpoint=cfg.init_from or None)
    init_sha = file_sha256(Path(cfg.init_from)) if cfg.init_from else None
    if cfg.pe_scale != 1.0 and not cfg.init_from:
        with torch.no_grad():
            model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.mul_(cfg.pe_scale)
    # train and validation phantoms come from disjoint seed streams
    train_cases = synthetic_cases(cfg.seed, cfg.train_cases, cfg.train_lesions, "train")
    val_cases = synthetic_cases(val_seed(cfg), cfg.val_cases, cfg.val_lesions, "val")

    def clips(n: int) -> ClipDataset:
        return ClipDataset(train_cases, model.image_size, num_frames=cfg.num_frames, max_objects=cfg.max_objects,
                           clips_per_epoch=n, seed=cfg.seed,
                           augment=AugmentConfig(zoom_prob=cfg.zoom_prob), key_slice_prob=cfg.key_slice_prob,
                           single_frame_prob=cfg.single_frame_prob, mid_clip_prob=cfg.mid_clip_prob,
                           tail_prob=cfg.tail_prob)

    tcfg = TrainConfig(
        epochs=1, seed=cfg.seed, show_progress=show_progress, checkpoint_every=100, ema_decay=cfg.ema_decay,
        prompts=PromptConfig(prob_mask=cfg.prob_mask, num_corrections=cfg.num_corrections,
                             max_correct_frames=cfg.max_correct_frames,
                             click_centre_prob=cfg.click_centre_prob),
        loss=LossWeights(obj=cfg.obj_weight, all_candidates=cfg.all_candidates, absent_mask=cfg.absent_mask),
        optim=OptimConfig(lr_encoder=cfg.lr, lr_other=cfg.lr, layer_decay=1.0, warmup_steps=cfg.warmup_steps,
                          grad_clip=cfg.grad_clip),
    )
    steps, step_cpu_ms = _planned_steps(cfg, model, clips, tcfg, work)
    data = clips(steps)
    t0 = time.process_time()
    result = train(tcfg, model, data, work,
                   should_cancel=lambda: time.process_time() - t0 > cfg.max_cpu_minutes * 60)
    weights = out / WEIGHTS_NAME
    save_checkpoint(model, weights)
    t_eval = time.perf_counter()
    scores = evaluate(model, val_cases, tolerance_mm=2.0, show_progress=show_progress)
    clicks = evaluate_clicks(model, val_cases).summary()
    meta = {
        "config": CONFIG_NAME,
        "image_size": model.image_size,
        "model_config": json.loads(json.dumps(asdict(get_config(CONFIG_NAME)))),  # tuples as lists
        "parameters": sum(p.numel() for p in model.parameters()),
        "seed": cfg.seed,
        "bootstrap": asdict(cfg),
        "init_from_sha256": init_sha,
        "steps_done": result.global_step,
        "steps_planned": result.total_steps,
        "calibration_cpu_ms_per_step": step_cpu_ms,
        "stopped_by_cpu_cap": result.cancelled,
        "train_wall_seconds": round(result.wall_seconds, 1),
        "train_cpu_seconds": round(result.cpu_seconds, 1),
        "eval_wall_seconds": round(time.perf_counter() - t_eval, 1),
        "final_loss_mean_last_100": float(np.mean(result.losses[-100:])) if result.losses else None,
        "validation": {"protocol": "box from ground truth on key slice, propagate both ways",
                       "seed": val_seed(cfg),
                       "cases": cfg.val_cases, "volume_shape": list(VOLUME_SHAPE),
                       "mean_dice": scores.mean_dice, "mean_nsd_2mm": scores.mean_nsd,
                       "target_dice": TARGET_DICE, "meets_target": bool(scores.mean_dice >= TARGET_DICE),
                       "per_case": scores.per_case()},
        "clicks": {"protocol": "one click at the centre of the largest error region of the worst slice of a "
                              "propagated lesion (medsam2.training.clicks)", **clicks},
        "sha256": file_sha256(weights),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {torch.get_num_threads()} thread(s)",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / METADATA_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return meta
