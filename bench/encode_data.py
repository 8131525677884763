"""The encode benchmark's data: photo-like JPEGs in a Hub-style Parquet dataset, bucketed by the real code path."""

import concurrent.futures
import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from examples import demo_images

DEFAULT_WORK_DIR = Path(__file__).resolve().parent / "out" / "encode"  # generated data, models and runs
DATA_VERSION = 2  # 2: pictures from examples/demo_images.py (crops of a real photograph)
ASPECTS = (0.5, 9 / 16, 2 / 3, 0.75, 0.8, 1.0, 1.0, 1.25, 4 / 3, 1.5, 16 / 9, 2.0)
ROTATED = 6  # EXIF orientation of one image in four: stored turned, shown upright


class Prepared(NamedTuple):
    """A bench backend opened through the real config parser, filtered index and bucketing."""

    backend: object
    split: object
    buckets: object


class ImageSpec(NamedTuple):
    width: int  # as shown, after EXIF orientation
    height: int
    orientation: int | None


def image_specs(n: int, resolution: int, seed: int) -> list[ImageSpec]:
    """Varied aspects at 1.0-1.6x the target area; one image in four stored rotated under an EXIF orientation."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        aspect = float(ASPECTS[i % len(ASPECTS)]) * float(rng.uniform(0.97, 1.03))
        area = resolution * resolution * float(rng.uniform(1.0, 1.6))
        width, height = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        specs.append(ImageSpec(width, height, ROTATED if i % 4 == 3 else None))
    return specs


def photo_jpeg(spec: ImageSpec, seed: int, quality: int = 90) -> bytes:
    """A JPEG of a crop of a real photograph (the shared generator), stored for its EXIF orientation."""
    picture = demo_images.photo(np.random.default_rng(seed), spec.width, spec.height)
    stored = demo_images.stored_for_orientation(picture, spec.orientation)
    return demo_images.encode(stored, "JPEG", quality=quality, exif_orientation=spec.orientation)


def bench_dataset(n: int, resolution: int, seed: int, work_dir: Path, log: Callable[[str], None]) -> Path:
    """A Hub-style Parquet dataset of n distinct JPEGs, generated once under work_dir/data."""
    folder = work_dir / "data" / f"photos-v{DATA_VERSION}-r{resolution}-n{n}-s{seed}"
    if (folder / "DONE").is_file():
        return folder
    import datasets

    log(f"generating {n} JPEGs of about {resolution}x{resolution}..{int(resolution * 1.26)}^2 px in {folder}")
    started = time.perf_counter()
    specs = image_specs(n, resolution, seed)
    with concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        blobs = list(pool.map(lambda i: photo_jpeg(specs[i], seed * 100_003 + i), range(n)))
    rows = [
        {
            "image": {"bytes": blob, "path": None},
            "width": s.width,
            "height": s.height,
            "caption": f"a photo of item {i}",
        }
        for i, (blob, s) in enumerate(zip(blobs, specs))
    ]
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "caption": datasets.Value("string"),
        }
    )
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    dataset = datasets.Dataset.from_list(rows, features=features)
    total = sum(map(len, blobs))
    shards = max(1, math.ceil(total / (256 << 20)))
    for k in range(shards):
        part = dataset.shard(shards, k, contiguous=True)
        part.to_parquet(str(tmp / "data" / f"train-{k:05d}-of-{shards:05d}.parquet"))
    (tmp / "DONE").write_text(json.dumps({"images": n, "bytes": total}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    log(f"dataset ready in {time.perf_counter() - started:.1f}s ({total / n / 1024:.0f} KiB/image)")
    return folder


def prepare(run_dir: Path, data: Path, resolution: int, aspect: str) -> Prepared:
    """Backend, split and bucket table through the real config parser, filtered index and bucketing."""
    from hf_assets.config.loader import parse_config
    from hf_assets.data.buckets import assign_buckets
    from hf_assets.data.index import build_filtered_index
    from hf_assets.data.sources import open_split

    entry = {
        "id": "bench",
        "type": "huggingface",
        "dataset_name": str(data),
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "caption_column": "caption",
        "width_column": "width",
        "height_column": "height",
        "resolution": resolution,
        "resolution_type": "pixel_area",
        "crop": True,
        "crop_aspect": "square" if aspect == "square" else "preserve",
        "crop_style": "center",
        "aspect_bucket_alignment": 64,
    }
    config = run_dir / "dataloader.json"  # written, so that worker processes can load the same backend
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps([entry]))
    backend = parse_config([entry], config).backends[0]
    split = open_split(backend)
    index, _ = build_filtered_index(split, backend)
    return Prepared(backend, split, assign_buckets(index, backend.buckets, backend.id))


def target_sizes(buckets) -> Counter:
    """How many samples each (target_width, target_height) has."""
    widths, heights = buckets.column("target_width").to_pylist(), buckets.column("target_height").to_pylist()
    return Counter(zip(widths, heights))


def size_summary(buckets) -> str:
    """'512x512: 10, 448x576: 3, ...', most samples first."""
    return ", ".join(f"{w}x{h}: {n}" for (w, h), n in target_sizes(buckets).most_common())


def batch_fill(buckets, batch: int) -> str:
    """How full the encoder's batches are: one target size per batch, so each size ends in a partial batch."""
    counts = target_sizes(buckets).values()
    batches = sum(math.ceil(n / batch) for n in counts)
    full = sum(n // batch for n in counts)
    fill = buckets.num_rows / (batches * batch) if batches else 0.0
    return f"{batches} batches ({full} full, {len(counts)} target sizes), mean fill {fill:.0%}"
