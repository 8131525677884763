"""Columnar extract_captions + drop_reasons against a per-row Python loop, on 1,000,000 generated rows.

Run: .venv/bin/python -m bench.bench_captions_filters [--rows N] [--repeats K]
"""

import argparse
import os
import time

import numpy as np
import pyarrow as pa

from bench.machine import cpu_model
from hf_assets.config.schema import BucketConfig, CaptionConfig, FilterConfig
from hf_assets.data.captions import extract_captions
from hf_assets.data.filters import drop_reasons

WORDS = np.array(
    ["a red barn at dusk", "  portrait of a woman ", "", " ", "oil on canvas", "snowy peak\n", "cat", None],
    dtype=object,
)
CAPTIONS = CaptionConfig(columns=("metadata.caption", "tags"), fallback_column="alt_text")
FILTERS = FilterConfig(
    quality_thresholds={"clip_score": 0.3, "aesthetic_score": 5.0},
    collection=("photo", "artwork"),
    min_width=512,
    min_height=512,
)
BUCKETS = BucketConfig(resolution_type="pixel_area", minimum_image_size=768)


def generated_table(num_rows: int, seed: int = 0) -> tuple[pa.Table, pa.Array, pa.Array]:
    """A hub-like metadata table (nested caption, list captions, quality struct, collection) and sizes."""
    rng = np.random.default_rng(seed)
    caption = pa.array(WORDS[rng.integers(0, len(WORDS), num_rows)], pa.string())
    metadata = pa.StructArray.from_arrays(
        [caption, pa.array(rng.random(num_rows))],
        names=["caption", "score"],
        mask=pa.array(rng.random(num_rows) < 0.05),
    )
    lengths = rng.integers(0, 4, num_rows)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    tags = pa.ListArray.from_arrays(
        offsets, pa.array(WORDS[rng.integers(0, len(WORDS), int(lengths.sum()))], pa.string())
    )
    quality = pa.StructArray.from_arrays(
        [pa.array(rng.uniform(0.1, 0.5, num_rows)), pa.array(rng.uniform(3.0, 8.0, num_rows))],
        names=["clip_score", "aesthetic_score"],
        mask=pa.array(rng.random(num_rows) < 0.03),
    )
    labels = np.array(["photo", "artwork", "meme", "screenshot", None], dtype=object)
    table = pa.table(
        {
            "metadata": metadata,
            "tags": tags,
            "alt_text": pa.array(WORDS[rng.integers(0, len(WORDS), num_rows)], pa.string()),
            "quality_assessment": quality,
            "collection": pa.array(labels[rng.integers(0, len(labels), num_rows)], pa.string()),
        }
    )
    widths = pa.array(rng.integers(200, 3000, num_rows), pa.int32(), mask=rng.random(num_rows) < 0.01)
    heights = pa.array(rng.integers(200, 3000, num_rows), pa.int32(), mask=rng.random(num_rows) < 0.01)
    return table, widths, heights


def columnar(table: pa.Table, widths: pa.Array, heights: pa.Array) -> tuple[pa.ListArray, pa.Array, float, float]:
    """The project's code path: both steps, each timed."""
    start = time.perf_counter()
    captions = extract_captions(table, CAPTIONS)
    mid = time.perf_counter()
    reasons = drop_reasons(table, widths=widths, heights=heights, captions=captions, filters=FILTERS, buckets=BUCKETS)
    end = time.perf_counter()
    return captions, reasons, mid - start, end - mid


def python_loop(table: pa.Table, widths: pa.Array, heights: pa.Array) -> tuple[list, list, float, float]:
    """The same rules per row, after to_pylist (the to_pylist cost is counted in each step)."""
    start = time.perf_counter()
    metadata, tags, alt = (table.column(n).to_pylist() for n in ("metadata", "tags", "alt_text"))
    captions = []
    for meta, row_tags, fallback in zip(metadata, tags, alt):
        primary = [(meta or {}).get("caption")] + list(row_tags or [])
        variants = [v.strip() for v in primary if v is not None and v.strip()]
        if not variants and fallback is not None and fallback.strip():
            variants = [fallback.strip()]
        captions.append(variants)
    mid = time.perf_counter()
    quality, collection = table.column("quality_assessment").to_pylist(), table.column("collection").to_pylist()
    minimum_area = BUCKETS.minimum_image_size**2
    reasons = []
    for w, h, scores, label, variants in zip(widths.to_pylist(), heights.to_pylist(), quality, collection, captions):
        if w is None or h is None:
            reason = "unreadable_image"
        elif w < FILTERS.min_width or h < FILTERS.min_height or w * h < minimum_area:
            reason = "too_small"
        elif any((scores or {}).get(m) is None or scores[m] < t for m, t in FILTERS.quality_thresholds.items()):
            reason = "quality"
        elif label not in FILTERS.collection:
            reason = "collection"
        elif not variants:
            reason = "no_caption"
        else:
            reason = None
        reasons.append(reason)
    end = time.perf_counter()
    return captions, reasons, mid - start, end - mid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="columnar runs; the best is reported")
    args = parser.parse_args()

    table, widths, heights = generated_table(args.rows)
    runs = [columnar(table, widths, heights) for _ in range(args.repeats)]
    captions, reasons = runs[0][0], runs[0][1]
    fast = (min(r[2] for r in runs), min(r[3] for r in runs))
    py_captions, py_reasons, *slow = python_loop(table, widths, heights)
    assert captions.to_pylist() == py_captions, "caption results differ from the per-row baseline"
    assert reasons.to_pylist() == py_reasons, "drop reasons differ from the per-row baseline"

    print(
        f"rows: {args.rows:,}   CPU: {cpu_model()}   cores: {os.cpu_count()}   "
        f"pyarrow {pa.__version__}   numpy {np.__version__}"
    )
    print(f"kept: {reasons.null_count:,}   variants: {len(captions.values):,}   results identical to baseline: yes")
    header = f"{'step':<18}{'columnar s':>12}{'rows/s':>14}{'python s':>12}{'rows/s':>14}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    for name, f, s in (
        ("extract_captions", fast[0], slow[0]),
        ("drop_reasons", fast[1], slow[1]),
        ("both", sum(fast), sum(slow)),
    ):
        print(f"{name:<18}{f:>12.3f}{args.rows / f:>14,.0f}{s:>12.3f}{args.rows / s:>14,.0f}{s / f:>9.1f}x")


if __name__ == "__main__":
    main()
