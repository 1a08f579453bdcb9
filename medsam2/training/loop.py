"""Fine-tuning loop with resumable checkpoints.

``train`` runs epochs over a :class:`~medsam2.training.data.ClipDataset`-like object (indexable,
with ``set_epoch``) and writes ``out_dir/checkpoint.pt`` after every epoch and, optionally, every
``checkpoint_every`` steps. The checkpoint holds model, optimiser, scheduler, the torch RNG state,
the weight average (with ``ema_decay``) and the (epoch, step) position; data and prompts are
drawn from seeds derived from ``(seed, epoch, step)``, so a run killed at any point and restarted
with the same arguments resumes where its last checkpoint stopped and ends after the same total
number of steps. The final weights (the average, with ``ema_decay``) go to ``out_dir/model.pt``
in the official ``{"model": state_dict}`` format.

Several devices or nodes: launch one process per device with ``torchrun`` and call
:func:`medsam2.training.distributed.init_from_env` first; each step's clips are then shared among the
processes and their gradients averaged (see that module), so N processes train as one process that
averages N x ``clips_per_step`` clips a step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from medsam2.modeling.sam2_base import SAM2Base
from medsam2.training.distributed import DataParallel
from medsam2.training.evaluate import clear_inference_caches
from medsam2.training.forward import clip_forward
from medsam2.training.losses import LossWeights, step_loss
from medsam2.training.optim import OptimConfig, build_optimizer, cosine_schedule
from medsam2.training.prompts import plan_prompts

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"


class TrainingCancelled(Exception):
    """Raised internally when ``should_cancel`` answers True; ``train`` returns normally."""


@dataclass(frozen=True)
class PromptConfig:
    prob_mask: float = 0.5
    max_cond_frames: int = 2
    max_correct_frames: int = 2
    num_corrections: int = 7
    prob_click_from_gt: float = 0.1
    click_centre_prob: float = 0.0  # corrections at the centre of the largest error (else uniform)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run (stored in its checkpoint).

    ``epochs`` x ``len(train_data)`` steps of one clip each.
    """

    epochs: int = 10
    seed: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    checkpoint_every: int = 0  # steps; 0 = only at epoch ends
    # clips whose gradients are averaged into one step (per process: with a process group of N, a
    # step sees N x clips_per_step clips)
    clips_per_step: int = 1
    # > 0: keep an exponential moving average of the weights (decay per step, warmed up as
    # min(decay, (1 + step) / (10 + step))) and leave it in the model at the end; from scratch it
    # smooths out the last steps' noise, which otherwise moves held-out Dice by several points
    ema_decay: float = 0.0
    device: str = "cpu"
    resume: bool = True
    show_progress: bool = True


@dataclass
class TrainResult:
    global_step: int
    total_steps: int
    epoch: int
    cancelled: bool
    losses: list[float]
    model_path: Path | None
    checkpoint_path: Path
    wall_seconds: float
    cpu_seconds: float
    resumed_from: int = 0  # the global step the run started at (0 unless it resumed a checkpoint)


ProgressFn = Callable[[int, int, float], Any]


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63 - 1)


def _save_final(model: torch.nn.Module, path: Path) -> None:
    from medsam2.build import save_checkpoint

    save_checkpoint(model, path)


class WeightAverage:
    """Exponential moving average of a model's floating-point parameters and buffers.

    Bound to the model's tensors at construction (``load_state_dict`` copies into them in place,
    so a resume keeps the binding); ``update`` is one fused lerp over all of them.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        live = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self._names = list(live)
        self._live = list(live.values())
        self.shadow = {k: v.detach().clone() for k, v in live.items()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_([self.shadow[k] for k in self._names], self._live, 1.0 - d)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.shadow, strict=False)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)


def train(cfg: TrainConfig, model: SAM2Base, train_data: Any, out_dir: str | Path,
          progress: ProgressFn | None = None, should_cancel: Callable[[], bool] | None = None,
          on_checkpoint: Callable[[Path, int], Any] | None = None) -> TrainResult:
    """Train ``model`` in place; see the module docstring for checkpoint/resume semantics.

    Args:
        train_data: indexable of :class:`~medsam2.training.data.Clip` with ``len`` = steps per
            epoch and ``set_epoch(epoch)``.
        progress: called after every step with (epoch, step in epoch, loss); may raise to abort.
        should_cancel: polled before every step; True -> checkpoint and return ``cancelled``.
        on_checkpoint: called with (checkpoint path, global step) after every checkpoint is written,
            e.g. to copy it to storage that outlives the machine.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    device = torch.device(cfg.device)
    model.to(device)
    clear_inference_caches(model)  # the model may have been used for inference before
    group = DataParallel.current()
    lead = group.rank == 0  # writes checkpoints and the model, reports progress
    clips_per_step = max(1, cfg.clips_per_step) * group.world
    steps_per_epoch = len(train_data) // clips_per_step
    if steps_per_epoch <= 0 or cfg.epochs <= 0:
        raise ValueError("need at least one epoch of at least one step")
    total = cfg.epochs * steps_per_epoch
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = cosine_schedule(optimizer, total, cfg.optim.final_ratio, cfg.optim.warmup_steps)
    epoch, step, losses = 0, 0, []
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        epoch, step, losses = state["epoch"], state["step"], list(state["losses"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
    resumed_from = epoch * steps_per_epoch + step
    group.broadcast_parameters(model)

    def checkpoint(ep: int, st: int) -> None:
        if not lead:
            return
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                      "epoch": ep, "step": st, "losses": losses,
                      "ema": ema.state_dict() if ema is not None else None,
                      "config": dataclasses.asdict(cfg)}, ckpt_path)
        if on_checkpoint is not None:
            on_checkpoint(ckpt_path, ep * steps_per_epoch + st)

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def clip_loss(clip: Any, seed: int) -> torch.Tensor:
        """The loss of one clip, its prompts drawn from ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        images, masks = clip.images.to(device), clip.masks.to(device)
        visible = masks.flatten(2).any(2).all(0)  # (T,) every object shows
        frames_with_obj = [int(t) for t in torch.nonzero(visible).flatten()]
        pc = cfg.prompts
        plan = plan_prompts(images.shape[0], frames_with_obj, gen, pc.prob_mask, pc.max_cond_frames,
                            pc.max_correct_frames, pc.num_corrections, first=getattr(clip, "start", 0))
        with autocast:
            outs = clip_forward(model, images, masks, plan, gen, pc.prob_click_from_gt, pc.click_centre_prob)
            return sum((step_loss(o.multimasks, o.ious, o.obj_logits, masks[:, o.frame], float(masks.shape[0]),
                                  cfg.loss)["total"] for o in outs), torch.zeros((), device=device))
    params = [p for p in model.parameters() if p.requires_grad]
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    bar = tqdm(total=total, initial=epoch * steps_per_epoch + step, disable=not (cfg.show_progress and lead),
               desc="train", unit="step")
    cancelled = False
    model.train()
    try:
        while epoch < cfg.epochs:
            train_data.set_epoch(epoch)
            while step < steps_per_epoch:
                if group.any(should_cancel is not None and lead and should_cancel()):
                    raise TrainingCancelled
                optimizer.zero_grad(set_to_none=True)
                # this process's clips of the step: the same global clip indices (and so the same clips,
                # prompts and seeds) whatever the number of processes
                first = step * clips_per_step + group.rank * (clips_per_step // group.world)
                value, learned = 0.0, False
                for index in range(first, first + clips_per_step // group.world):
                    loss = clip_loss(train_data[index], _step_seed(cfg.seed, epoch, index))
                    if loss.requires_grad:  # a clip may (rarely) carry no supervised prediction
                        (loss / cfg.clips_per_step).backward()
                        learned = True
                    value += float(loss.detach()) / cfg.clips_per_step
                learned = group.all_reduce_gradients(params, learned)
                value = group.mean(value)
                if learned:
                    if cfg.optim.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
                    optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update()
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss became {value} at epoch {epoch} step {step}")
                losses.append(value)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", epoch=epoch)
                if progress is not None and lead:
                    progress(epoch, step, value)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < steps_per_epoch:
                    checkpoint(epoch, step)
            epoch, step = epoch + 1, 0
            checkpoint(epoch, step)
    except TrainingCancelled:
        checkpoint(epoch, step)
        cancelled = True
    finally:
        bar.close()
    if ema is not None:
        ema.copy_to(model)  # the checkpoint above keeps the live weights for a resume
    model_path = None
    if not cancelled:
        model_path = out / MODEL_NAME
        if lead:
            _save_final(model, model_path)
        group.barrier()  # the other processes return once the model file exists
    return TrainResult(global_step=epoch * steps_per_epoch + step, total_steps=total, epoch=epoch,
                       cancelled=cancelled, losses=losses, model_path=model_path, checkpoint_path=ckpt_path,
                       wall_seconds=time.perf_counter() - t_wall, cpu_seconds=time.process_time() - t_cpu,
                       resumed_from=resumed_from)
