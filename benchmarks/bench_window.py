"""medsam2.window.apply on a 512x512 int16 CT slice (slope 2, intercept -1024): the lookup table that
int16 arrays take vs the float64 formula it is built from (the same bytes), ms per slice.

    python benchmarks/bench_window.py [--repeat 200]
"""

import argparse
import time

import numpy as np

import medsam2.window as one_window


def per_slice_ms(fn, repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    stored = np.random.default_rng(0).integers(-1024, 2000, size=(512, 512)).astype(np.int16)
    win = one_window.PRESETS["abdomen"]
    table = per_slice_ms(lambda: one_window.apply(stored, win, 2.0, -1024.0), args.repeat)
    one_window._LUT_MIN_VALUES = 1 << 40
    formula = per_slice_ms(lambda: one_window.apply(stored, win, 2.0, -1024.0), args.repeat)
    print(f"lookup table: {table:.2f} ms/slice   float64 formula: {formula:.2f} ms/slice   ({formula / table:.1f}x)")


if __name__ == "__main__":
    main()
