"""Hashes: stable, canonical (order and spelling insensitive), sensitive to every value."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_assets.cache.hashing import (
    cache_key,
    cache_keys,
    canonical_json,
    content_hash,
    file_stamp,
    fingerprint_of,
    row_settings_hash,
    settings_hash,
    text_hash,
)


# Pinned digests: a change here re-keys every cache on disk, so it must be deliberate (and bump the format).
def test_content_hash_is_blake2b_128_hex():
    assert content_hash(b"abc") == "cf4ab791c62b8d2b2109c90275287816"  # the blake2b-128 test vector of "abc"
    assert content_hash(b"") == "cae66941d9efbd404e4d88758ea67670"
    assert content_hash(memoryview(b"abc")) == content_hash(bytearray(b"abc"))
    assert content_hash(b"abc") != content_hash(b"abd")


def test_caption_and_row_hashes_are_pinned():
    assert text_hash("a photo of a cat") == "6f315aebb0b1d85dee63a3e27abcc051"
    assert text_hash("é") == content_hash("é".encode())  # UTF-8
    shared = "0f3fe4709375dd96403d6ebb1bd9d690"
    assert row_settings_hash(shared, [0, 0, 64, 48, 64, 48]) == "f3afcce4040ab083a3c8bf931024f9a4"
    assert row_settings_hash(shared, [0, 0, 64, 48, 64, 49]) != row_settings_hash(shared, [0, 0, 64, 48, 64, 48])


def test_fingerprint_of_strings_is_pinned_and_keeps_their_boundaries():
    assert fingerprint_of(["a", "b"]) == "08b1e8b75c8635d39c23d0ebbd825af4"
    assert fingerprint_of(["ab"]) == "29ec5944eb10b4b4aaad6e4654a2c979"
    assert fingerprint_of(iter(["a", "b"])) == fingerprint_of(["a", "b"])


def test_file_stamp_is_size_and_mtime_and_none_when_absent(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"12345")
    os.utime(path, ns=(1_000_000_123, 2_000_000_456))
    assert file_stamp(path) == "5:2000000456" == file_stamp(str(path))
    path.write_bytes(b"123456")
    assert file_stamp(path).startswith("6:")
    assert file_stamp(tmp_path / "gone.bin") is None


def test_settings_hash_ignores_key_order_and_spelling():
    a = {"vae": "x", "target": (768, 1024), "scale": 1.0, "dtype": torch.bfloat16}
    b = {"dtype": "torch.bfloat16", "scale": 1, "target": [768, 1024], "vae": "x"}
    assert settings_hash(a) == settings_hash(b)
    assert canonical_json(a) == '{"dtype":"torch.bfloat16","scale":1,"target":[768,1024],"vae":"x"}'
    assert settings_hash(a) == "0f3fe4709375dd96403d6ebb1bd9d690"


@pytest.mark.parametrize(
    "change",
    [{"vae": "y"}, {"target": [768, 1023]}, {"crop": [0, 1, 768, 1024]}, {"max_length": 78}, {"extra": None}],
)
def test_settings_hash_changes_with_every_setting(change):
    base = {"vae": "x", "target": [768, 1024], "crop": [0, 0, 768, 1024], "max_length": 77}
    assert settings_hash(base) != settings_hash({**base, **change})


def test_settings_hash_accepts_numpy_paths_sets_and_dataclasses():
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        size: int
        path: Path

    obj = {"n": np.int64(3), "f": np.float32(0.5), "s": {"b", "a"}, "cfg": Cfg(2, Path("/m")), "t": torch.tensor(1)}
    assert canonical_json(obj) == '{"cfg":{"path":"/m","size":2},"f":0.5,"n":3,"s":["a","b"],"t":1}'
    with pytest.raises(TypeError, match="object"):
        settings_hash({"bad": object()})


def test_cache_key_depends_on_both_hashes_and_vectorises():
    c, s = content_hash(b"img"), settings_hash({"a": 1})
    assert (c, s) == ("d0a646a2080d6f202c2bd642525262bf", "2c6b113b8dd15ffbded9860b43eb0c6c")
    assert cache_key(c, s) == "c75501ce8af4cf321ef4afcd85a7f346"
    assert cache_key(c, s) != cache_key(c, settings_hash({"a": 2}))
    assert cache_key(c, s) != cache_key(content_hash(b"img2"), s)
    assert cache_keys([c, c], [s, s]).to_pylist() == [cache_key(c, s)] * 2
    with pytest.raises(ValueError):
        cache_keys([c], [s, s])
    with pytest.raises(ValueError):
        cache_keys([None], [s])
