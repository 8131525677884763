"""A backend's bucket table from its filtered index: what the `aspect_buckets` asset stores, as one function, so a
conditioning dataset can rebuild its source's table exactly (the same index, config and seeds give the same table)."""

from dataclasses import dataclass, field

import pyarrow as pa

from hf_assets.config.schema import BackendConfig
from hf_assets.data.buckets import assign_buckets, drop_by_aspect_ratio, drop_small_buckets, small_buckets
from hf_assets.data.lineage import carry, row_names
from hf_assets.data.video_frames import assign_frames


@dataclass(frozen=True)
class BackendBuckets:
    """The bucket table and what bucketing dropped or found short."""

    table: pa.Table
    aspect_dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows (minimum/maximum_aspect_ratio)
    undersized: dict[str, int] = field(default_factory=dict)  # bucket -> samples, below train_batch_size
    small_dropped: bool = False  # the undersized buckets were dropped (drop_small_buckets)


def bucket_backend(index: pa.Table, backend: BackendConfig) -> BackendBuckets:
    """Each sample's bucket, target, resize and crop box (seeded by backend id and row or file name), the aspect
    ratio limits applied, clips' frame counts, and buckets below train_batch_size dropped when asked."""
    cfg = backend.buckets
    table = assign_buckets(index, cfg, backend.id, seed_by_filename=row_names(index) == "path")
    table, aspect_dropped = drop_by_aspect_ratio(table, cfg)
    if backend.dataset_type == "video":
        table = assign_frames(table, backend.video)
    undersized = small_buckets(table, cfg.train_batch_size) if cfg.train_batch_size else {}
    if undersized and cfg.drop_small_buckets:
        table = drop_small_buckets(table, cfg.train_batch_size)
    return BackendBuckets(carry(index, table), aspect_dropped, undersized, bool(undersized and cfg.drop_small_buckets))
