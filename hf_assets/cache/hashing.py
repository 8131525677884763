"""Content and settings hashes that key every cache entry (blake2b, 128-bit, hex)."""

import dataclasses
import enum
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

DIGEST_SIZE = 16  # bytes: 128-bit, 32 hex characters


def content_hash(data: bytes | bytearray | memoryview) -> str:
    """The blake2b-128 hex digest of raw bytes (e.g. an image file's bytes)."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


def fingerprint_of(parts: Iterable[str]) -> str:
    """A stable blake2b-128 hex digest of a sequence of strings (each one ended by NUL, so splits cannot collide)."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


def file_stamp(path: str | os.PathLike) -> str | None:
    """'size:mtime_ns' of a file: unchanged, it need not be read again. None when the file does not exist
    (any other OSError, e.g. a permission error, is raised)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def text_hash(text: str) -> str:
    """The content hash of a text (its UTF-8 bytes): a caption's content hash."""
    return content_hash(text.encode())


def row_settings_hash(shared: str, row_part: Any) -> str:
    """The settings hash of one row: the settings hash all rows share, joined with the row's own part
    (a latent's geometry list); `str(row_part)` must spell equal parts alike."""
    return content_hash(f"{shared}|{row_part}".encode())


def _canonical(obj: Any) -> Any:
    """Turn `obj` into plain JSON types with a single spelling per value."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return _canonical(obj.value)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return repr(obj)
        return int(obj) if obj.is_integer() else obj  # 1.0 and 1 are the same setting
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"settings_hash: mapping key {k!r} ({type(k).__name__}) is not a scalar")
            out[str(k)] = _canonical(v)
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_canonical(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (bytes, bytearray)):
        return {"__bytes_blake2b__": content_hash(obj)}
    if callable(getattr(obj, "item", None)) and getattr(obj, "ndim", None) == 0:
        return _canonical(obj.item())  # numpy / torch scalars
    if type(obj).__name__.lower().endswith("dtype"):  # torch.dtype, numpy dtypes
        return str(obj)
    raise TypeError(f"settings_hash: cannot canonicalise {type(obj).__name__} value {obj!r}")


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys; equal settings always give the same string."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def settings_hash(obj: Mapping[str, Any]) -> str:
    """The blake2b-128 hex digest of the canonical JSON of every setting that changes a result."""
    return content_hash(canonical_json(obj).encode())


def cache_key(content: str, settings: str) -> str:
    """The cache key of one sample: a hash of its content hash and its settings hash."""
    return content_hash(f"{content}:{settings}".encode())


def _as_list(values: Iterable[str] | pa.Array | pa.ChunkedArray) -> list:
    return values.to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else list(values)


def cache_keys(content_hashes: Iterable[str] | pa.Array, settings_hashes: Iterable[str] | pa.Array) -> pa.StringArray:
    """Vectorised `cache_key` over two equal-length columns (no nulls allowed)."""
    cs, ss = _as_list(content_hashes), _as_list(settings_hashes)
    if len(cs) != len(ss):
        raise ValueError(f"cache_keys: {len(cs)} content hashes but {len(ss)} settings hashes")
    if any(v is None for v in cs) or any(v is None for v in ss):
        raise ValueError("cache_keys: content_hash and settings_hash must not be null")
    return pa.array([cache_key(c, s) for c, s in zip(cs, ss)], type=pa.string())
