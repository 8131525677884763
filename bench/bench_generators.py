"""What each conditioning generator adds to a sample's decode: generator time beside the decode, resize and crop
the encoder does anyway (the baseline), on the same photographs, in this process.

Run: .venv/bin/python -m bench.bench_generators [--n 24] [--size 1024] [--repeats 3]
"""

import argparse
import io
import os
import platform

import numpy as np
from PIL import Image

from bench.bench_sizes import best_seconds
from bench.machine import cpu_model
from examples.demo_images import photo
from hf_assets.config.conditioning_generators import parse_conditioning_entry
from hf_assets.encode.generators import generate, sample_rng
from hf_assets.encode.images import load_pixels

GENERATORS = {
    "canny": {"type": "canny"},
    "superresolution": {"type": "superresolution"},
    "jpeg_artifacts": {"type": "jpeg_artifacts"},
    "random_masks": {"type": "random_masks"},
    "sdr (logc3)": {"type": "logc3_sdr"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="photographs")
    parser.add_argument("--size", type=int, default=1024, help="the square crop each is resized to")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; the fastest is reported")
    args = parser.parse_args()
    jpegs = []
    for i in range(args.n):  # 1.5x the crop, so the baseline decodes and resizes as a real sample does
        out = io.BytesIO()
        photo(np.random.default_rng(i), args.size * 3 // 2, args.size * 3 // 2).convert("RGB").save(out, "JPEG")
        jpegs.append(out.getvalue())
    edge = args.size
    crops = [load_pixels(j, resize_wh=(edge, edge), crop_box=(0, 0, edge, edge)) for j in jpegs]
    print(f"cpu: {cpu_model()}; cores: {os.cpu_count()}; python {platform.python_version()}; one thread")
    print(f"{args.n} photographs, decoded from {edge * 3 // 2}² JPEG and resized to {edge}²; best of {args.repeats}\n")
    baseline = best_seconds(
        lambda: [load_pixels(j, resize_wh=(edge, edge), crop_box=(0, 0, edge, edge)) for j in jpegs], args.repeats
    )
    per = baseline / args.n * 1000
    print(
        f"| step | ms per image | vs decode + resize |\n|---|---|---|\n| decode + LANCZOS resize (baseline) | "
        f"{per:.1f} | 1.00 |"
    )
    for label, spec in GENERATORS.items():
        entry, problems = parse_conditioning_entry(spec, "bench")
        assert not problems, problems
        gen = entry.generator
        seconds = best_seconds(
            lambda gen=gen: [generate(gen, c, sample_rng("bench", f"{i}.jpg", gen)) for i, c in enumerate(crops)],
            args.repeats,
        )
        print(f"| {label} | {seconds / args.n * 1000:.1f} | {seconds / baseline:.2f} |")


if __name__ == "__main__":
    Image.MAX_IMAGE_PIXELS = None
    main()
