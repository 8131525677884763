"""Shards: size-bounded, written atomically, reported only once on disk, read memory-mapped."""

import pytest
import torch
from safetensors import safe_open

from hf_assets.cache import shards as shards_mod
from hf_assets.cache.shards import ShardReader, ShardWriter, delete_shards, list_shards, stored_name
from hf_assets_tests.cache.helpers import ENTRY_BYTES, SHARD_BYTES, assert_same, sample_tensors


def test_entries_fill_shards_up_to_max_bytes(tmp_path):
    seen = []
    w = ShardWriter(tmp_path, "latents", max_bytes=SHARD_BYTES, on_flush=seen.append)
    names = [w.add(f"k{i}", sample_tensors(f"{i}.jpg"))[0] for i in range(7)]
    assert len(w.flushed) == 2 and w.buffered_keys == 1  # 3 + 3 written, 1 buffered
    assert w.flush() is not None and w.flush() is None
    assert [s.name for s in seen] == [s.name for s in w.flushed]
    assert names == [seen[0].name] * 3 + [seen[1].name] * 3 + [seen[2].name]
    assert list_shards(tmp_path) == sorted(s.name for s in seen)
    assert all(n.startswith("latents-") and n.endswith(".safetensors") for n in names)
    assert all(s.nbytes <= SHARD_BYTES for s in seen)
    assert [e.key for e in seen[1].entries] == ["k3", "k4", "k5"]
    e = seen[0].entries[0]
    assert e.tensor_names == ("latent", "embed") and e.shapes == ((4, 128, 96), (77, 768))
    assert e.dtypes == ("float32", "bfloat16") and e.nbytes == ENTRY_BYTES


def test_add_returns_stored_names_and_the_shard_holds_them(tmp_path):
    with ShardWriter(tmp_path) as w:
        shard, stored = w.add("abc", sample_tensors("5.jpg"))
    assert stored == ["abc/latent", "abc/embed"] and stored_name("abc", "latent") == "abc/latent"
    with safe_open(str(tmp_path / shard), framework="pt") as f:
        assert sorted(f.keys()) == sorted(stored)
        assert f.metadata() == {"format": shards_mod.SHARD_FORMAT}
        assert_same({"latent": f.get_tensor("abc/latent"), "embed": f.get_tensor("abc/embed")}, sample_tensors("5.jpg"))


def test_a_shard_is_reported_only_after_its_file_exists(tmp_path):
    def check(shard):
        assert (tmp_path / shard.name).is_file()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    with ShardWriter(tmp_path, max_bytes=SHARD_BYTES, on_flush=check) as w:
        for i in range(5):
            w.add(str(i), sample_tensors(f"{i}.jpg"))
    assert len(w.flushed) == 2


def test_failed_write_records_nothing_and_leaves_no_file(tmp_path, monkeypatch):
    def broken_save(tensors, path, metadata=None):
        open(path, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(shards_mod, "save_file", broken_save)
    seen = []
    w = ShardWriter(tmp_path, on_flush=seen.append)
    w.add("k", sample_tensors("1.jpg"))
    with pytest.raises(OSError, match="disk full"):
        w.flush()
    assert seen == [] and w.flushed == [] and list(tmp_path.iterdir()) == []


def test_batch_views_are_copied_not_aliased(tmp_path):
    batch = torch.randn(3, 4, 16, 16)
    expected = batch.clone()
    with ShardWriter(tmp_path) as w:
        for i in range(3):
            w.add(f"k{i}", {"latent": batch[i], "strided": batch[i, :, ::2]})
        batch.zero_()  # the caller reuses its buffer before the flush
    reader = ShardReader(tmp_path)
    shard = w.flushed[0].name
    for i in range(3):
        assert torch.equal(reader.get(shard, f"k{i}/latent"), expected[i])
        assert torch.equal(reader.get(shard, f"k{i}/strided"), expected[i, :, ::2])


def test_oversized_entry_gets_a_shard_of_its_own(tmp_path):
    with ShardWriter(tmp_path, max_bytes=1000) as w:
        w.add("small", {"x": torch.zeros(10)})
        w.add("big", {"x": torch.zeros(1000)})
        w.add("small2", {"x": torch.zeros(10)})
    assert [[e.key for e in s.entries] for s in w.flushed] == [["small"], ["big"], ["small2"]]


def test_bad_input_is_rejected(tmp_path):
    w = ShardWriter(tmp_path)
    w.add("k", {"x": torch.zeros(1)})
    with pytest.raises(ValueError, match="already"):
        w.add("k", {"x": torch.zeros(1)})
    with pytest.raises(ValueError):
        w.add("j", {})
    with pytest.raises(ValueError):
        ShardWriter(tmp_path, prefix="../x")


def test_reader_caches_handles(tmp_path, monkeypatch):
    with ShardWriter(tmp_path) as w:
        w.add("k", sample_tensors("2.jpg"))
    opened = []
    real = shards_mod.safe_open
    monkeypatch.setattr(shards_mod, "safe_open", lambda *a, **kw: opened.append(a) or real(*a, **kw))
    reader = ShardReader(tmp_path)
    shard = w.flushed[0].name
    expected = sample_tensors("2.jpg")
    assert torch.equal(reader.get(shard, "k/latent"), expected["latent"])
    assert torch.equal(reader.get(shard, "k/embed"), expected["embed"])
    assert len(opened) == 1
    reader.close()
    reader.get(shard, "k/embed")
    assert len(opened) == 2


def test_list_and_delete_shards(tmp_path):
    for name in ("a-1.safetensors", "b-2.safetensors", ".a-3.safetensors.tmp-1-0123abcd", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list_shards(tmp_path) == ["a-1.safetensors", "b-2.safetensors"]
    assert list_shards(tmp_path, prefix="a") == ["a-1.safetensors"]
    assert list_shards(tmp_path / "missing") == []
    assert delete_shards(tmp_path, ["a-1.safetensors", "zz-9.safetensors"]) == ["a-1.safetensors"]
    assert list_shards(tmp_path) == ["b-2.safetensors"]
    with pytest.raises(ValueError):
        delete_shards(tmp_path, ["notes.txt"])
