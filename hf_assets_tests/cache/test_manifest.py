"""Manifest: Parquet + JSON sidecar, written atomically, its shards and location entries."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.cache.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    META_FILE,
    Manifest,
    entries_table,
    first_per_key,
    read_manifest,
    write_manifest,
)
from hf_assets.cache.shards import ShardWriter
from hf_assets_tests.cache.helpers import sample_tensors


def manifest_table(tmp_path) -> pa.Table:
    with ShardWriter(tmp_path / "shards") as w:
        for i in range(3):
            w.add(f"k{i}", sample_tensors(f"{i}.jpg"))
    entries = entries_table(w.flushed)
    hashes = pa.table({"content_hash": [f"c{i}" for i in range(3)], "settings_hash": ["s"] * 3})
    table = entries.select(["key"])
    for name in hashes.column_names:
        table = table.append_column(name, hashes.column(name))
    for name in entries.column_names[1:]:
        table = table.append_column(entries.schema.field(name), entries.column(name))
    return table.append_column("filename", pa.array([f"{i}.jpg" for i in range(3)]))


def test_absent_manifest_reads_empty(tmp_path):
    m = read_manifest(tmp_path)
    assert len(m) == 0 and m.meta == {} and m.shards() == set()


def test_round_trip_with_meta_and_extra_columns(tmp_path):
    table = manifest_table(tmp_path)
    write_manifest(tmp_path, table, {"scaling_factor": 0.18215, "shift_factor": None})
    m = read_manifest(tmp_path)
    assert m.table.equals(table)
    assert m.meta == {"scaling_factor": 0.18215, "shift_factor": None, "format_version": FORMAT_VERSION}
    assert json.loads((tmp_path / META_FILE).read_text()) == m.meta
    row = m.table.slice(0, 1).to_pylist()[0]
    assert row["shapes"] == [[4, 128, 96], [77, 768]] and row["dtype"] == "mixed"
    assert row["tensor_names"] == ["latent", "embed"] and row["filename"] == "0.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MANIFEST_FILE, META_FILE, "shards"])


def test_embedded_meta_wins_over_a_stale_sidecar(tmp_path):
    write_manifest(tmp_path, manifest_table(tmp_path), {"scaling_factor": 1.0})
    (tmp_path / META_FILE).write_text(json.dumps({"scaling_factor": 2.0}))  # crash between the two renames
    assert read_manifest(tmp_path).meta["scaling_factor"] == 1.0


def test_newer_format_is_refused(tmp_path):
    table = manifest_table(tmp_path)
    write_manifest(tmp_path, table, {})
    t = read_manifest(tmp_path).table
    meta = {b"hf_assets.cache.meta": json.dumps({"format_version": FORMAT_VERSION + 1}).encode()}
    pq.write_table(t.replace_schema_metadata(meta), tmp_path / MANIFEST_FILE)
    with pytest.raises(ValueError, match="upgrade"):
        read_manifest(tmp_path)


def test_missing_required_columns_are_refused(tmp_path):
    with pytest.raises(ValueError, match="content_hash"):
        write_manifest(tmp_path, manifest_table(tmp_path).drop_columns(["content_hash"]), {})


def test_shards_and_entries(tmp_path):
    m = Manifest(table=manifest_table(tmp_path))
    assert m.shards() == set(m.table.column("shard").to_pylist()) and len(m.shards()) == 1
    assert m.entries().column_names[:2] == ["key", "shard"]


def test_first_per_key_keeps_table_order():
    t = pa.table({"key": ["b", "a", "b", "c", "a"], "v": [0, 1, 2, 3, 4]})
    assert first_per_key(t).to_pydict() == {"key": ["b", "a", "c"], "v": [0, 1, 3]}
