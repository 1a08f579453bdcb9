"""The fine-tuning loop on the test_tiny model: it learns, it resumes, its output loads strictly."""

import numpy as np
import pytest
import torch

from medsam2.build import build_model
from medsam2.training.data import Case, ClipDataset
from medsam2.training.evaluate import evaluate
from medsam2.training.loop import PromptConfig, TrainConfig, WeightAverage, train
from medsam2.training.optim import OptimConfig


def _blob_case(seed: int) -> Case:
    """A 10x64x64 volume with one bright ellipsoid (+150 HU over noise) as object 1."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:10, :64, :64]
    c = rng.uniform([3, 18, 18], [7, 46, 46])
    r = rng.uniform([2.5, 6, 6], [4, 12, 12])
    d2 = ((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2
    lab = (d2 < 1).astype(np.uint8)
    img = rng.normal(0, 20, lab.shape) + 150 * lab
    return Case(img.astype(np.int16), lab, spacing=(2.0, 1.0, 1.0), name=f"blob{seed}")


def _fast_cfg(**kw) -> TrainConfig:
    base = dict(epochs=1, show_progress=False, prompts=PromptConfig(num_corrections=1),
                optim=OptimConfig(lr_encoder=3e-3, lr_other=3e-3, warmup_steps=10, grad_clip=1.0))
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def _one_thread():
    # the loop is latency-bound on tiny tensors; extra threads only add contention
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_a_short_run_raises_held_out_dice_far_above_its_start(tmp_path):
    torch.manual_seed(0)
    model = build_model("test_tiny")
    held_out = [_blob_case(100 + i) for i in range(3)]
    before = evaluate(model, held_out).mean_dice
    data = ClipDataset([_blob_case(i) for i in range(12)], image_size=64, num_frames=4,
                       clips_per_epoch=120, seed=0)
    result = train(_fast_cfg(), model, data, tmp_path)
    after = evaluate(model, held_out)
    assert result.global_step == 120 and not result.cancelled
    assert before < 0.3
    assert after.mean_dice > 0.75 and after.mean_dice - before > 0.45
    assert after.mean_nsd > 0.75


def _small_run(out_dir, cancel_after=None, raise_after=None, ema_decay=0.0):
    torch.manual_seed(1)
    model = build_model("test_tiny")
    data = ClipDataset([_blob_case(i) for i in range(3)], image_size=64, num_frames=3,
                       clips_per_epoch=5, seed=3)
    count = {"n": 0}

    def progress(epoch, step, loss):
        count["n"] += 1
        if raise_after is not None and count["n"] == raise_after:
            raise KeyboardInterrupt("simulated kill")

    def cancel():
        return cancel_after is not None and count["n"] >= cancel_after

    cfg = _fast_cfg(epochs=2, checkpoint_every=2, ema_decay=ema_decay)
    return model, lambda: train(cfg, model, data, out_dir, progress=progress, should_cancel=cancel)


def test_a_cancelled_run_resumes_and_matches_the_uninterrupted_run(tmp_path):
    ref_model, run = _small_run(tmp_path / "ref")
    ref = run()
    assert ref.global_step == ref.total_steps == 10

    _, run = _small_run(tmp_path / "cut", cancel_after=7)
    cut = run()
    assert cut.cancelled and cut.global_step == 7 and cut.model_path is None

    model, run = _small_run(tmp_path / "cut")  # a fresh process would rebuild the model
    resumed = run()
    assert not resumed.cancelled and resumed.global_step == 10
    assert len(resumed.losses) == 10
    assert np.allclose(resumed.losses, ref.losses, rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(model.state_dict().items(), ref_model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def test_a_run_killed_mid_epoch_restarts_from_its_last_checkpoint(tmp_path):
    _, run = _small_run(tmp_path, raise_after=8)  # dies in epoch 2, after its checkpoint at step 2
    with pytest.raises(KeyboardInterrupt):
        run()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert (state["epoch"], state["step"], len(state["losses"])) == (1, 2, 7)
    _, run = _small_run(tmp_path)
    resumed = run()
    assert resumed.global_step == 10 and len(resumed.losses) == 10


def test_the_trained_model_file_loads_strictly_with_build_model(tmp_path):
    model, run = _small_run(tmp_path)
    result = run()
    payload = torch.load(result.model_path, weights_only=True)
    assert list(payload) == ["model"]
    loaded = build_model("test_tiny", checkpoint=result.model_path)
    for (name, a), b in zip(loaded.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu()), name


def test_the_weight_average_warms_up_then_follows_its_decay():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.zero_()
    avg = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    avg.update()  # warm-up: decay min(0.5, 2/11) -> 0 + (1 - 2/11) * 1
    assert torch.allclose(avg.shadow["weight"], torch.full((1, 2), 9 / 11))
    avg.update()  # min(0.5, 3/12) = 0.25 -> 9/11 + 0.75 * (1 - 9/11)
    assert torch.allclose(avg.shadow["weight"], torch.full((1, 2), 9 / 11 + 0.75 * 2 / 11))


def test_an_averaged_run_resumes_to_the_same_average_and_ships_it(tmp_path):
    ref_model, run = _small_run(tmp_path / "ref", ema_decay=0.9)
    ref = run()
    live = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=False)
    shipped = torch.load(ref.model_path, weights_only=True)["model"]
    name = "sam_mask_decoder.iou_prediction_head.layers.0.weight"
    assert not torch.equal(shipped[name], live["model"][name])  # the average, not the last step
    assert torch.equal(shipped[name], live["ema"]["shadow"][name])

    _, run = _small_run(tmp_path / "cut", cancel_after=7, ema_decay=0.9)
    assert run().cancelled
    model, run = _small_run(tmp_path / "cut", ema_decay=0.9)
    resumed = run()
    assert resumed.global_step == 10
    for (key, a), b in zip(model.state_dict().items(), ref_model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), key


def test_every_checkpoint_is_reported_with_its_global_step_and_a_resume_says_where_it_started(tmp_path):
    torch.manual_seed(1)
    model = build_model("test_tiny")
    data = ClipDataset([_blob_case(i) for i in range(3)], image_size=64, num_frames=3, clips_per_epoch=5, seed=3)
    seen = []
    cfg = _fast_cfg(epochs=2, checkpoint_every=2)
    cut = train(cfg, model, data, tmp_path, should_cancel=lambda: len(seen) >= 3,
                on_checkpoint=lambda path, step: seen.append((path.name, step)))
    assert seen == [("checkpoint.pt", 2), ("checkpoint.pt", 4), ("checkpoint.pt", 5), ("checkpoint.pt", 5)]
    assert cut.cancelled and cut.resumed_from == 0
    resumed = train(cfg, build_model("test_tiny"), data, tmp_path)
    assert resumed.resumed_from == 5 and resumed.global_step == 10
