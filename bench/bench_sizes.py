"""Header-only size reads vs full Pillow decodes of the same in-memory 1024x1024 JPEGs.

Run: .venv/bin/python -m bench.bench_sizes [--n 200] [--repeats 3]
"""

import argparse
import io
import os
import platform
import time

import pyarrow as pa
from PIL import Image

from bench.machine import cpu_model
from examples.demo_images import encode_image
from hf_assets.data.header_sizes import image_size, image_sizes


def best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` wall-clock runs of fn()."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def full_decode(data: bytes) -> None:
    """Decode every pixel, as a trainer that learns sizes via `dataset[i]` does."""
    Image.open(io.BytesIO(data)).convert("RGB")


def main() -> None:
    """Generate the images, time each method in this process, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of 1024x1024 JPEGs")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; the fastest is reported")
    args = parser.parse_args()

    started = time.perf_counter()
    images = [
        encode_image(1024, 1024, "JPEG", seed=i, exif_orientation=(6 if i % 4 == 0 else None)) for i in range(args.n)
    ]
    column = pa.array(images, type=pa.binary())
    cores = os.cpu_count() or 1
    mean_kb = sum(map(len, images)) / len(images) / 1024
    print(
        f"cpu: {cpu_model()}; cores: {cores}; python {platform.python_version()}; "
        f"Pillow {Image.__version__}; pyarrow {pa.__version__}"
    )
    print(
        f"{args.n} JPEGs 1024x1024, mean {mean_kb:.0f} KiB, generated in {time.perf_counter() - started:.1f} s; "
        f"best of {args.repeats} runs\n"
    )

    methods = {
        "full decode (open + convert RGB)": lambda: [full_decode(d) for d in images],
        "image_size (header only)": lambda: [image_size(d) for d in images],
        "image_sizes, Arrow column, 1 thread": lambda: image_sizes(column, threads=1),
        f"image_sizes, Arrow column, {cores} threads": lambda: image_sizes(column, threads=cores),
    }
    seconds = {name: best_seconds(fn, args.repeats) for name, fn in methods.items()}
    decode = seconds["full decode (open + convert RGB)"]
    print(f"{'method':<42}{'us/image':>12}{'images/s':>12}{'speed-up':>10}")
    for name, total in seconds.items():
        per_image = total / args.n
        print(f"{name:<42}{per_image * 1e6:>12.1f}{1 / per_image:>12.0f}{decode / total:>9.1f}x")


if __name__ == "__main__":
    main()
