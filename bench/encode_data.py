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
import pyarrow as pa
import pyarrow.parquet as pq

from examples import demo_images

DEFAULT_WORK_DIR = Path(__file__).resolve().parent / "out" / "encode"  # generated data, models and runs
DATA_VERSION = 3  # 2: pictures from examples/demo_images.py (crops of a real photograph); 3: written by pyarrow
ASPECTS = (0.5, 9 / 16, 2 / 3, 0.75, 0.8, 1.0, 1.0, 1.25, 4 / 3, 1.5, 16 / 9, 2.0)
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # a Hub Image column
SCHEMA = pa.schema(
    [("image", IMAGE), ("width", pa.int32()), ("height", pa.int32()), ("caption", pa.string())],
    metadata={  # what `datasets` writes: readers that look for the Image feature find it
        "huggingface": json.dumps(
            {
                "info": {
                    "features": {
                        "image": {"_type": "Image"},
                        "width": {"dtype": "int32", "_type": "Value"},
                        "height": {"dtype": "int32", "_type": "Value"},
                        "caption": {"dtype": "string", "_type": "Value"},
                    }
                }
            }
        )
    },
)
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


def image_specs(
    n: int, resolution: int, seed: int, aspects: tuple[float, ...] = ASPECTS, jitter: float = 0.03
) -> list[ImageSpec]:
    """Aspects taken in turn (each off by up to `jitter`, relative) at 1.0-1.6x the target area; one image in four
    stored rotated under an EXIF orientation."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        aspect = float(aspects[i % len(aspects)]) * float(rng.uniform(1 - jitter, 1 + jitter))
        area = resolution * resolution * float(rng.uniform(1.0, 1.6))
        width, height = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        specs.append(ImageSpec(width, height, ROTATED if i % 4 == 3 else None))
    return specs


def photo_jpeg(spec: ImageSpec, seed: int, quality: int = 90) -> bytes:
    """A JPEG of a crop of a real photograph (the shared generator), stored for its EXIF orientation."""
    picture = demo_images.photo(np.random.default_rng(seed), spec.width, spec.height)
    stored = demo_images.stored_for_orientation(picture, spec.orientation)
    return demo_images.encode(stored, "JPEG", quality=quality, exif_orientation=spec.orientation)


def bench_dataset(
    n: int,
    resolution: int,
    seed: int,
    work_dir: Path,
    log: Callable[[str], None],
    aspects: tuple[float, ...] = ASPECTS,
    jitter: float = 0.03,
) -> Path:
    """A Hub-style Parquet dataset of n distinct JPEGs, generated once under work_dir/data (pyarrow only)."""
    tag = "" if tuple(aspects) == ASPECTS else "-a" + "_".join(f"{a:.3g}" for a in aspects)
    tag += "" if jitter == 0.03 else f"-j{jitter:g}"
    folder = work_dir / "data" / f"photos-v{DATA_VERSION}-r{resolution}-n{n}-s{seed}{tag}"
    if (folder / "DONE").is_file():
        return folder
    log(f"generating {n} JPEGs of about {resolution}x{resolution}..{int(resolution * 1.26)}^2 px in {folder}")
    started = time.perf_counter()
    specs = image_specs(n, resolution, seed, tuple(aspects), jitter)
    with concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        blobs = list(pool.map(lambda i: photo_jpeg(specs[i], seed * 100_003 + i), range(n)))
    table = pa.table(
        {
            "image": pa.array([{"bytes": blob, "path": None} for blob in blobs], IMAGE),
            "width": pa.array([s.width for s in specs], pa.int32()),
            "height": pa.array([s.height for s in specs], pa.int32()),
            "caption": pa.array([f"a photo of item {i}" for i in range(n)], pa.string()),
        },
        schema=SCHEMA,
    )
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    total = sum(map(len, blobs))
    shards = max(1, math.ceil(total / (256 << 20)))
    rows_per_shard = math.ceil(n / shards)
    for k in range(shards):
        part = table.slice(k * rows_per_shard, rows_per_shard)
        pq.write_table(part, tmp / "data" / f"train-{k:05d}-of-{shards:05d}.parquet", row_group_size=64)
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
