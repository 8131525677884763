"""The Parquet manifest of a cache: one row per wanted sample, pointing at its tensors in a shard."""

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hf_assets.cache.atomic import write_json_atomic, write_parquet_atomic
from hf_assets.cache.shards import FlushedShard

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.parquet"
META_FILE = "manifest.json"
SHARDS_DIR = "shards"
JOURNAL_DIR = "journal"
_META_KEY = b"hf_assets.cache.meta"

# Where an entry's tensors live; tensor i is stored in `shard` under f"{key}/{tensor_names[i]}".
ENTRY_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("tensor_names", pa.list_(pa.string())),
        pa.field("shapes", pa.list_(pa.list_(pa.int32()))),
        pa.field("dtypes", pa.list_(pa.string())),
        pa.field("dtype", pa.string()),
        pa.field("nbytes", pa.int64()),
    ]
)
LOCATION_COLUMNS = tuple(f.name for f in ENTRY_SCHEMA if f.name != "key")
HASH_COLUMNS = ("content_hash", "settings_hash")
REQUIRED_COLUMNS = ("key", *HASH_COLUMNS, *LOCATION_COLUMNS)


def entries_table(shards: Iterable[FlushedShard]) -> pa.Table:
    """The ENTRY_SCHEMA table of every entry in the given flushed shards."""
    rows: dict[str, list] = {name: [] for name in ENTRY_SCHEMA.names}
    for shard in shards:
        for e in shard.entries:
            rows["key"].append(e.key)
            rows["shard"].append(shard.name)
            rows["tensor_names"].append(list(e.tensor_names))
            rows["shapes"].append([list(s) for s in e.shapes])
            rows["dtypes"].append(list(e.dtypes))
            rows["dtype"].append(e.dtypes[0] if len(set(e.dtypes)) == 1 else "mixed")
            rows["nbytes"].append(e.nbytes)
    return pa.Table.from_pydict(rows, schema=ENTRY_SCHEMA)


def first_per_key(table: pa.Table) -> pa.Table:
    """Keep the first row of each distinct `key`, in table order."""
    if table.num_rows == 0:
        return table
    keys = table.column("key")
    first = pc.index_in(pc.unique(keys), value_set=keys)  # index of first occurrence of each key
    return table.take(first.take(pc.sort_indices(first)))


def _empty_manifest_table() -> pa.Table:
    fields = [ENTRY_SCHEMA.field("key"), *(pa.field(c, pa.string()) for c in HASH_COLUMNS)]
    fields += [f for f in ENTRY_SCHEMA if f.name != "key"]
    return pa.schema(fields).empty_table()


@dataclass
class Manifest:
    """A cache's manifest table and its cache-level metadata (`manifest.json`)."""

    table: pa.Table = field(default_factory=_empty_manifest_table)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows

    def shards(self) -> set[str]:
        """Names of the shards referenced by at least one row."""
        return set(pc.unique(self.table.column("shard")).to_pylist()) if len(self) else set()

    def entries(self) -> pa.Table:
        """The location table (ENTRY_SCHEMA), one row per distinct key."""
        return first_per_key(self.table.select(ENTRY_SCHEMA.names)).cast(ENTRY_SCHEMA)


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """Read `manifest.parquet` (memory-mapped) and its metadata; an empty Manifest if absent."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    meta_path = directory / META_FILE
    if not path.exists():
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return Manifest(meta=meta)
    table = pq.read_table(path, memory_map=True)
    embedded = (table.schema.metadata or {}).get(_META_KEY)
    if embedded is not None:  # written in the same atomic rename as the table
        meta = json.loads(embedded)
    else:
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    version = meta.get("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has cache format_version {version}; this code reads up to {FORMAT_VERSION}: upgrade hf_assets"
        )
    return Manifest(table=table.replace_schema_metadata(None), meta=meta)


def write_manifest(directory: str | os.PathLike, table: pa.Table, meta: Mapping[str, Any]) -> Path:
    """Atomically write `manifest.parquet` (meta embedded) and the `manifest.json` sidecar."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"write_manifest: table lacks required column(s) {missing}")
    directory = Path(directory)
    meta = {**dict(meta), "format_version": FORMAT_VERSION}
    encoded = json.dumps(meta, sort_keys=True).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: encoded})
    path = write_parquet_atomic(table, directory / MANIFEST_FILE)
    write_json_atomic(meta, directory / META_FILE)
    return path
