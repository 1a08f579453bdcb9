"""Time the synthetic data generator and the intensity mapping (prints figures; no pass/fail).

    python benchmarks/bench_synthetic.py [--repeat 3]

The demo loader, the tests and the bootstrap training all call the generator, so it should stay well
under a second per default-size case on a 2-core machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from medsam2.preprocessing import to_model_input, to_uint8
from medsam2.synthetic import (
    make_ct_volume,
    make_echo_video,
    make_endoscopy_video,
    make_lesion_training_pairs,
    make_mr_volume,
)


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ct = make_ct_volume(0)
    cases = [
        ("make_ct_volume (48,256,256), 3 lesions", lambda: make_ct_volume(1)),
        ("make_mr_volume (48,256,256), 3 lesions", lambda: make_mr_volume(1)),
        ("make_lesion_training_pairs 4 x (32,128,128)", lambda: make_lesion_training_pairs(1, 4)),
        ("make_echo_video 32 x 224x224", lambda: make_echo_video(1)),
        ("make_endoscopy_video 32 x 224x224", lambda: make_endoscopy_video(1)),
        ("to_uint8 CT (48,256,256)", lambda: to_uint8(ct.image, "CT")),
        ("to_uint8 MR (48,256,256)", lambda: to_uint8(ct.image.astype(np.float32) + 1024, "MR")),
        ("to_model_input 48 x 256 -> 512", lambda: to_model_input(to_uint8(ct.image, "CT"), 512)),
    ]
    for name, fn in cases:
        print(f"{name:48s} {_best(fn, args.repeat) * 1000:8.1f} ms (best of {args.repeat})")


if __name__ == "__main__":
    main()
