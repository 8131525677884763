"""Random reads of a page body stored as is or snappy-compressed give its bytes, reading little more than asked."""

import random
import struct

import pyarrow as pa
import pytest

from hf_assets.data.parquet_pages import ByteRanges
from hf_assets.data.sparse_stream import CachedRanges, PlainStream, SnappyStream, plain_values_at
from hf_assets_tests.imagegen import encode_image


def values() -> list[bytes]:
    """JPEGs (incompressible, long literals), repetitive text (copies, copies that overlap themselves), tiny and
    empty values, in a shuffled order."""
    rng = random.Random(0)
    out = [encode_image(120 + 13 * i, 90 + 7 * i, "JPEG", seed=i) for i in range(24)]
    out += [b"abc" * rng.randint(1, 4000) for _ in range(8)] + [b"x" * rng.randint(0, 300) for _ in range(8)]
    out += [b"", bytes(rng.randrange(256) for _ in range(70_000))]
    rng.shuffle(out)
    return out


def stored(tmp_path, body: bytes):
    """A file with the body between other bytes, and a stream factory over it (a fresh cache each time)."""
    path = tmp_path / "page.bin"
    path.write_bytes(b"HEADER" + body + b"TRAILER")
    ranges = ByteRanges(None, str(path))
    return ranges, lambda cls: cls(CachedRanges(ranges, 6, len(body)), 0, len(body))


@pytest.mark.parametrize("codec", ["snappy", None])
def test_random_reads_equal_the_uncompressed_bytes(tmp_path, codec):
    raw = b"".join(struct.pack("<I", len(v)) + v for v in values())
    body = pa.compress(raw, codec="snappy", asbytes=True) if codec else raw
    ranges, stream = stored(tmp_path, body)
    rng = random.Random(1)
    for _ in range(200):
        pos, n = rng.randrange(len(raw)), rng.choice([1, 4, 100, 5000, 80_000])
        assert stream(SnappyStream if codec else PlainStream).read(pos, n) == raw[pos : pos + n]
    one = stream(SnappyStream if codec else PlainStream)
    assert one.size == len(raw) and one.read(len(raw) - 3, 10) == raw[-3:] and one.read(len(raw), 5) == b""


@pytest.mark.parametrize("codec", ["snappy", None])
def test_chosen_values_cost_their_bytes_and_a_little_per_value_walked(tmp_path, codec):
    items = values()
    raw = b"".join(struct.pack("<I", len(v)) + v for v in items)
    body = pa.compress(raw, codec="snappy", asbytes=True) if codec else raw
    ranges, stream = stored(tmp_path, body)
    chosen = [k for k, v in enumerate(items) if len(v) > 10_000 and v[:3] != b"abc"][:3]  # nearly incompressible
    got = plain_values_at(stream(SnappyStream if codec else PlainStream), 0, chosen)
    assert got == {k: items[k] for k in chosen}
    wanted = sum(len(items[k]) for k in chosen)
    assert 0.99 * wanted <= ranges.bytes_read <= wanted + 200 * (max(chosen) + 1) < len(body) / 2


def test_a_corrupt_stream_is_an_error_not_garbage(tmp_path):
    raw = b"".join(struct.pack("<I", len(v)) + v for v in values())
    body = bytearray(pa.compress(raw, codec="snappy", asbytes=True))
    body[1:4] = bytes([0b10, 0xFF, 0x7F])  # the first element: a copy from before the start
    _, stream = stored(tmp_path, bytes(body))
    with pytest.raises(ValueError, match="corrupt snappy stream"):
        stream(SnappyStream).read(0, 100)
