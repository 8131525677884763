"""LazyTensorMapping: manifest-only construction, exact round trips, grouped caption variants."""

import pickle

import pyarrow as pa
import pytest
import torch

from hf_assets.cache import shards as shards_mod
from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.hashing import content_hash, settings_hash
from hf_assets.cache.reader import LazyTensorMapping
from hf_assets_tests.cache.helpers import SHARD_BYTES, assert_same, encode_all, sample_tensors, wanted_table

MIXED = {
    "latent": ((4, 128, 96), torch.float32),
    "latent_std": ((4, 128, 96), torch.bfloat16),
    "embed": ((77, 768), torch.float16),
    "pooled": ((1280,), torch.float32),
    "time_ids": ((6,), torch.bfloat16),
    "mask": ((77,), torch.int64),
    "scalar": ((), torch.float32),
}


def mixed_tensors(i: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    out = {}
    for name, (shape, dtype) in MIXED.items():
        t = torch.randint(0, 2, shape, generator=g) if dtype == torch.int64 else torch.randn(shape, generator=g)
        out[name] = t.to(dtype)
    return out


@pytest.fixture
def latents(tmp_path):
    cache = EncodedCache(tmp_path / "latents", max_bytes=SHARD_BYTES)
    wanted = wanted_table(7)
    encode_all(cache, cache.triage(wanted)[0])
    cache.commit(wanted, {"scaling_factor": 0.18215, "shift_factor": 0.0, "vae": "sd15"})
    return cache.directory


def test_construction_reads_only_the_manifest(latents, monkeypatch):
    opened = []
    real = shards_mod.safe_open
    monkeypatch.setattr(shards_mod, "safe_open", lambda *a, **kw: opened.append(a[0]) or real(*a, **kw))
    m = LazyTensorMapping(latents)
    assert len(m) == 7 and sorted(m) == sorted(f"{i}.jpg" for i in range(7)) and "3.jpg" in m and "x" not in m
    assert m.meta["scaling_factor"] == 0.18215 and m.manifest.num_rows == 7
    assert m.row("3.jpg")["target_width"] == 768 and m.row("3.jpg")["shapes"] == [[4, 128, 96], [77, 768]]
    assert opened == []
    assert_same(m["3.jpg"], sample_tensors("3.jpg"))
    assert len(opened) == 1
    m["4.jpg"], m["5.jpg"]  # same shard as 3: handle reused; 6 is in the third shard
    assert torch.equal(m.tensor("6.jpg", "embed"), sample_tensors("6.jpg")["embed"])
    assert len(opened) == 2
    with pytest.raises(KeyError):
        m["missing.jpg"]
    with pytest.raises(KeyError, match="no tensor"):
        m.tensor("3.jpg", "nope")


def test_construction_works_without_shards_until_a_tensor_is_read(latents):
    for p in (latents / "shards").iterdir():
        p.unlink()
    m = LazyTensorMapping(latents)
    assert len(m) == 7
    with pytest.raises(OSError):  # FileNotFoundError, or UnreadableShard naming the missing file
        m["0.jpg"]


def test_uncommitted_cache_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never committed"):
        LazyTensorMapping(tmp_path)


def test_fp32_bf16_fp16_and_odd_shapes_round_trip_exactly(tmp_path):
    cache = EncodedCache(tmp_path, max_bytes=4 << 20)
    wanted = wanted_table(5)
    to_encode, _ = cache.triage(wanted)
    with cache.writer() as w:
        for i, key in enumerate(to_encode.column("key").to_pylist()):
            w.add(key, mixed_tensors(i))
    cache.commit(wanted)
    m = LazyTensorMapping(tmp_path)
    for i in range(5):
        assert_same(m[f"{i}.jpg"], mixed_tensors(i))
    assert m.row("0.jpg")["dtypes"] == ["float32", "bfloat16", "float16", "float32", "bfloat16", "int64", "float32"]
    assert m.row("0.jpg")["shapes"][-1] == []


def captions_wanted(files: dict[str, list[str]]) -> pa.Table:
    s = settings_hash({"text_encoder": "clip-l", "max_length": 77})
    rows = [(f, v, c) for f, caps in files.items() for v, c in enumerate(caps)]
    rows.reverse()  # variant order must come from the column, not the table order
    return pa.table(
        {
            "filename": [r[0] for r in rows],
            "variant": pa.array([r[1] for r in rows], pa.int32()),
            "caption": [r[2] for r in rows],
            "content_hash": [content_hash(r[2].encode()) for r in rows],
            "settings_hash": [s] * len(rows),
        }
    )


def embed_for(caption: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(int(content_hash(caption.encode())[:8], 16))
    return {"embed": torch.randn(77, 768, generator=g).to(torch.bfloat16), "pooled": torch.randn(768, generator=g)}


def test_grouped_mode_returns_variants_in_order(tmp_path):
    files = {"0.jpg": ["a cat", "a cat on a mat"], "1.jpg": ["a dog"], "2.jpg": ["a cat", "sky", "tree"]}
    wanted = captions_wanted(files)
    cache = EncodedCache(tmp_path, max_bytes=SHARD_BYTES)
    to_encode, _ = cache.triage(wanted)
    assert sorted(to_encode.column("caption").to_pylist()) == ["a cat", "a cat on a mat", "a dog", "sky", "tree"]
    with cache.writer() as w:
        for row in to_encode.to_pylist():
            w.add(row["key"], embed_for(row["caption"]))
    cache.commit(wanted)
    m = LazyTensorMapping(tmp_path, group=True)
    assert len(m) == 3
    for f, caps in files.items():
        got = m[f]
        assert len(got) == len(caps)
        for variant, cap in zip(got, caps):
            assert_same(variant, embed_for(cap))
        assert [r["caption"] for r in m.rows(f)] == caps and m.row(f)["variant"] == 0
    assert torch.equal(m.tensor("2.jpg", "pooled", variant=2), embed_for("tree")["pooled"])
    with pytest.raises(ValueError, match="group=True"):
        LazyTensorMapping(tmp_path)
    by_caption = LazyTensorMapping(tmp_path, key_column="caption", group=True)
    assert len(by_caption["a cat"]) == 2


def test_other_key_column_and_pickling_for_workers(latents):
    m = LazyTensorMapping(latents, key_column="content_hash")
    h = m.manifest.column("content_hash")[2].as_py()
    assert_same(m[h], sample_tensors("2.jpg"))
    clone = pickle.loads(pickle.dumps(m))
    assert_same(clone[h], sample_tensors("2.jpg"))
    with pytest.raises(KeyError, match="nope"):
        LazyTensorMapping(latents, key_column="nope")


def test_empty_committed_cache_reads_as_empty(tmp_path):
    EncodedCache(tmp_path).commit(wanted_table(0), {"scaling_factor": 1.0})
    m = LazyTensorMapping(tmp_path)
    assert len(m) == 0 and list(m) == [] and m.meta["scaling_factor"] == 1.0
