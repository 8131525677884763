"""The encoding engine: one job for every kind of sample (images, clips), in three steps that any executor can
spread over processes and machines, or that `update` runs in one process:

    plan = engine.plan(backend, buckets, split, encoders, settings, shards)   # what to encode, split into shards
    for shard in plan.busy_shards:                                            # any process, any order
        engine.encode_shard(plan, shard, split, vae_loader)
    report = engine.commit(plan)                                              # one manifest, atomically

The plan is written under the cache and carries everything the other steps need (kind of sample, column,
settings, cache metadata); each shard leaves its report in it. So a shard step needs only the plan, the split and
a VAE, and the commit only the plan: no value has to travel between steps but the plan's location.

Importing this module loads no torch, PyAV or model library (the Dagster definitions import it when they load):
each step imports what it runs.
"""

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa

from hf_assets.config import BackendConfig
from hf_assets.data.row_fetch import fetch_units, is_remote
from hf_assets.data.sources import RawSplit
from hf_assets.encode.engine_types import EncodeReport, EncodeSettings, LatentPlan, ShardReport
from hf_assets.progress import ProgressLog

IMAGE_TYPES = ("image", "conditioning", "eval")  # dataset_types whose samples are images
MEDIA_NAMES = (*IMAGE_TYPES, "video")  # the dataset_types the engine encodes
_log = logging.getLogger(__name__).info


def media_for(dataset_type: str):
    """The kind of sample (`hf_assets.encode.media.Media`) a backend of this dataset_type holds."""
    if dataset_type in IMAGE_TYPES:
        from hf_assets.encode.image_media import IMAGES

        return IMAGES
    if dataset_type == "video":
        from hf_assets.encode.clip_media import CLIPS

        return CLIPS
    raise ValueError(f"dataset_type {dataset_type!r} has no encoder; expected one of {', '.join(MEDIA_NAMES)}")


def media_of(plan: LatentPlan, depth_loader: Callable | None = None):
    """The kind of sample a written plan encodes, rebuilt from its metadata (a conditioning dataset's generator,
    with `depth_loader` giving the depth model of this step's device)."""
    if plan.media == "conditioning":
        from hf_assets.encode.conditioning_media import ConditioningMedia

        return ConditioningMedia.from_meta(plan.meta, depth_loader)
    return media_for(plan.media)


def backend_media(backend: BackendConfig, encoders):
    """The kind of sample `backend` holds: a conditioning dataset's samples (generated from its source's pixels or
    given) are images with their generator and pairing; `encoders` gives the depth model's identity."""
    if backend.conditioning.is_conditioning:
        from hf_assets.encode.conditioning_media import ConditioningMedia

        return ConditioningMedia.for_backend(backend, encoders.depth_identity)
    return media_for(backend.dataset_type)


def plan(
    backend: BackendConfig,
    buckets: pa.Table,
    split: RawSplit,
    encoders,
    settings: EncodeSettings,
    shards: int,
    plan_id: str | None = None,
    progress: ProgressLog | None = None,
    log: Callable[[str], None] = _log,
) -> LatentPlan:
    """Write the plan of bringing `backend`'s latent cache up to its bucket table: every sample keyed by its bytes
    and by every setting that shapes its latent, what the cache lacks split into `shards` by key.

    `encoders` (an `hf_assets.encode.encoder_set.Encoders`) gives the VAE's identity and config; no weights load.
    Raises ValueError, with the fix, when its VAE cannot encode this backend's kind of sample.
    """
    from hf_assets.encode.latents_plan import plan_latents

    media = backend_media(backend, encoders)
    factors = media.factors(encoders)
    keys = settings.latent_settings(encoders.vae_identity())
    column = backend.image_column
    wanted, refused = media.wanted(buckets, split, column, keys, factors, backend.metadata_dir, progress)
    units = None
    if is_remote(split):  # shards of whole row groups: each is fetched by one shard, once
        units = functools.partial(fetch_units, split)
    meta = {
        **factors,
        "vae": keys.vae_identity,
        "model_dtype": keys.model_dtype,
        "latent_dtype": keys.latent_dtype,
        "backend": backend.id,
        "dataset_type": backend.dataset_type,
        **media.meta(),
    }
    return plan_latents(
        wanted,
        backend.vae_dir,
        shards,
        media=media,
        column=column,
        settings=settings,
        meta=meta,
        refused=refused,
        plan_id=plan_id,
        log=log,
        units=units,
        memo_dir=backend.metadata_dir,
    )


def encode_shard(
    plan: LatentPlan,
    shard: int,
    split: RawSplit,
    vae_loader: Callable,
    progress: ProgressLog | None = None,
    log: Callable[[str], None] = _log,
    depth_loader: Callable | None = None,
) -> ShardReport:
    """Encode shard `shard` of a written plan into its cache, reading samples from `split`; `vae_loader` gives the
    VAE (on the device this shard uses), called only when something is left to encode, and `depth_loader` the
    depth model of a depth conditioning dataset (`Encoders.depth`), called on its first batch."""
    from hf_assets.encode.latents_shard import encode_shard as encode_plan_shard

    return encode_plan_shard(plan, shard, split, vae_loader, media_of(plan, depth_loader), log, progress)


def commit(
    plan: LatentPlan,
    progress: ProgressLog | None = None,
    log: Callable[[str], None] = _log,
    reports: Iterable[ShardReport] | None = None,
) -> EncodeReport:
    """Merge what the plan's shards wrote into the cache's manifest atomically, record drops, remove the plan;
    `reports` default to those the shard steps left in the plan."""
    from hf_assets.encode.latents_commit import commit_latents

    return commit_latents(plan, media_of(plan), log, progress, reports)


def update(
    backend: BackendConfig,
    buckets: pa.Table,
    split: RawSplit,
    encoders,
    settings: EncodeSettings,
    shards: int = 1,
    progress: ProgressLog | None = None,
    log: Callable[[str], None] = _log,
) -> EncodeReport:
    """plan, every shard and commit in this process, with `encoders`' VAE (and depth model)."""
    written = plan(backend, buckets, split, encoders, settings, shards, progress=progress, log=log)
    return run_plan(written, split, encoders.vae, progress, log, encoders.depth)


def update_latents(
    wanted: pa.Table,
    split: RawSplit,
    column: str,
    vae_loader: Callable,
    directory: Path,
    meta: dict,
    settings: EncodeSettings,
    media=None,
    refused: dict[str, str] | None = None,
    shards: int = 1,
    log: Callable[[str], None] = _log,
    progress: ProgressLog | None = None,
) -> EncodeReport:
    """Bring the cache at `directory` up to `wanted` (rows keyed by `media.wanted`) in this process: plan, encode
    every shard, commit with metadata `meta`. Samples that cannot be encoded are written to `dropped.parquet`
    (filename, key, reason); a key whose sample failed to decode is not tried again by later runs (it is reported
    dropped with the stored reason), while a changed sample or setting gives a new key, which is tried. `media`
    defaults to images."""
    from hf_assets.encode.latents_plan import plan_latents

    written = plan_latents(
        wanted,
        directory,
        shards,
        media=media or media_for("image"),
        column=column,
        settings=settings,
        meta=meta,
        refused=refused,
        log=log,
    )
    return run_plan(written, split, vae_loader, progress, log)


def run_plan(
    written: LatentPlan,
    split: RawSplit,
    vae_loader: Callable,
    progress: ProgressLog | None = None,
    log: Callable[[str], None] = _log,
    depth_loader: Callable | None = None,
) -> EncodeReport:
    """Encode every busy shard of a written plan, then commit it, in this process."""
    reports = [encode_shard(written, k, split, vae_loader, progress, log, depth_loader) for k in written.busy_shards]
    return commit(written, progress, log, reports)
