"""EncodedCache: plan reuses by content + settings, commit prunes, killed runs resume from the journal."""

import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hf_assets.cache.encoded import CacheBusyError, EncodedCache, MissingEntriesError
from hf_assets.cache.hashing import settings_hash
from hf_assets.cache.reader import LazyTensorMapping
from hf_assets.cache.shards import list_shards
from hf_assets_tests.cache.helpers import (
    SETTINGS,
    SHARD_BYTES,
    assert_same,
    encode_all,
    sample_tensors,
    wanted_table,
)


def build(tmp_path, n=9, **meta):
    cache = EncodedCache(tmp_path / "latents", max_bytes=SHARD_BYTES)
    wanted = wanted_table(n)
    to_encode, reused = cache.triage(wanted)
    assert (to_encode.num_rows, reused.num_rows) == (n, 0)
    encode_all(cache, to_encode)
    return cache, wanted, cache.commit(wanted, meta or {"scaling_factor": 0.18215})


def test_first_run_encodes_everything_and_commits(tmp_path):
    cache, wanted, result = build(tmp_path)
    m = result.manifest
    assert m.table.num_rows == 9 and result.missing == 0 and result.deleted_shards == ()
    assert m.table.column("filename").to_pylist() == wanted.column("filename").to_pylist()
    assert len(list_shards(cache.shards_dir)) == 3 == m.meta["num_shards"]
    assert m.meta["scaling_factor"] == 0.18215 and m.meta["created_at"]
    assert not list(cache.journal_dir.iterdir())  # journal folded into the manifest
    assert result.size_bytes == cache.size_bytes() > 9 * 314_880


def test_second_plan_reuses_everything(tmp_path):
    cache, wanted, first = build(tmp_path)
    to_encode, reused = cache.triage(wanted)
    assert to_encode.num_rows == 0 and reused.num_rows == 9
    again = cache.commit(wanted)  # keeps meta, created_at and every shard
    assert again.deleted_shards == () and again.manifest.meta["created_at"] == first.manifest.meta["created_at"]
    assert again.manifest.meta["scaling_factor"] == 0.18215


def test_changed_content_or_settings_are_encoded_again(tmp_path):
    cache, wanted, _ = build(tmp_path)
    changed = wanted.set_column(1, "content_hash", pa.array(["new"] + wanted.column("content_hash").to_pylist()[1:]))
    to_encode, reused = cache.triage(changed)
    assert to_encode.column("filename").to_pylist() == ["0.jpg"] and reused.num_rows == 8

    other = wanted_table(9, settings={**SETTINGS, "crop": [0, 64, 768, 1088]})
    to_encode, reused = cache.triage(other)
    assert to_encode.num_rows == 9 and reused.num_rows == 0

    per_row = wanted.set_column(2, "settings_hash", pa.array([settings_hash({"w": i % 2}) for i in range(9)]))
    assert cache.triage(per_row)[0].num_rows == 9


def test_identical_content_is_encoded_once_and_shared(tmp_path):
    cache = EncodedCache(tmp_path, max_bytes=SHARD_BYTES)
    wanted = wanted_table(4)
    wanted = wanted.set_column(1, "content_hash", pa.array(wanted.column("content_hash").to_pylist()[:2] * 2))
    to_encode, _ = cache.triage(wanted)
    assert to_encode.column("filename").to_pylist() == ["0.jpg", "1.jpg"]
    encode_all(cache, to_encode)
    cache.commit(wanted)
    m = LazyTensorMapping(tmp_path)
    assert len(m) == 4
    assert_same(m["2.jpg"], sample_tensors("0.jpg")) and assert_same(m["3.jpg"], sample_tensors("1.jpg"))


def test_commit_prunes_unreferenced_shards_but_keeps_partly_used_ones(tmp_path):
    cache, wanted, first = build(tmp_path)  # shards: [0 1 2] [3 4 5] [6 7 8]
    table = first.manifest.table
    by_file = dict(zip(table.column("filename").to_pylist(), table.column("shard").to_pylist()))
    result = cache.commit(wanted.slice(0, 5))
    assert result.deleted_shards == (by_file["6.jpg"],)
    assert set(list_shards(cache.shards_dir)) == {by_file["0.jpg"], by_file["3.jpg"]}
    m = LazyTensorMapping(cache.directory)
    assert sorted(m) == [f"{i}.jpg" for i in range(5)]
    for i in range(5):
        assert_same(m[f"{i}.jpg"], sample_tensors(f"{i}.jpg"))
    assert cache.commit(wanted.slice(0, 0)).manifest.table.num_rows == 0
    assert list_shards(cache.shards_dir) == []


def test_commit_refuses_missing_entries_unless_allowed(tmp_path):
    cache, wanted, _ = build(tmp_path, n=3)
    more = wanted_table(5)
    with pytest.raises(MissingEntriesError, match="2 wanted entries"):
        cache.commit(more)
    result = cache.commit(more, allow_missing=True)
    assert result.missing == 2 and result.manifest.table.num_rows == 3


def test_wanted_needs_hashes_and_a_consistent_key(tmp_path):
    cache = EncodedCache(tmp_path)
    with pytest.raises(ValueError, match="settings_hash"):
        cache.triage(wanted_table(2).drop_columns(["settings_hash"]))
    keyed = cache.with_keys(wanted_table(2))
    assert keyed.column_names[0] == "key" and cache.with_keys(keyed) is keyed
    with pytest.raises(ValueError, match="differs"):
        cache.triage(keyed.set_column(0, "key", pa.array(["a", "b"])))


def test_exception_mid_run_keeps_finished_work(tmp_path):
    cache = EncodedCache(tmp_path, max_bytes=SHARD_BYTES)
    wanted = wanted_table(10)
    to_encode, _ = cache.triage(wanted)
    with pytest.raises(RuntimeError, match="OOM"):
        with cache.writer() as w:
            for i, row in enumerate(to_encode.to_pylist()):
                if i == 7:
                    raise RuntimeError("CUDA OOM")
                w.add(row["key"], sample_tensors(row["filename"]))
    to_encode, reused = cache.triage(wanted)  # the 7 added entries were flushed on the way out
    assert reused.num_rows == 7 and to_encode.column("filename").to_pylist() == ["7.jpg", "8.jpg", "9.jpg"]
    encode_all(cache, to_encode)
    cache.commit(wanted)
    m = LazyTensorMapping(tmp_path)
    for i in range(10):
        assert_same(m[f"{i}.jpg"], sample_tensors(f"{i}.jpg"))


def test_shard_without_journal_is_recovered_from_its_header(tmp_path, monkeypatch):
    cache = EncodedCache(tmp_path, max_bytes=SHARD_BYTES)
    wanted = wanted_table(6)
    calls = []

    def crash_on_second_journal(self, shard):
        calls.append(shard.name)
        if len(calls) == 2:
            raise OSError("killed between shard rename and journal write")
        real(self, shard)

    real = EncodedCache._journal
    monkeypatch.setattr(EncodedCache, "_journal", crash_on_second_journal)
    with pytest.raises(OSError):
        encode_all(cache, cache.triage(wanted)[0])
    monkeypatch.setattr(EncodedCache, "_journal", real)
    orphan = calls[1]
    assert orphan in list_shards(cache.shards_dir)
    to_encode, reused = cache.triage(wanted)
    assert reused.num_rows == 6 and to_encode.num_rows == 0 and cache.repairs.recovered_entries == 3
    result = cache.commit(wanted)
    assert result.deleted_shards == () and orphan in result.manifest.shards()
    m = LazyTensorMapping(tmp_path)
    for i in range(6):
        assert_same(m[f"{i}.jpg"], sample_tensors(f"{i}.jpg"))


def test_lost_shard_is_encoded_again(tmp_path):
    cache, wanted, first = build(tmp_path)
    (cache.shards_dir / first.manifest.table.column("shard")[0].as_py()).unlink()
    to_encode, reused = cache.triage(wanted)
    assert to_encode.column("filename").to_pylist() == ["0.jpg", "1.jpg", "2.jpg"] and reused.num_rows == 6


def test_one_writer_at_a_time(tmp_path):
    cache = EncodedCache(tmp_path, lock_wait=0)
    with cache.writer():
        with pytest.raises(CacheBusyError, match="is being written by another writer"):
            cache.commit(wanted_table(1), allow_missing=True)
        with pytest.raises(CacheBusyError):
            with EncodedCache(tmp_path, lock_wait=0).writer():
                pass
    cache.commit(wanted_table(0))  # the lock is free again


def test_a_second_writer_waits_for_the_first_and_does_not_store_its_entries_again(tmp_path):
    import threading

    wanted = wanted_table(6)
    first, second = EncodedCache(tmp_path, max_bytes=SHARD_BYTES), EncodedCache(tmp_path, max_bytes=SHARD_BYTES)
    to_encode = second.triage(wanted)[0]  # triaged before the first writer stored anything
    holding = threading.Event()

    def write_first():
        with first.writer(max_bytes=SHARD_BYTES) as w:
            holding.set()
            for row in first.triage(wanted)[0].select(["key", "filename"]).to_pylist():
                w.add(row["key"], sample_tensors(row["filename"]))
            time.sleep(1.0)

    thread = threading.Thread(target=write_first)
    thread.start()
    holding.wait()
    with second.writer() as w:  # blocks until the first writer is done
        assert len(w.skip) == 6
        for row in to_encode.select(["key", "filename"]).to_pylist():
            assert w.add(row["key"], sample_tensors(row["filename"])) == ("", [])
    thread.join()
    assert second.journal_entries().num_rows == 6 and len(list_shards(second.shards_dir)) == 2
    second.commit(wanted)
    m = LazyTensorMapping(tmp_path)
    for i in range(6):
        assert_same(m[f"{i}.jpg"], sample_tensors(f"{i}.jpg"))


def test_known_entries_ignore_unreadable_journal_parts(tmp_path):
    cache, wanted, _ = build(tmp_path, n=3)
    cache.journal_dir.mkdir(exist_ok=True)
    (cache.journal_dir / "shard-garbage.parquet").write_bytes(b"not parquet")
    assert cache.triage(wanted)[1].num_rows == 3
    assert pc.all(pc.is_valid(cache.known_entries().column("shard"))).as_py()
