"""A backend's bucket table from its filtered index: what the `aspect_buckets` asset stores, as one function, so a
conditioning dataset can rebuild its source's table exactly (the same index, config and seeds give the same table).

The index is bucketed batch by batch against one bucket table built from the whole index's aspects (a first pass
reads only width and height), so a table written in pieces equals the table built at once, and memory holds one
batch whatever the number of rows.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.tables import TableFile, open_table_file, table_writer
from hf_assets.config.schema import BackendConfig
from hf_assets.data.buckets import (
    ASPECT_DROP_REASONS,
    BucketTable,
    aspect_of,
    assign_buckets,
    bucket_table,
    drop_by_aspect_ratio,
    observed_codes,
)
from hf_assets.data.frame_selection import assign_frames
from hf_assets.data.lineage import carry, row_names, source_fingerprint
from hf_assets.progress import ProgressLog, quiet

Batches = Callable[[list[str] | None], Iterator[pa.Table]]  # columns (None: all) -> the index's batches, in order


@dataclass
class BucketCounts:
    """What a bucketing pass saw: samples per bucket, per (bucket, target width, target height), and aspect drops."""

    per_bucket: Counter = field(default_factory=Counter)
    per_size: Counter = field(default_factory=Counter)
    aspect_dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASPECT_DROP_REASONS, 0))

    def add(self, table: pa.Table, aspect_dropped: dict[str, int]) -> None:
        for reason, n in aspect_dropped.items():
            self.aspect_dropped[reason] = self.aspect_dropped.get(reason, 0) + n
        if table.num_rows == 0:
            return
        grouped = table.group_by(["bucket", "target_width", "target_height"]).aggregate([("bucket", "count")])
        for bucket, width, height, n in zip(*(grouped.column(i).to_pylist() for i in range(4))):
            self.per_bucket[bucket] += n
            self.per_size[(bucket, width, height)] += n

    def undersized(self, batch_size: int | None) -> dict[str, int]:
        """Buckets holding fewer samples than one batch."""
        return {b: n for b, n in sorted(self.per_bucket.items()) if batch_size and n < batch_size}


@dataclass(frozen=True)
class BackendBuckets:
    """The bucket table and what bucketing dropped or found short."""

    table: pa.Table
    aspect_dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows (minimum/maximum_aspect_ratio)
    undersized: dict[str, int] = field(default_factory=dict)  # bucket -> samples, below train_batch_size
    small_dropped: bool = False  # the undersized buckets were dropped (drop_small_buckets)


def index_bucket_table(batches: Batches, backend: BackendConfig) -> BucketTable:
    """The bucket table of the whole index, from its width and height columns read batch by batch."""
    codes = [np.ones(1, dtype=np.int64)]
    for batch in batches(["width", "height"]):
        widths, heights = batch.column("width").to_numpy(), batch.column("height").to_numpy()
        codes.append(observed_codes(widths, heights, backend.buckets))
    return bucket_table(backend.buckets, np.unique(np.concatenate(codes)))


def bucket_batch(batch: pa.Table, backend: BackendConfig, table: BucketTable) -> tuple[pa.Table, dict[str, int]]:
    """One batch of the index bucketed against the whole index's table: aspect-ratio limits applied, clips'
    frames chosen (seeded by backend id and row, or file name when rows are named by path)."""
    cfg = backend.buckets
    out = assign_buckets(batch, cfg, backend.id, seed_by_filename=row_names(batch) == "path", table=table)
    out, aspect_dropped = drop_by_aspect_ratio(out, cfg)
    if backend.dataset_type == "video":
        out = assign_frames(out, backend.video)
    return carry(batch, out), aspect_dropped


def bucketed_batches(batches: Batches, backend: BackendConfig, counts: BucketCounts) -> Iterator[pa.Table]:
    """The index's batches bucketed, in order; `counts` tallies them as they pass."""
    table = index_bucket_table(batches, backend)
    for batch in batches(None):
        out, aspect_dropped = bucket_batch(batch, backend, table)
        counts.add(out, aspect_dropped)
        yield out


def without_small_buckets(table: pa.Table, undersized: dict[str, int]) -> pa.Table:
    """The rows of buckets not in `undersized`."""
    if not undersized:
        return table
    small = pa.array(list(undersized), pa.string())
    return table.filter(pc.invert(pc.is_in(table.column("bucket"), value_set=small)))


def bucket_backend(index: pa.Table, backend: BackendConfig) -> BackendBuckets:
    """Each sample's bucket, target, resize and crop box (seeded by backend id and row or file name), the aspect
    ratio limits applied, clips' frame counts, and buckets below train_batch_size dropped when asked."""
    cfg = backend.buckets
    counts = BucketCounts()
    parts = list(bucketed_batches(lambda columns: iter([index.select(columns) if columns else index]), backend, counts))
    table = parts[0]
    undersized = counts.undersized(cfg.train_batch_size)
    dropping = bool(undersized and cfg.drop_small_buckets)
    if dropping:
        table = without_small_buckets(table, undersized)
    return BackendBuckets(table, counts.aspect_dropped, undersized, dropping)


@dataclass(frozen=True)
class WrittenBuckets:
    """The bucket table as written, and what bucketing counted on the way."""

    file: TableFile
    counts: BucketCounts
    undersized: dict[str, int]
    small_dropped: bool

    @property
    def histogram(self) -> list[tuple[str, int]]:
        """(bucket, samples) of the table as written, by bucket aspect."""
        kept = {b: n for b, n in self.counts.per_bucket.items() if not (self.small_dropped and b in self.undersized)}
        return sorted(kept.items(), key=lambda kv: (aspect_of(kv[0]), kv[0]))

    @property
    def sizes(self) -> dict[tuple[str, int, int], int]:
        """Samples per (bucket, target width, target height) of the table as written."""
        dropped = self.undersized if self.small_dropped else {}
        return {key: n for key, n in self.counts.per_size.items() if key[0] not in dropped}


def write_backend_buckets(
    index: TableFile, backend: BackendConfig, directory: Path, name: str, progress: ProgressLog | None = None
) -> WrittenBuckets:
    """Bucket a stored index batch by batch into table `name` of `directory` (the same table `bucket_backend` builds
    at once), then drop buckets below train_batch_size when asked (a second pass over what was written); `progress`
    counts the index's rows as they are written (step "bucket")."""
    counts = BucketCounts()
    with (progress or quiet()).step("bucket", index.num_rows, unit="rows") as step:
        stream = bucketed_batches(index.batches, backend, counts)
        first = next(stream, None)
        if first is None:  # no row: the empty table of the right schema
            first = bucket_backend(index.read(), backend).table
        meta = {"backend": backend.id, "source_fingerprint": source_fingerprint(first)}
        with table_writer(directory, name, first.schema, meta) as sink:
            sink.write(first)
            step.advance(first.num_rows)
            for batch in stream:
                sink.write(batch)
                step.advance(batch.num_rows)
    cfg = backend.buckets
    undersized = counts.undersized(cfg.train_batch_size)
    dropping = bool(undersized and cfg.drop_small_buckets)
    if dropping:
        written = open_table_file(directory, name)
        with table_writer(directory, name, written.schema, meta) as sink:
            for batch in written.batches():
                sink.write(without_small_buckets(batch, undersized))
    return WrittenBuckets(open_table_file(directory, name), counts, undersized, dropping)
