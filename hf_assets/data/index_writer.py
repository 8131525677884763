"""Write a split's filtered index and its dropped rows piece by piece: memory holds one scanned batch, whatever the
number of rows (the in-memory `data.index.build_filtered_index` gives the same rows)."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.atomic import write_json_atomic
from hf_assets.cache.tables import TableFile, load_manifest, open_table_file, table_paths, table_writer
from hf_assets.config.schema import BackendConfig
from hf_assets.cores import usable_cores
from hf_assets.data.dropped import DROPPED_SCHEMA, DROPPED_TABLE
from hf_assets.data.filters import DROP_REASONS
from hf_assets.data.index import finish_dropped, finish_kept, index_results, index_schema
from hf_assets.data.lineage import stamp
from hf_assets.data.split import RawSplit
from hf_assets.data.subset import REASON as SUBSET_REASON
from hf_assets.data.subset import limit_mask, sample_ranks

INDEX_TABLE = "filtered_index"
STAGED = "filtered_index.staged"  # the kept rows before max_num_samples, and before they are known not to be none


@dataclass(frozen=True)
class WrittenIndex:
    """What write_filtered_index wrote: the staged index (published by `publish`), drop counts, dropped rows."""

    staged: TableFile
    counts: dict[str, int]
    dropped: TableFile


def write_filtered_index(
    split: RawSplit, backend: BackendConfig, directory: Path, cache=None, progress=None, workers: int | None = None
) -> WrittenIndex:
    """Scan `split` piece by piece (reusing the scan cache) into a staged index table and dropped.parquet (row,
    filename, reason) in `directory`; apply max_num_samples over the whole index (a second pass). `publish` then
    makes the staged table the filtered index, unless the caller refuses it (no row kept).

    With a cache, `workers` threads (default: the usable cores) scan pieces ahead while this one writes."""
    names = "path" if split.name_column else "row"
    schema = stamp(index_schema(backend).empty_table(), split.fingerprint, names).schema
    meta = {"backend": backend.id, "source_fingerprint": split.fingerprint}
    described = {"description": "rows of the split that filtered_index dropped, with the reason of each"}
    counts = dict.fromkeys(DROP_REASONS, 0)
    with table_writer(directory, DROPPED_TABLE, DROPPED_SCHEMA, described) as lost:
        with table_writer(directory, STAGED, schema, meta) as kept:
            for result in index_results(split, backend, cache, progress, workers or usable_cores()):
                for part in result.kept:
                    kept.write(finish_kept(part, result.start, backend))
                for part in result.dropped:
                    lost.write(finish_dropped(part, result.start, backend))
                for reason, n in result.counts.items():
                    counts[reason] = counts.get(reason, 0) + n
        if backend.max_num_samples is not None:  # after every filter: N samples are trained on when N remain
            counts[SUBSET_REASON] = _limit(directory, backend, schema, meta, lost)
    return WrittenIndex(open_table_file(directory, STAGED), counts, open_table_file(directory, DROPPED_TABLE))


def _limit(directory: Path, backend: BackendConfig, schema: pa.Schema, meta: dict, lost) -> int:
    """Keep the max_num_samples lowest-ranked rows of the staged index (ranks read batch by batch); the others join
    the dropped rows. Returns how many were dropped."""
    staged = open_table_file(directory, STAGED)
    ranks = [sample_ranks(backend.id, batch.column("filename")) for batch in staged.batches(["filename"])]
    keep = limit_mask(np.concatenate(ranks) if ranks else np.zeros(0, np.uint64), backend.max_num_samples)
    with table_writer(directory, STAGED, schema, meta) as kept:
        offset = 0
        for batch in staged.batches():
            mask = pa.array(keep[offset : offset + batch.num_rows])
            offset += batch.num_rows
            kept.write(batch.filter(mask))
            beyond = batch.filter(pc.invert(mask)).select(["row", "filename"])
            lost.write(beyond.append_column("reason", pa.repeat(pa.scalar(SUBSET_REASON), beyond.num_rows)))
    return int((~keep).sum())


def publish(directory: Path) -> TableFile:
    """The staged index becomes the filtered index (file first, its manifest last)."""
    staged_parquet, staged_manifest = table_paths(directory, STAGED)
    final_parquet, final_manifest = table_paths(directory, INDEX_TABLE)
    manifest = {**load_manifest(directory, STAGED), "name": INDEX_TABLE}
    os.replace(staged_parquet, final_parquet)
    write_json_atomic(manifest, final_manifest)
    staged_manifest.unlink(missing_ok=True)
    return open_table_file(directory, INDEX_TABLE)


def discard(directory: Path) -> None:
    """Remove the staged index (a refused scan leaves the last good filtered index as it was)."""
    for path in table_paths(directory, STAGED):
        path.unlink(missing_ok=True)
