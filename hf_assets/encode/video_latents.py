"""Bring a video backend's latent cache up to date: trim each clip to the VAE's frame rule, encode only new or changed
clips, batched by (target size, frame count), resumably; bad clips are dropped with a reason and the run goes on."""

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.hashing import row_settings_hash, settings_hash
from hf_assets.data.sources import RawSplit
from hf_assets.data.video_frames import latent_frames, trim_to_rule
from hf_assets.encode.drop_records import earlier_decode_failures, save_drops
from hf_assets.encode.drop_records import failure_reason as image_failure_reason
from hf_assets.encode.engine_types import EncodeReport, EncodeSettings, LatentSettings
from hf_assets.encode.image_source import content_hashes, iter_images
from hf_assets.encode.latents_update import GEOMETRY, write_latents
from hf_assets.encode.models import as_dtype
from hf_assets.encode.prefetch import group_batches, prefetch
from hf_assets.encode.video_frames import CorruptVideo, FramePlan, load_clip
from hf_assets.encode.video_vae import clips_to_tensor, encode_clips, prepare_video_vae
from hf_assets.progress import ProgressLog, quiet

VIDEO_FORMAT = 1
DECODE_FAILURE = "corrupt_video"  # a clip that does not decode: not retried until its bytes, settings or decoder change
DECODER = f"PyAV {av.__version__} (FFmpeg {'.'.join(map(str, av.library_versions.get('libavcodec', ())))})"
SLICE_ROWS = 512


def wanted_video_latents(
    buckets: pa.Table,
    split: RawSplit,
    column: str,
    settings: LatentSettings,
    factors: dict,
    tiled: bool,
    memo_dir: Path | None = None,
    progress: ProgressLog | None = None,
) -> pa.Table:
    """One row per clip to cache: geometry, num_frames after the VAE's rule, latent_frames, fps, content and settings
    hashes. Every clip of the bucket table is kept: min_frames and max_frames chose the source clips at scan time
    (each has at least one frame), and a clip's `frames` trimmed to the VAE's rule still has at least one."""
    k = int(factors["temporal_downscale"])
    chosen = buckets.column("frames").to_numpy(zero_copy_only=False).astype(np.int64)
    if chosen.size and chosen.min() < 1:
        raise ValueError("a video bucket table holds a clip of no frame; the scan drops those (too_few_frames)")
    frames = trim_to_rule(chosen, k)
    base = settings_hash({**asdict(settings), "video_format": VIDEO_FORMAT, "tiled": tiled, "start_frame": 0})
    geometry = np.stack([buckets.column(c).to_numpy(zero_copy_only=False) for c in GEOMETRY] + [frames], axis=1)
    per_row = [row_settings_hash(base, g) for g in geometry.tolist()]
    fps = buckets.column("fps") if "fps" in buckets.column_names else pa.nulls(buckets.num_rows, pa.float32())
    out = buckets.select(["filename", "row"] + GEOMETRY)
    out = out.append_column("num_frames", pa.array(frames.astype(np.int32), pa.int32()))
    out = out.append_column("latent_frames", pa.array(latent_frames(frames, k).astype(np.int32), pa.int32()))
    out = out.append_column("fps", pc.cast(fps, pa.float32()))
    rows = out.column("row").to_numpy()
    out = out.append_column("content_hash", content_hashes(split, column, rows, memo_dir, progress))
    return out.append_column("settings_hash", pa.array(per_row, pa.string()))


def update_video_latents(
    wanted: pa.Table,
    split: RawSplit,
    column: str,
    vae_loader: Callable[[], torch.nn.Module],
    directory: Path,
    meta: dict,
    settings: EncodeSettings,
    tiled: bool = True,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    progress: ProgressLog | None = None,
) -> EncodeReport:
    """Encode the clips of `wanted` the cache lacks, then commit a manifest of all present; drops go to
    dropped.parquet (filename, key, reason)."""
    progress = progress or quiet()
    report = EncodeReport()
    dropped_keys: dict[str, str | None] = {}
    unreadable = pc.equal(wanted.column("content_hash"), "")
    for name in wanted.filter(unreadable).column("filename").to_pylist():
        report.dropped[name] = "unreadable_video: no clip bytes or file"
        dropped_keys[name] = None
    cache = EncodedCache(directory, prefix="latents", max_bytes=settings.shard_bytes)
    readable = cache.with_keys(wanted.filter(pc.invert(unreadable)))
    to_encode, reused = cache.plan(readable)
    report.reused = reused.num_rows
    failures = earlier_decode_failures(directory, log, DECODER, DECODE_FAILURE)
    known_bad = pc.is_in(to_encode.column("key"), pa.array(list(failures), pa.string()))
    failures = {k: failures[k] for k in to_encode.filter(known_bad).column("key").to_pylist()}
    to_encode = to_encode.filter(pc.invert(known_bad))
    if to_encode.num_rows:
        to_encode = to_encode.sort_by(
            [("target_height", "ascending"), ("target_width", "ascending"), ("num_frames", "ascending")]
        )
        log(f"encoding {to_encode.num_rows} clip(s) ({reused.num_rows} reused) into {directory}")
        vae = vae_loader()
        prepare_video_vae(vae, tiled)
        started = time.perf_counter()
        with cache.writer() as writer, progress.step("encode", to_encode.num_rows, unit="clips") as step:
            batches = _batches(to_encode, split, column, settings.batch_size, settings.decode_workers, failures)
            stacked = (([key for key, _ in b], clips_to_tensor([clip for _, clip in b], vae)) for b in batches)
            latent_dtype = as_dtype(settings.latent_dtype)
            report.encoded += write_latents(stacked, lambda x: encode_clips(vae, x), latent_dtype, writer, step, log)
        report.encode_seconds = time.perf_counter() - started
    is_bad = pc.is_in(readable.column("key"), pa.array(list(failures), pa.string()))
    bad = readable.filter(is_bad)
    for name, key in zip(bad.column("filename").to_pylist(), bad.column("key").to_pylist()):
        report.dropped[name] = failures[key]
        dropped_keys[name] = key
    with progress.step("commit", unit="entries") as step:
        result = cache.commit(readable.filter(pc.invert(is_bad)), meta)
        step.advance(result.manifest.table.num_rows)
    save_drops(directory, report.dropped, dropped_keys, "clips", DECODER, DECODE_FAILURE)
    report.size_bytes = result.size_bytes
    return report


def failure_reason(error: BaseException) -> str:
    """A clip's drop reason: `corrupt_video` when it does not decode (not retried), else retried next run."""
    return image_failure_reason(error, CorruptVideo, DECODE_FAILURE)


def _batches(
    to_encode: pa.Table, split: RawSplit, column: str, batch_size: int, workers: int, failures: dict[str, str]
) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Decoded clips in batches of one (target size, frame count), decoded ahead on worker threads."""
    items = prefetch(_jobs(to_encode, split, column), _load, workers=workers, max_in_flight=max(batch_size, workers))
    return group_batches(items, _clip_shape, batch_size, failures, failure_reason)


def _clip_shape(job) -> tuple[int, int, int]:
    """(width, height, frames) of a clip job's encoded tensor: clips of one shape stack."""
    plan = job[1]
    return plan.crop[2] - plan.crop[0], plan.crop[3] - plan.crop[1], plan.count


def _jobs(table: pa.Table, split: RawSplit, column: str) -> Iterator[tuple[str, FramePlan, object]]:
    for start in range(0, table.num_rows, SLICE_ROWS):
        part = table.slice(start, SLICE_ROWS)
        sources = iter_images(split, column, part.column("row").to_numpy())
        for r, source in zip(part.to_pylist(), sources):
            plan = FramePlan(
                start=0,
                count=r["num_frames"],
                resize=(r["resize_width"], r["resize_height"]),
                crop=(
                    r["crop_left"],
                    r["crop_top"],
                    r["crop_left"] + r["target_width"],
                    r["crop_top"] + r["target_height"],
                ),
                source=(r["source_width"], r["source_height"]),
            )
            yield r["key"], plan, source


def _load(job) -> np.ndarray:
    _, plan, source = job
    if source is None:
        raise CorruptVideo("no clip bytes or path")
    return load_clip(source, plan)


def video_factors_for(models) -> dict:
    """The video VAE factors of an `Encoders` (config, plus LTX's stored statistics), without loading weights."""
    from hf_assets.encode.model_files import resolve_root
    from hf_assets.encode.video_vae import video_vae_factors

    path, sub, setting = models.vae_source
    root = resolve_root(path, setting).path
    folder = root / sub if sub and (root / sub).is_dir() else root
    return video_vae_factors(models.vae_config(), folder)


def video_shape_mismatches(manifest: pa.Table, channels: int, downscale: int):
    """A `verify.Finding` of entries whose mean/std shape is not (C, latent_frames, target_h / f, target_w / f)."""
    from hf_assets.cache.verify import Finding

    finding = Finding()
    columns = ["filename", "tensor_names", "shapes", "latent_frames", "target_width", "target_height"]
    for r in manifest.select(columns).to_pylist():
        expected = [channels, r["latent_frames"], r["target_height"] // downscale, r["target_width"] // downscale]
        for name, shape in zip(r["tensor_names"], r["shapes"]):
            if list(shape) != expected:
                finding.add(f"{r['filename']}:{name} {list(shape)} != {expected}")
    return finding
