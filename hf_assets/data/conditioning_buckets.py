"""A conditioning dataset's bucket table: its source's table rebuilt from the source's filtered index, then paired.

The source's bucket table is rebuilt with `bucket_backend` (the same index, config and seeds give the same table the
source's `aspect_buckets` stores; `stale_source_rows` finds where a stored one differs), and the conditioning
samples are paired with it (`data.pairing`): a generated dataset sample for sample, a given one by file name.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BackendConfig
from hf_assets.data.backend_buckets import bucket_backend
from hf_assets.data.dropped import DROPPED_SCHEMA
from hf_assets.data.pairing import SOURCE_GEOMETRY, pair_generated, pair_given


@dataclass(frozen=True)
class PairedBuckets:
    """A conditioning dataset's bucket table, what it and its source lost, and the source's table it was paired with."""

    table: pa.Table
    dropped: pa.Table  # row, filename, reason: conditioning samples without a source sample
    source_dropped: pa.Table  # row, filename, reason: source samples without a partner here
    source_table: pa.Table


def pair_buckets(
    index: pa.Table,
    backend: BackendConfig,
    source_index: pa.Table,
    source: BackendConfig,
    *,
    generated: bool,
    strict: bool,
    captions: str | tuple[str, ...],
) -> PairedBuckets:
    """Pair the conditioning backend `backend` (its filtered index `index`) with `source` (its `source_index`).

    `captions`: "own" (the conditioning dataset's), "source" (its source sample's) or fixed captions (() for none).
    A generated dataset's index is its source's; a loose given one keeps its own buckets.
    """
    source_table = bucket_backend(source_index, source).table
    empty = DROPPED_SCHEMA.empty_table()
    if generated:
        return PairedBuckets(pair_generated(source_table, captions), empty, empty, source_table)
    own = index if strict else bucket_backend(index, backend).table
    pairing = pair_given(source_table, own, strict, backend.id, captions)
    return PairedBuckets(pairing.table, pairing.dropped, pairing.source_dropped, source_table)


def stale_source_rows(rebuilt: pa.Table, stored: pa.Table) -> list[str]:
    """File names whose geometry differs between the rebuilt source table and the one the source stored, or that
    only one of them holds: the source's aspect_buckets was built from another config or index."""
    names = rebuilt.column("filename").combine_chunks()
    at = pc.index_in(names, value_set=stored.column("filename").combine_chunks()).to_numpy(zero_copy_only=False)
    missing = np.isnan(at.astype(float))
    found = np.flatnonzero(~missing)
    differ = np.zeros(len(names), bool)
    differ[missing] = True
    if len(found):
        take = pa.array(at[found].astype(np.int64))
        for column in SOURCE_GEOMETRY:
            mine = rebuilt.column(column).take(pa.array(found)).to_numpy(zero_copy_only=False)
            theirs = stored.column(column).take(take).to_numpy(zero_copy_only=False)
            differ[found] |= mine != theirs
    extra = stored.num_rows - len(found)
    stale = names.filter(pa.array(differ)).to_pylist()
    if extra:
        kept = set(names.to_pylist())
        stale += [n for n in stored.column("filename").to_pylist() if n not in kept]
    return stale
