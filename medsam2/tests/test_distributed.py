"""Two CPU processes on the gloo backend train in step with one process on the same clips."""

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medsam2.build import build_model
from medsam2.configs import get_config
from medsam2.training.data import Case, ClipDataset
from medsam2.training.loop import PromptConfig, TrainConfig, train
from medsam2.training.optim import OptimConfig

STEPS = 4


def _case(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:6, :64, :64]
    c, r = rng.uniform([2, 20, 20], [4, 44, 44]), rng.uniform([2, 7, 7], [3, 11, 11])
    lab = ((((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2) < 1).astype(np.uint8)
    return Case((rng.normal(0, 20, lab.shape) + 150 * lab).astype(np.int16), lab, spacing=(2.0, 1.0, 1.0))


def _run(out_dir, clips_per_step: int):
    """test_tiny without dropout (its randomness is per process), 4 steps of 2 clips each in all."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model(get_config("test_tiny").with_overrides(memory_dropout=0.0))
    data = ClipDataset([_case(i) for i in range(3)], image_size=64, num_frames=2, clips_per_epoch=2 * STEPS, seed=1)
    cfg = TrainConfig(epochs=1, show_progress=False, clips_per_step=clips_per_step,
                      prompts=PromptConfig(num_corrections=1),
                      optim=OptimConfig(lr_encoder=3e-3, lr_other=3e-3, grad_clip=1.0))
    result = train(cfg, model, data, out_dir)
    return result, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, port: int, out_dir: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        result, state = _run(out_dir, clips_per_step=1)  # each process: 1 clip a step, 2 in all
        results[rank] = (result.global_step, result.losses, state)
    finally:
        dist.destroy_process_group()


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.reshape(-1).double() for v in state.values() if v.is_floating_point()])


@pytest.mark.slow
def test_two_gloo_processes_stay_in_step_with_one_process_averaging_the_same_clips(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(port, str(tmp_path / "ddp"), results), nprocs=2, join=True)
    torch.manual_seed(0)
    start = _flat(build_model(get_config("test_tiny").with_overrides(memory_dropout=0.0)).state_dict())
    single, state = _run(tmp_path / "one", clips_per_step=2)
    assert single.global_step == STEPS
    # the two replicas are identical: they applied the same averaged gradient at every step
    (steps0, losses0, state0), (steps1, losses1, state1) = results[0], results[1]
    assert steps0 == steps1 == STEPS and losses0 == losses1
    assert all(torch.equal(state0[name], state1[name]) for name in state0)
    # and they moved as the single process did: the same losses, and weights that differ by float
    # summation order only (under 1% of the distance the weights travelled)
    np.testing.assert_allclose(losses0, single.losses, rtol=1e-4, atol=1e-5)
    travelled = _flat(state) - start
    assert travelled.norm() > 0.1
    assert (_flat(state0) - _flat(state)).norm() < 0.01 * travelled.norm()
    assert (tmp_path / "ddp" / "model.pt").exists()  # written once, by process 0
