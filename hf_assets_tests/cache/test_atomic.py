"""Atomic writes: all or nothing, no temp files left behind, stale temps of dead writers cleaned."""

import json
import os
import stat
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.cache.atomic import (
    atomic_write_bytes,
    atomic_writer,
    clean_stale_temps,
    is_temp_name,
    temp_path_for,
    write_json_atomic,
    write_parquet_atomic,
)


def test_success_leaves_only_the_final_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "sub" / "blob.bin", b"x" * 1000)
    assert path.read_bytes() == b"x" * 1000
    assert sorted(p.name for p in path.parent.iterdir()) == ["blob.bin"]


def test_temp_is_hidden_in_the_same_directory(tmp_path):
    with atomic_writer(tmp_path / "a.safetensors") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.safetensors.tmp-")
        assert f"-{os.getpid()}-" in tmp.name and is_temp_name(tmp.name)
        tmp.write_bytes(b"data")
        assert not (tmp_path / "a.safetensors").exists()  # only visible after the rename
    assert (tmp_path / "a.safetensors").read_bytes() == b"data"


def test_exception_leaves_no_final_file_and_no_temp(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_writer(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_exception_keeps_the_previous_version_intact(tmp_path):
    atomic_write_bytes(tmp_path / "out.bin", b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_writer(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"new but partial")
            raise KeyboardInterrupt
    assert (tmp_path / "out.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_writing_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_writer(tmp_path / "out.bin"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_parquet_and_json_round_trip(tmp_path):
    table = pa.table({"key": ["a", "b"], "n": [1, 2]})
    assert pq.read_table(write_parquet_atomic(table, tmp_path / "t.parquet")).equals(table)
    obj = {"scaling_factor": 0.18215, "shift_factor": None, "model": {"name": "vae"}}
    assert json.loads(write_json_atomic(obj, tmp_path / "m.json").read_text()) == obj
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "t.parquet"]


def test_clean_stale_temps_removes_only_dead_writers_temps(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".shard-1.safetensors.tmp-{dead_pid}-0123abcd"
    live = temp_path_for(tmp_path / "shard-2.safetensors")  # this process: still writing
    for p in (stale, live, tmp_path / "shard-3.safetensors", tmp_path / ".hidden"):
        p.write_bytes(b"x")
    assert clean_stale_temps(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "shard-3.safetensors", ".hidden"])
    assert clean_stale_temps(tmp_path, include_live=True) == [live]
    assert clean_stale_temps(tmp_path / "missing") == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_cache_files_follow_the_process_umask_like_any_new_file(tmp_path, umask):
    from hf_assets.cache.encoded import EncodedCache
    from hf_assets_tests.cache.helpers import encode_all, wanted_table

    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("written by open()")
        cache = EncodedCache(tmp_path / "cache")
        wanted = wanted_table(4)
        encode_all(cache, cache.triage(wanted)[0])
        cache.commit(wanted, {"scaling_factor": 0.13})
    finally:
        os.umask(old)
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~umask
    written = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # shards: safetensors makes 0600 files
    assert any(p.suffix == ".safetensors" for p in written) and any(p.name == "manifest.parquet" for p in written)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: oct(expected) for p in written}
