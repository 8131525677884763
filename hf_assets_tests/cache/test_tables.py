"""Tables written in pieces: what is read back equals what was written, with encodings fitted to the data."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.cache import tables
from hf_assets.cache.tables import open_table_file, table_writer

SCHEMA = pa.schema(
    [
        ("filename", pa.string()),
        ("row", pa.int64()),
        ("captions", pa.list_(pa.string())),
        ("bucket", pa.string()),
        ("target_width", pa.int32()),
    ]
)


def piece(first: int, n: int) -> pa.Table:
    rows = np.arange(first, first + n)
    return pa.table(
        {
            "filename": [f"{r:08d}.jpg" for r in rows],
            "row": rows,
            "captions": [[f"a photo number {r}", f"picture {r}"] for r in rows],
            "bucket": ["1.0", "1.5", "0.67"] * (n // 3) + ["1.0"] * (n % 3),
            "target_width": pa.array([1024, 1216, 832] * (n // 3) + [1024] * (n % 3), pa.int32()),
        },
        schema=SCHEMA,
    )


def test_a_table_written_in_pieces_reads_back_whole_with_dictionaries_only_where_values_repeat(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 3000)
    pieces = [piece(0, 2500), piece(2500, 2500), piece(5000, 1000)]
    with table_writer(tmp_path, "t", SCHEMA, {"backend": "b"}) as sink:
        for p in pieces:
            sink.write(p)
    stored = open_table_file(tmp_path, "t")
    assert stored.num_rows == 6000 and stored.read().equals(pa.concat_tables(pieces))
    meta = pq.ParquetFile(stored.path).metadata
    assert meta.num_row_groups == 2  # pieces gathered to about ROW_GROUP_ROWS
    columns = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    dictionary = {name for name, c in columns.items() if c.has_dictionary_page}
    assert dictionary == {"bucket", "target_width"}  # not the unique file names, row numbers or captions
    assert columns["row"].is_stats_set and not columns["filename"].is_stats_set
    assert pq.read_table(stored.path, filters=[("row", "in", [5, 5999])]).column("row").to_pylist() == [5, 5999]


def test_an_empty_table_keeps_its_schema_and_a_failed_write_leaves_no_file(tmp_path):
    with table_writer(tmp_path, "empty", SCHEMA) as sink:
        sink.write(SCHEMA.empty_table())
    assert open_table_file(tmp_path, "empty").read().equals(SCHEMA.empty_table())
    with pytest.raises(RuntimeError, match="halfway"):
        with table_writer(tmp_path, "broken", SCHEMA) as sink:
            sink.write(piece(0, 10))
            sink.flush()
            raise RuntimeError("halfway")
    assert not list(tmp_path.glob("broken*"))
