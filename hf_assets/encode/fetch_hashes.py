"""Hash while fetching: samples a plan could not key without reading their bytes (a remote split's rows whose content
hash is not memoised) are keyed by the shard that fetches them to encode them, so each image is read once.

The plan leaves such rows without a key (`key` and `content_hash` null) and gives each shard whole fetch units
(row groups), so no unit is read by two shards. The shard hashes each fetched image, skips it when the cache already
holds its key (or an earlier run could not decode it), and writes what it hashed into the plan; the commit keys the
rows with those hashes and adds them to the content-hash memo, so a rerun with nothing changed reads no image.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.atomic import write_parquet_atomic
from hf_assets.cache.hashing import cache_key, content_hash
from hf_assets.encode.image_source import read_source, stamp_of

PENDING_FILE = "pending.parquet"  # <plan>/pending.parquet: the rows a shard keys as it fetches them
HASHES_DIR = "hashes"  # <plan>/hashes/shard-<k>.parquet: row, entry, content_hash, stamp of what shard k hashed
HASHED_SCHEMA = pa.schema(
    [("row", pa.int64()), ("entry", pa.string()), ("content_hash", pa.string()), ("stamp", pa.string())]
)


def shards_by_unit(units: np.ndarray, shards: int) -> np.ndarray:
    """A shard for each row, given each row's fetch unit: runs of whole units, about as many rows per shard, so no
    unit is fetched by two shards. Depends only on the units, not on the rows' order."""
    units = np.asarray(units, dtype=np.int64)
    if len(units) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(units, kind="stable")
    _, counts = np.unique(units[order], return_counts=True)
    before = np.cumsum(counts) - counts
    assignment = np.empty(len(units), np.int64)
    assignment[order] = np.repeat((before * shards) // len(units), counts)
    return assignment


class HashWhileFetching:
    """Keys the pending rows of one shard from the bytes fetched to encode them (see the module docstring)."""

    def __init__(self, entries: dict[int, str], present: set[str], flushed: set[str], carried: dict[str, str]):
        self.entries = entries  # split row -> memo entry (piece identity and row within it)
        self.present, self.flushed, self.carried_from = present, flushed, carried
        self.seen: set[str] = set()
        self.hashed: list[tuple[int, str, str, str]] = []
        self.reused = self.resumed = 0
        self.carried: dict[str, str] = {}

    def key(self, record: dict, source) -> str | None:
        """The cache key of a row to encode, or None when it needs no encoding (unreadable, cached, carried)."""
        row = int(record["row"])
        data = read_source(source)
        digest = content_hash(data) if data else ""
        self.hashed.append((row, self.entries[row], digest, stamp_of(source)))
        if not digest:
            return None
        key = cache_key(digest, record["settings_hash"])
        if key in self.seen:  # the same sample twice: encoded once, like the plan's keyed rows
            return None
        self.seen.add(key)
        if key in self.flushed:
            self.resumed += 1
        elif key in self.present:
            self.reused += 1
        elif key in self.carried_from:
            self.carried[key] = self.carried_from[key]
        else:
            return key
        return None

    def write(self, plan_dir: Path, shard: int) -> None:
        rows, entries, hashes, stamps = (list(c) for c in zip(*self.hashed)) if self.hashed else ([], [], [], [])
        table = pa.table([rows, entries, hashes, stamps], schema=HASHED_SCHEMA)
        write_parquet_atomic(table, plan_dir / HASHES_DIR / f"shard-{shard:05d}.parquet")


def fetched_hashes(plan_dir: Path) -> pa.Table:
    """What every shard of a plan hashed (HASHED_SCHEMA)."""
    import pyarrow.parquet as pq

    parts = sorted((plan_dir / HASHES_DIR).glob("shard-*.parquet"))
    return (
        pa.concat_tables([pq.read_table(p).cast(HASHED_SCHEMA) for p in parts])
        if parts
        else HASHED_SCHEMA.empty_table()
    )


def key_pending(pending: pa.Table, hashed: pa.Table) -> pa.Table:
    """The pending rows with the content hashes their shards computed ("" when unreadable); a RuntimeError naming
    examples when a shard did not hash some of them (it did not finish)."""
    at = pc.index_in(pending.column("row"), value_set=hashed.column("row"))
    if pc.any(pc.is_null(at)).as_py():
        missing = pending.filter(pc.is_null(at)).column("filename").slice(0, 3).to_pylist()
        raise RuntimeError(f"no shard hashed {missing} ...: a shard of the plan did not finish; run vae_latents again")
    return pending.set_column(
        pending.schema.get_field_index("content_hash"), "content_hash", hashed.column("content_hash").take(at)
    )
