"""`max_num_samples`: keep a deterministic subset of the rows every filter kept.

SimpleTuner shuffles the sorted file list with a generator seeded by the backend id and keeps the first N, before
its size filters: the same subset on every run of an unchanged dataset, but a dataset that gains one file is
reshuffled and keeps a different subset. Here each kept row is ranked by a hash of (backend id, file name) and the N
lowest are kept: the same subset on every run, and a grown dataset keeps every chosen row unless a new row ranks
lower (then it displaces the highest-ranked one). The file name is the row's stable identity: the relative path of a
folder's image, `{row}.jpg` of a dataset row. Applied after the filters, so N samples are trained on when N remain.
"""

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REASON = "max_num_samples"


def sample_ranks(backend_id: str, filenames: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 rank per file name: the first 8 bytes of blake2b(backend id, file name)."""
    seed = backend_id.encode() + b"\0"
    names = filenames.to_pylist()
    digests = b"".join(hashlib.blake2b(seed + name.encode(), digest_size=8).digest() for name in names)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def keep_mask(backend_id: str, filenames: pa.Array | pa.ChunkedArray, limit: int | None) -> np.ndarray:
    """True for the rows kept: all of them without a limit, else the `limit` lowest-ranked (ties by position)."""
    if limit is None or len(filenames) <= limit:
        return np.ones(len(filenames), dtype=bool)
    return limit_mask(sample_ranks(backend_id, filenames), limit)


def limit_mask(ranks: np.ndarray, limit: int | None) -> np.ndarray:
    """True for the `limit` lowest ranks (ties by position); all True without a limit. Ranks of a table read in
    batches, concatenated, give the mask of the whole table."""
    keep = np.ones(len(ranks), dtype=bool)
    if limit is None or len(ranks) <= limit:
        return keep
    keep[np.lexsort((np.arange(len(ranks)), ranks))[limit:]] = False
    return keep


def limit_samples(index: pa.Table, backend_id: str, limit: int | None) -> tuple[pa.Table, pa.Table]:
    """(kept index rows in their order, dropped rows as (row, filename, reason)) under `max_num_samples`."""
    keep = keep_mask(backend_id, index.column("filename"), limit)
    if keep.all():
        return index, pa.table({"row": pa.array([], pa.int64()), "filename": pa.array([], pa.string())})
    mask = pa.array(keep)
    dropped = index.filter(pc.invert(mask)).select(["row", "filename"])
    return index.filter(mask), dropped
