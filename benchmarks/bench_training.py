"""Training throughput of the fine-tuning loop on CPU: seconds per clip step, wall and CPU.

    python benchmarks/bench_training.py --config bootstrap_s --frames 8 --steps 20 --threads 1

Prints one line per setting; the bootstrap budget (10 CPU minutes) divided by the CPU seconds
per step is the number of steps a bootstrap run can afford.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="bootstrap_s")
    p.add_argument("--frames", type=int, nargs="+", default=[4, 8])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--corrections", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from medsam2.build import build_model
    from medsam2.training.bootstrap import synthetic_cases
    from medsam2.training.data import ClipDataset
    from medsam2.training.loop import PromptConfig, TrainConfig, train

    cases = synthetic_cases(0, 4, 5, "bench")
    for frames in args.frames:
        model = build_model(args.config)
        data = ClipDataset(cases, model.image_size, num_frames=frames, max_objects=5,
                           clips_per_epoch=args.steps, seed=0)
        cfg = TrainConfig(epochs=1, show_progress=False, prompts=PromptConfig(num_corrections=args.corrections))
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            r = train(cfg, model, data, out)
            wall = time.perf_counter() - t
        print(f"{args.config} frames={frames} threads={args.threads} steps={r.global_step}: "
              f"{r.wall_seconds / r.global_step:.3f} s/step wall, {r.cpu_seconds / r.global_step:.3f} s/step CPU "
              f"(total {wall:.1f} s incl. checkpointing)")


if __name__ == "__main__":
    main()
