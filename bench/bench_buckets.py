"""Bucketing cost per 1M rows: the SimpleTuner-parity `assign_buckets` against the one it replaced, side by side.

The baseline is `bench/_buckets_before.py`, the module as it was before the parity work (commit dfd5935),
run in the same process on the same generated index. Settings cover the common cases.

Run: .venv/bin/python bench/bench_buckets.py [--rows N] [--repeats K]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _buckets_before as before
from bench.machine import cpu_model
from hf_assets.config.schema import BucketConfig
from hf_assets.data import buckets as after

BUCKETS = (0.5, 0.75, 1.0, 1.33, 1.5, 1.78)
SETTINGS = {
    "pixel_area 1024, no crop": BucketConfig(resolution=1024, resolution_type="pixel_area"),
    "pixel 1024, square centre crop": BucketConfig(
        resolution=1024, resolution_type="pixel", crop=True, crop_aspect="square", crop_style="center"
    ),
    "area 1.0, closest, random crop": BucketConfig(
        resolution=1.0, resolution_type="area", crop=True, crop_aspect="closest", crop_aspect_buckets=BUCKETS
    ),
    "pixel_area 1024, random aspect + crop": BucketConfig(
        resolution=1024, resolution_type="pixel_area", crop=True, crop_aspect="random", crop_aspect_buckets=BUCKETS
    ),
}


def generated_index(num_rows: int, seed: int = 0) -> pa.Table:
    """A filtered index of photo-like sizes: common camera aspects plus a long tail, 256..8000 px."""
    rng = np.random.default_rng(seed)
    common = np.array([[4032, 3024], [3024, 4032], [6000, 4000], [1920, 1080], [1080, 1920], [1024, 1024]])
    pick = rng.integers(0, len(common), num_rows)
    scale = rng.uniform(0.2, 1.3, num_rows)
    w = (common[pick, 0] * scale).astype(np.int64)
    h = (common[pick, 1] * scale).astype(np.int64)
    tail = rng.random(num_rows) < 0.3
    w[tail], h[tail] = rng.integers(256, 8000, tail.sum()), rng.integers(256, 8000, tail.sum())
    rows = np.arange(num_rows)
    return pa.table(
        {
            "filename": pa.array([f"{r}.jpg" for r in range(num_rows)]),
            "row": rows,
            "width": pa.array(w, pa.int32()),
            "height": pa.array(h, pa.int32()),
        }
    )


def interleaved_best(first, second, repeats: int) -> tuple[float, float]:
    """Best wall time of each of two callables, run alternately so that machine load hits both alike."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((first, second)):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    index = generated_index(args.rows)
    per_m = 1_000_000 / args.rows
    print(f"assign_buckets on {args.rows:,} rows, best of {args.repeats}, run alternately (seconds per 1M rows)\n")
    print("| settings | before (dfd5935) | after (SimpleTuner parity) | after / before |")
    print("|---|---|---|---|")
    for name, cfg in SETTINGS.items():
        before.assign_buckets(index.slice(0, 1000), cfg, "bench")  # warm imports and caches
        after.assign_buckets(index.slice(0, 1000), cfg, "bench")
        t_before, t_after = interleaved_best(
            lambda c=cfg: before.assign_buckets(index, c, "bench"),
            lambda c=cfg: after.assign_buckets(index, c, "bench"),
            args.repeats,
        )
        t_before, t_after = t_before * per_m, t_after * per_m
        print(f"| {name} | {t_before:.3f} | {t_after:.3f} | {t_after / t_before:.2f} |")
    versions = f"numpy {np.__version__}, pyarrow {pa.__version__}"
    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} cores (shared), {versions}")


if __name__ == "__main__":
    main()
