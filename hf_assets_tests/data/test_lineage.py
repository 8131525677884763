"""Lineage: a table carries the fingerprint of the split it numbers, through Parquet and through derived tables."""

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.data.lineage import carry, row_names, source_fingerprint, stamp


def test_a_stamp_survives_a_parquet_round_trip(tmp_path):
    table = stamp(pa.table({"row": [0, 3, 4]}), "fp-123", "row")
    pq.write_table(table, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet")
    assert source_fingerprint(back) == "fp-123" and row_names(back) == "row"


def test_a_derived_table_carries_the_stamp_and_keeps_its_own_metadata():
    index = stamp(pa.table({"row": [1, 2]}), "fp-a", "path")
    derived = pa.table({"row": [1, 2], "bucket": ["1.0", "0.5"]}).replace_schema_metadata({b"other": b"kept"})
    out = carry(index, derived)
    assert source_fingerprint(out) == "fp-a" and row_names(out) == "path"
    assert out.schema.metadata[b"other"] == b"kept"


def test_an_unstamped_table_has_no_lineage():
    table = pa.table({"row": [0]})
    assert source_fingerprint(table) is None and row_names(table) is None
