"""Data-parallel training over ``torch.distributed``: several devices or nodes, launched the standard way.

Launch one process per device with ``torchrun`` (``torchrun --nproc-per-node 4 your_script.py``, or
``--nnodes`` across machines); each process calls :func:`init_from_env` and then
:func:`medsam2.training.loop.train` as a single process would. The loop asks :meth:`DataParallel.current`
for the group: every process takes its share of each step's clips (the same global clip indices, prompts
and seeds as a single process that averages all of them, ``TrainConfig.clips_per_step``), the gradients are
averaged across processes (one all-reduce of the flattened gradients per step, as DDP's reducer does), and
every process applies the same update, so the replicas stay in step. Process 0 writes the checkpoints and
the final model and reports progress; a cancel seen by process 0 stops every process at the same step.
NCCL on CUDA, gloo on CPU. Without an initialised process group everything is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DataParallel", "init_from_env"]


def init_from_env() -> DataParallel:
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT); a plain single process (no WORLD_SIZE) gets the trivial group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return DataParallel.current()


@dataclass(frozen=True)
class DataParallel:
    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> DataParallel:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        return self.world > 1

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Every process starts from process 0's weights and buffers."""
        if self.active:
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, 0)

    def all_reduce_gradients(self, params: list[torch.nn.Parameter], learned: bool) -> bool:
        """Average the gradients of ``params`` over the processes (missing ones count as zero); True when
        any process learned something this step (then every process steps its optimiser)."""
        if not self.active:
            return learned
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [torch.tensor([float(learned)], device=grads[0].device)])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset : offset + n].view_as(g).clone()
            offset += n
        return bool(flat[-1] > 0)

    @staticmethod
    def _device() -> torch.device:
        """Where collectives of plain numbers live: NCCL reduces CUDA tensors only."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def mean(self, value: float) -> float:
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._device())
        dist.all_reduce(t)
        return float(t) / self.world

    def any(self, flag: bool) -> bool:
        """True on every process when ``flag`` is True on any (process 0 decides a cancel for all)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self._device())
        dist.all_reduce(t)
        return bool(t > 0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()
