"""Small Arrow tables persisted as Parquet plus a JSON manifest, written atomically and read memory-mapped."""

import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.cache.atomic import write_json_atomic, write_parquet_atomic

FORMAT_VERSION = 1


def table_paths(directory: Path, name: str) -> tuple[Path, Path]:
    """The Parquet file and JSON manifest of table `name` in `directory`."""
    return directory / f"{name}.parquet", directory / f"{name}.json"


def save_table(directory: Path, name: str, table: pa.Table, meta: dict[str, Any] | None = None) -> Path:
    """Write `table` and its manifest atomically; the manifest is written last, so it marks completion."""
    parquet_path, manifest_path = table_paths(directory, name)
    directory.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(table, parquet_path)
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "rows": table.num_rows,
        "columns": table.schema.names,
        "written_at": time.time(),
        **(meta or {}),
    }
    write_json_atomic(manifest, manifest_path)
    return parquet_path


def load_table(directory: Path, name: str) -> pa.Table:
    """Read table `name` memory-mapped; a clear error when it was never materialized."""
    parquet_path, manifest_path = table_paths(directory, name)
    if not manifest_path.is_file() or not parquet_path.is_file():
        raise FileNotFoundError(f"{name} has not been materialized yet: {parquet_path} is missing")
    return pq.read_table(parquet_path, memory_map=True)


def load_manifest(directory: Path, name: str) -> dict[str, Any]:
    """The JSON manifest of table `name`, or {} when absent."""
    manifest_path = table_paths(directory, name)[1]
    return json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
