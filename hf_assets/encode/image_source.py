"""Read the undecoded image of chosen rows, and hash those bytes to key caches by content."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from hf_assets.cache.hashing import content_hash
from hf_assets.cache.tables import load_manifest, load_table, save_table
from hf_assets.data.sources import RawSplit

CHUNK_ROWS = 256
HASH_TABLE = "content_hashes"


def iter_images(split: RawSplit, image_column: str, rows: np.ndarray) -> Iterator[bytes | str | None]:
    """For each row: its image bytes, else its file path, else None; reads `CHUNK_ROWS` rows at a time."""
    column = split.table.column(image_column)
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = column.take(pa.array(rows[start : start + CHUNK_ROWS], pa.int64())).combine_chunks()
        if pa.types.is_struct(chunk.type):
            data = chunk.field("bytes").to_pylist()
            paths = chunk.field("path").to_pylist() if chunk.type.get_field_index("path") >= 0 else [None] * len(data)
        elif pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
            data, paths = [None] * len(chunk), chunk.to_pylist()
        else:
            data, paths = chunk.to_pylist(), [None] * len(chunk)
        for blob, path in zip(data, paths):
            yield blob if blob else _absolute(path, split.base_dir)


def _absolute(path: str | None, base: Path | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    return str(p if p.is_absolute() or base is None else base / p)


def read_source(source: bytes | str | None) -> bytes | None:
    """The bytes of a source from `iter_images` (reads files), None when there is none or it cannot be read."""
    if source is None or isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError:
        return None


def content_hashes(split: RawSplit, image_column: str, rows: np.ndarray, memo_dir: Path | None = None) -> pa.Array:
    """blake2b of each row's image bytes ("" when unreadable); reused from `memo_dir` while the split is unchanged."""
    rows = np.asarray(rows, dtype=np.int64)
    known: dict[int, str] = {}
    if memo_dir is not None and load_manifest(memo_dir, HASH_TABLE).get("fingerprint") == split.fingerprint:
        memo = load_table(memo_dir, HASH_TABLE)
        known = dict(zip(memo.column("row").to_numpy().tolist(), memo.column("content_hash").to_pylist()))
    todo = np.array([r for r in rows.tolist() if r not in known], dtype=np.int64)
    for row, source in zip(todo.tolist(), iter_images(split, image_column, todo)):
        data = read_source(source)
        known[row] = content_hash(data) if data else ""
    if memo_dir is not None and len(todo):
        table = pa.table({"row": pa.array(list(known), pa.int64()), "content_hash": pa.array(list(known.values()))})
        save_table(memo_dir, HASH_TABLE, table, {"fingerprint": split.fingerprint})
    return pa.array([known[r] for r in rows.tolist()], pa.string())
