"""Box -> key-slice mask latency of the predictor on CPU: cold, warm and pre-encoded (not a test).

- cold: build the model from its checkpoint, start a session, box on the key slice (load + first encode);
- warm: the model is loaded, a new case: session + box (one slice encoded);
- pre-encoded: the key slice and its neighbours were encoded while the case was open: box only.
Then a correction click on a tracked slice (decoder only). p50 of --repeats runs each.

    python benchmarks/bench_first_mask.py [--config bootstrap_s] [--checkpoint FILE] [--threads 2]

Without --checkpoint, bootstrap_s uses the shipped weights and other configs random weights (the
timing is the architecture's). The synthetic CT volume is --slices x --size x --size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="bootstrap_s")
    p.add_argument("--checkpoint", default="")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--slices", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    import torch

    from medsam2.build import build_model, save_checkpoint
    from medsam2.predictor import VolumePredictor
    from medsam2.synthetic import make_ct_volume
    from medsam2.weights import bootstrap_checkpoint_path

    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint
    if not checkpoint and args.config == "bootstrap_s":
        checkpoint = str(bootstrap_checkpoint_path())
    if not checkpoint:
        torch.manual_seed(0)
        checkpoint = str(Path(tempfile.mkdtemp()) / f"{args.config}.pt")
        save_checkpoint(build_model(args.config), checkpoint)
    vol = make_ct_volume(seed=3, shape=(args.slices, args.size, args.size), n_lesions=1)
    lesion = vol.lesions[0].label
    key, box = vol.key_slice(lesion), list(vol.box(lesion))

    def first_mask(predictor, state):
        return predictor.add_prompt(state, key, 1, box=box)

    cold, warm, pre, click = [], [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        predictor = VolumePredictor(build_model(args.config, checkpoint), fast=True)
        state = predictor.init_state(vol.image, modality="CT")
        first_mask(predictor, state)
        cold.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        state = predictor.init_state(vol.image, modality="CT")
        first_mask(predictor, state)
        warm.append(time.perf_counter() - t0)

        state = predictor.init_state(vol.image, modality="CT")
        for f in (key - 1, key, key + 1):  # what opening the case asks the worker to encode
            predictor._features(state, f)
        t0 = time.perf_counter()
        first_mask(predictor, state)
        pre.append(time.perf_counter() - t0)

        for _res in predictor.propagate(state, "forward", start_frame=key, max_frames=2):
            pass
        ys, xs = (vol.labels[key + 1] == lesion).nonzero()
        t0 = time.perf_counter()
        predictor.add_prompt(state, key + 1, 1, points=[[float(xs.mean()), float(ys.mean())]], labels=[1])
        click.append(time.perf_counter() - t0)

    def p50(v: list[float]) -> str:
        return f"{statistics.median(v) * 1000:8.1f} ms"

    shape = f"{args.slices}x{args.size}x{args.size}"
    print(f"{args.config} on CPU, {args.threads} thread(s), {shape} CT, p50 of {args.repeats}")
    print(f"  box -> key-slice mask, cold (load + encode): {p50(cold)}")
    print(f"  box -> key-slice mask, warm (encode):        {p50(warm)}")
    print(f"  box -> key-slice mask, pre-encoded:          {p50(pre)}")
    print(f"  click on a tracked slice -> its mask:        {p50(click)}")


if __name__ == "__main__":
    main()
