"""A damaged cache repairs itself: the next plan re-encodes what cannot be read back, and says what it found."""

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_assets.cache import verify
from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.manifest import MANIFEST_FILE
from hf_assets.cache.reader import LazyTensorMapping
from hf_assets.cache.repairs import read_repairs
from hf_assets.cache.shards import UnreadableShard, list_shards
from hf_assets_tests.cache.helpers import SHARD_BYTES, assert_same, encode_all, sample_tensors, wanted_table

N = 9  # three shards of three entries


def committed(tmp_path) -> tuple[EncodedCache, object]:
    cache = EncodedCache(tmp_path / "cache", max_bytes=SHARD_BYTES)
    wanted = wanted_table(N)
    encode_all(cache, cache.triage(wanted)[0])
    cache.commit(wanted, {"scaling_factor": 0.13})
    return cache, wanted


def shard_of(cache, filename: str) -> str:
    rows = cache.read().table.select(["filename", "shard"]).to_pylist()
    return next(r["shard"] for r in rows if r["filename"] == filename)


def rerun(cache_dir) -> tuple[EncodedCache, list[str]]:
    """A new process's run: plan, encode what is missing, commit."""
    cache = EncodedCache(cache_dir, max_bytes=SHARD_BYTES)
    wanted = wanted_table(N)
    to_encode, _ = cache.triage(wanted)
    done = encode_all(cache, to_encode)
    cache.commit(wanted, {"scaling_factor": 0.13})
    return cache, done


def assert_complete_and_clean(cache) -> None:
    m = LazyTensorMapping(cache.directory)
    assert len(m) == N
    for i in range(N):
        assert_same(m[f"{i}.jpg"], sample_tensors(f"{i}.jpg"))
    assert verify.nonfinite_tensors(cache.directory).passed
    assert set(list_shards(cache.shards_dir)) == cache.read().shards()


def flip_header_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[12] ^= 0x5A  # inside the JSON header
    path.write_bytes(bytes(data))


def truncate(path) -> None:
    path.write_bytes(path.read_bytes()[:-1000])


@pytest.mark.parametrize("damage", [flip_header_byte, truncate], ids=["flipped_header_byte", "truncated"])
def test_an_unreadable_shard_is_named_and_its_entries_encoded_again(tmp_path, damage):
    cache, _ = committed(tmp_path)
    bad = shard_of(cache, "4.jpg")
    damage(cache.shards_dir / bad)
    with pytest.raises(UnreadableShard, match=bad):  # a trainer's read names the file and the fix
        LazyTensorMapping(cache.directory)["4.jpg"]

    cache, done = rerun(cache.directory)
    assert done == ["3.jpg", "4.jpg", "5.jpg"]
    repairs = read_repairs(cache.directory)
    assert list(repairs["unreadable_shards"]) == [bad] and repairs["unreadable_entries"] == 3
    assert bad not in list_shards(cache.shards_dir)
    assert_complete_and_clean(cache)
    assert rerun(cache.directory)[1] == [] and read_repairs(cache.directory)["unreadable_shards"] == {}


def test_a_nan_entry_is_encoded_again_and_the_finite_check_passes(tmp_path):
    cache, _ = committed(tmp_path)
    shard = cache.shards_dir / shard_of(cache, "7.jpg")
    key = cache.read().table.to_pylist()[7]["key"]
    tensors = load_file(shard)
    tensors[f"{key}/latent"][0, 0, 0] = float("nan")
    save_file(tensors, shard)
    assert verify.nonfinite_tensors(cache.directory).examples == [f"{key}/latent"]

    cache, done = rerun(cache.directory)
    assert done == ["7.jpg"]
    repairs = read_repairs(cache.directory)
    assert repairs["nonfinite_entries"] == 1 and repairs["reencoded_nonfinite"] == 1
    assert_complete_and_clean(cache)  # the old copy stays in a shard others use, but nothing points at it


@pytest.mark.parametrize("how", ["deleted", "garbled"])
def test_a_lost_manifest_is_rebuilt_from_the_shards_without_encoding(tmp_path, how):
    cache, _ = committed(tmp_path)
    path = cache.directory / MANIFEST_FILE
    if how == "deleted":
        path.unlink()
    else:
        path.write_bytes(b"PAR1 this is not parquet")
    cache, done = rerun(cache.directory)
    assert done == []
    repairs = read_repairs(cache.directory)
    assert repairs["recovered_entries"] == N and MANIFEST_FILE in repairs["manifest"]
    assert_complete_and_clean(cache)
    assert cache.read().meta["scaling_factor"] == 0.13


def test_a_shard_header_is_checked_against_the_file_size(tmp_path):
    from hf_assets.cache.health import CorruptShard, read_header

    path = tmp_path / "x.safetensors"
    save_file({"k/mean": torch.zeros(4, 8, 8)}, path)
    assert read_header(path)["k/mean"]["shape"] == [4, 8, 8]
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(CorruptShard, match="file has"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(CorruptShard, match="exceeds the file"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 2) + json.dumps({}).encode()[:1] + b"x")
    with pytest.raises(CorruptShard, match="not valid JSON"):
        read_header(path)
