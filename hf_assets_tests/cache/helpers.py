"""Deterministic samples for cache tests: realistic latent / text-embedding shapes, tiny counts."""

import pyarrow as pa
import torch

from hf_assets.cache.hashing import content_hash, settings_hash

LATENT_SHAPE = (4, 128, 96)  # SD VAE latent of a 1024x768 image
EMBED_SHAPE = (77, 768)  # CLIP-L text embedding
ENTRY_BYTES = 4 * 128 * 96 * 4 + 77 * 768 * 2  # fp32 latent + bf16 embedding = 314_880
SHARD_BYTES = 1 << 20  # three entries per shard
SETTINGS = {"vae": "sd15-vae@abc", "dtype": "float32", "target": [768, 1024], "crop": [0, 0, 768, 1024]}


def image_bytes(i: int) -> bytes:
    """Stand-in for an image file's bytes."""
    return f"jpeg-bytes-of-image-{i}".encode()


def wanted_table(n: int, settings: dict | None = None, start: int = 0) -> pa.Table:
    """A wanted table of `n` images with their content and settings hashes."""
    s = settings_hash(settings or SETTINGS)
    ids = range(start, start + n)
    return pa.table(
        {
            "filename": [f"{i}.jpg" for i in ids],
            "content_hash": [content_hash(image_bytes(i)) for i in ids],
            "settings_hash": [s] * n,
            "target_width": pa.array([768] * n, pa.int32()),
        }
    )


def sample_tensors(filename: str) -> dict[str, torch.Tensor]:
    """Deterministic tensors for one sample, from its file name."""
    g = torch.Generator().manual_seed(int(filename.split(".")[0]))
    return {
        "latent": torch.randn(LATENT_SHAPE, generator=g),
        "embed": torch.randn(EMBED_SHAPE, generator=g).to(torch.bfloat16),
    }


def encode_all(cache, to_encode: pa.Table, max_bytes: int = SHARD_BYTES) -> list[str]:
    """Encode every row triage sent to encode into `cache`; return the file names encoded."""
    done = []
    with cache.writer(max_bytes=max_bytes) as w:
        for row in to_encode.select(["key", "filename"]).to_pylist():
            w.add(row["key"], sample_tensors(row["filename"]))
            done.append(row["filename"])
    return done


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Exact equality of two tensor dicts, dtype and shape included."""
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert torch.equal(a[name], b[name]), name
