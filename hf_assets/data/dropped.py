"""The per-row record of what the filtered index dropped: row, file name and reason, beside its table."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DROPPED_TABLE = "dropped"  # dropped.parquet + dropped.json beside filtered_index.parquet
DROPPED_SCHEMA = pa.schema([("row", pa.int64()), ("filename", pa.string()), ("reason", pa.string())])


class DropCounts(dict):
    """Rows dropped per reason (every reason present, 0 when none); `rows` lists each dropped row."""

    def __init__(self, counts: dict[str, int], rows: pa.Table | None = None):
        super().__init__(counts)
        self.rows = DROPPED_SCHEMA.empty_table() if rows is None else rows


def dropped_rows(reasons: pa.Array, filenames: pa.Array, details: pa.Array | None = None) -> pa.Table:
    """One row per dropped row of the split: its row number, file name and reason.

    `reasons` is null for kept rows; `filenames` holds the names of the dropped rows only, in row order; a
    non-null `details` value (e.g. why a caption file could not be read) is appended to that row's reason.
    """
    reasons = reasons.combine_chunks() if isinstance(reasons, pa.ChunkedArray) else reasons
    rows = pa.array(np.flatnonzero(np.asarray(pc.is_valid(reasons).to_numpy(zero_copy_only=False))), pa.int64())
    reason = reasons.take(rows).cast(pa.string())
    if details is not None:
        detail = details.take(rows).cast(pa.string())
        with_detail = pc.binary_join_element_wise(reason, detail, ": ")
        reason = pc.if_else(pc.is_valid(detail), with_detail, reason)
    if len(filenames) != len(rows):
        raise ValueError(f"dropped_rows: {len(filenames)} file names for {len(rows)} dropped rows")
    return pa.Table.from_arrays([rows, filenames.cast(pa.string()), reason], schema=DROPPED_SCHEMA)
