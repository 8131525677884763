"""Bring a backend's latent cache up to date: encode only what is new or changed, resumably, shard by shard."""

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.hashing import row_settings_hash, settings_hash
from hf_assets.cache.shards import list_shards
from hf_assets.data.sources import RawSplit
from hf_assets.encode.cores import prefetch_depth
from hf_assets.encode.drop_records import failure_reason
from hf_assets.encode.engine_types import EncodeReport, EncodeSettings, LatentPlan, LatentSettings, ShardReport
from hf_assets.encode.gpu_decode import DeviceDecoder, plan_decode
from hf_assets.encode.image_source import content_hashes, fetch_windows, iter_images
from hf_assets.encode.images import load_pixels
from hf_assets.encode.latents_commit import commit_latents
from hf_assets.encode.latents_plan import plan_latents
from hf_assets.encode.models import as_dtype
from hf_assets.encode.overlap import BackgroundWrites, HostCopy, in_background, stacked_batches
from hf_assets.encode.prefetch import group_batches, prefetch
from hf_assets.encode.vae import encode_with_oom_backoff
from hf_assets.encode.vae_runner import VaeRunner, runner_for
from hf_assets.progress import ProgressLog, quiet

# Per-sample columns of the bucket table that shape a latent (all hashed into its key). source_width/height is
# the oriented full size the boxes were computed from: an image of another size is dropped, not mis-cropped.
GEOMETRY = [
    "tile_left",
    "tile_top",
    "tile_right",
    "tile_bottom",
    "resize_width",
    "resize_height",
    "crop_left",
    "crop_top",
    "target_width",
    "target_height",
    "source_width",
    "source_height",
]
SLICE_ROWS = 2048


def wanted_latents(
    buckets: pa.Table,
    split: RawSplit,
    image_column: str,
    settings: LatentSettings,
    memo_dir: Path | None = None,
    progress: ProgressLog | None = None,
) -> pa.Table:
    """One row per sample: file name, geometry, content hash of its bytes and hash of every setting that shapes it."""
    rows = buckets.column("row").to_numpy()
    base = settings_hash(settings.key_fields())
    geometry = np.stack([buckets.column(c).to_numpy(zero_copy_only=False) for c in GEOMETRY], axis=1)
    per_row = [row_settings_hash(base, g) for g in geometry.tolist()]
    table = buckets.select(["filename", "row"] + GEOMETRY)
    table = table.append_column("content_hash", content_hashes(split, image_column, rows, memo_dir, progress))
    return table.append_column("settings_hash", pa.array(per_row, pa.string()))


def update_latents(
    wanted: pa.Table,
    split: RawSplit,
    image_column: str,
    vae_loader: Callable[[], torch.nn.Module],
    directory: Path,
    meta: dict,
    settings: EncodeSettings,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    progress: ProgressLog | None = None,
    shards: int = 1,
) -> EncodeReport:
    """Encode the samples of `wanted` the cache lacks, then commit a manifest of all that are present.

    The same three steps a Dagster run spreads over many processes (plan, encode each shard, commit), in one process.
    Samples that cannot be encoded are written to `dropped.parquet` (filename, key, reason). A key whose image
    failed to decode is not tried again by later runs (it is reported dropped with the stored reason); a changed
    image or setting gives a new key, which is tried.
    """
    plan = plan_latents(wanted, directory, shards, log=log)
    reports = [
        encode_shard(plan, shard, split, image_column, vae_loader, settings, log=log, progress=progress)
        for shard in plan.busy_shards
    ]
    return commit_latents(plan, reports, meta, log=log, progress=progress)


def encode_shard(
    plan: LatentPlan,
    shard: int,
    split: RawSplit,
    image_column: str,
    vae_loader: Callable[[], torch.nn.Module],
    settings: EncodeSettings,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    progress: ProgressLog | None = None,
) -> ShardReport:
    """Encode one shard of a plan into the cache, beside the other shards' writers.

    Entries already journaled (by an earlier attempt of this shard) are not encoded again; the VAE is loaded
    only when something is left to encode.
    """
    report = ShardReport(shard=shard, host=socket.gethostname(), pid=os.getpid())
    progress = progress or quiet()
    cache = EncodedCache(plan.cache_dir, prefix="latents", max_bytes=settings.shard_bytes)
    to_encode = plan.shard_rows(shard)
    if to_encode.num_rows:  # what an earlier attempt of this shard flushed (journal only: no shard is read)
        journal = cache.journal_entries()
        flushed = journal.filter(
            pc.is_in(journal.column("shard"), value_set=pa.array(list_shards(cache.shards_dir), pa.string()))
        )
        done = pc.is_in(to_encode.column("key"), value_set=flushed.column("key"))
        report.resumed = pc.sum(done).as_py() or 0
        to_encode = to_encode.filter(pc.invert(done))
    if not to_encode.num_rows:
        return report
    # Fetch window first (each row group of the source is read once), then size (batches of one shape).
    windows = fetch_windows(split, image_column, to_encode.column("row").to_numpy())
    to_encode = to_encode.append_column("fetch_window", pa.array(windows, pa.int64())).sort_by(
        [("fetch_window", "ascending"), ("target_height", "ascending"), ("target_width", "ascending")]
    )
    log(
        f"shard {shard}: encoding {to_encode.num_rows} latents into {plan.cache_dir}"
        + (f" ({report.resumed} already written by an earlier attempt)" if report.resumed else "")
    )
    runner = runner_for(
        vae_loader(), settings.memory_format, settings.compile, settings.batch_size, log, settings.compile_cache
    )
    decoder = DeviceDecoder(runner.device) if settings.decode == "nvjpeg" else None
    report.started = time.time()
    started = time.perf_counter()
    with (
        cache.writer(lane=f"shard-{shard}") as writer,
        progress.step("encode", to_encode.num_rows, unit="images") as step,
    ):
        batches = _batches(to_encode, split, image_column, runner, settings.decode_workers, report.failures, decoder)
        report.encoded += write_latents(batches, runner, as_dtype(settings.latent_dtype), writer, step, log)
    if decoder is not None and decoder.fallbacks:
        log(f"shard {shard}: {decoder.fallbacks} JPEG(s) the GPU could not decode were decoded by Pillow")
    report.seconds = time.perf_counter() - started
    report.finished = time.time()
    return report


def write_latents(
    batches, encode: Callable, latent_dtype: torch.dtype, writer, step, log: Callable[[str], None]
) -> int:
    """Encode each (keys, pixels) batch (`encode` gives (mean, std), halving the batch on out-of-memory) and add
    each key's mean and std, in `latent_dtype`, to `writer`; the number of entries written.

    The results come back to the host without blocking and are written on another thread, so this thread only
    launches work: the device encodes the next batch while the last one is copied and written.
    """

    def write(keys: list[str], tensors: dict[str, torch.Tensor]) -> None:
        mean, std = tensors["mean"], tensors["std"]
        for i, key in enumerate(keys):
            writer.add(key, {"mean": mean[i], "std": std[i]})
        step.advance(len(keys))

    written = 0
    with BackgroundWrites(write) as writes:
        for keys, pixels in batches:
            mean, std = encode_with_oom_backoff(encode, pixels, log)
            writes.put(list(keys), HostCopy({"mean": mean, "std": std}, latent_dtype))
            written += len(keys)
    return written


def _batches(
    to_encode: pa.Table,
    split: RawSplit,
    image_column: str,
    runner: VaeRunner,
    workers: int,
    failures: dict[str, str],
    decoder: DeviceDecoder | None = None,
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """(keys, uint8 images) batches of one target size: decoded ahead on `workers` threads (JPEGs only read there
    when `decoder` decodes them on the device) and stacked on a background thread."""

    def limit(target: tuple[int, int]) -> int:
        return runner.batch_limit(target[1], target[0])

    sizes = to_encode.group_by(["target_width", "target_height"]).aggregate([])
    largest = max(map(limit, zip(*(sizes.column(c).to_pylist() for c in ("target_width", "target_height")))))
    load = _load_for_device if decoder is not None else _load
    items = prefetch(
        _jobs(to_encode, split, image_column), load, workers=workers, max_in_flight=prefetch_depth(largest, workers)
    )
    groups = group_batches(items, lambda job: job[1]["target"], limit, failures, failure_reason, 4 * largest)
    return in_background(stacked_batches(groups, runner.device, decoder, failures, failure_reason))


def _jobs(table: pa.Table, split: RawSplit, image_column: str) -> Iterator[tuple[str, dict, object]]:
    sources = iter_images(split, image_column, table.column("row").to_numpy())  # one stream: reads ahead, once
    for start in range(0, table.num_rows, SLICE_ROWS):
        part = table.slice(start, SLICE_ROWS)
        for record, source in zip(part.to_pylist(), sources):
            geometry = {
                "tile": (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"]),
                "resize": (record["resize_width"], record["resize_height"]),
                "crop": (
                    record["crop_left"],
                    record["crop_top"],
                    record["crop_left"] + record["target_width"],
                    record["crop_top"] + record["target_height"],
                ),
                "target": (record["target_width"], record["target_height"]),
                "source": (record["source_width"], record["source_height"])
                if record["source_width"] is not None and record["source_height"] is not None
                else None,
            }
            yield record["key"], geometry, source


def _load(job) -> np.ndarray:
    _, g, source = job
    return load_pixels(_source_bytes(source), g["tile"], g["resize"], g["crop"], expected_size=g["source"])


def _load_for_device(job):
    """A JPEG's header checked and its bytes kept for the device decoder; any other image decoded by Pillow."""
    _, g, source = job
    return plan_decode(_source_bytes(source), g["tile"], g["resize"], g["crop"], expected_size=g["source"])


def _source_bytes(source) -> bytes:
    if source is None:
        raise ValueError("no image bytes or path")
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()  # a file that cannot be read is retried next run, not a decode failure
    return source
