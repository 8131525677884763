"""Arrow tables persisted as Parquet plus a JSON manifest, written atomically (whole, or in pieces as they are made)
and read back whole, by columns or in batches."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hf_assets.cache.atomic import atomic_writer, write_json_atomic, write_parquet_atomic

FORMAT_VERSION = 1
ROW_GROUP_ROWS = 1 << 17  # rows a table written in pieces gathers before writing a row group
BATCH_ROWS = 1 << 17  # rows a TableFile reads at once


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


@dataclass(frozen=True)
class TableFile:
    """A table stored as Parquet beside the caches, read when asked: whole, by columns, or batch by batch."""

    path: Path
    num_rows: int
    schema: pa.Schema

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The table (only `columns` when given)."""
        return pq.read_table(self.path, columns=columns, memory_map=True)

    def batches(self, columns: list[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        """The table in order, `rows` rows at a time (only `columns` when given); the schema's metadata kept."""
        schema = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        schema = schema.with_metadata(self.schema.metadata or {})
        for batch in pq.ParquetFile(self.path, memory_map=True).iter_batches(rows, columns=columns):
            yield pa.Table.from_batches([batch]).cast(schema)


def open_table_file(directory: Path, name: str) -> TableFile:
    """Table `name` of `directory`, unread; a clear error when it was never materialized."""
    parquet_path, manifest_path = table_paths(directory, name)
    if not manifest_path.is_file() or not parquet_path.is_file():
        raise FileNotFoundError(f"{name} has not been materialized yet: {parquet_path} is missing")
    metadata = pq.read_metadata(parquet_path)
    return TableFile(parquet_path, metadata.num_rows, metadata.schema.to_arrow_schema())


def column_encodings(table: pa.Table) -> dict[str, Any]:
    """Parquet writer options fitted to a table's first piece: dictionary pages only for flat columns with few
    distinct values there (bucket names, sizes, drop reasons), statistics only for flat non-text columns. Unique
    text (file names, captions) gains nothing from either and cost about half the write time of a bucket table."""
    flat = [f for f in table.schema if not pa.types.is_nested(f.type)]
    few = max(1000, table.num_rows // 10)
    dictionary = [f.name for f in flat if _few_distinct(table.column(f.name), few)]
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    statistics = [f.name for f in flat if not any(is_text(f.type) for is_text in text)]
    return {"use_dictionary": dictionary, "write_statistics": statistics}


def _few_distinct(column: pa.ChunkedArray, few: int) -> bool:
    """At most `few` distinct values. A column whose first 4,096 values already hold more than 1,000 is taken to
    have many without counting the rest: hashing every unique file name or caption cost more than the write."""
    head = column.slice(0, 4096)
    if len(head) < len(column) and pc.count_distinct(head).as_py() > 1000:
        return False
    return pc.count_distinct(column).as_py() <= few


class TableSink:
    """Receives a table piece by piece; rows are gathered into row groups of about ROW_GROUP_ROWS. The Parquet
    writer opens with the first row group, its encodings fitted to it (`column_encodings`)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows = path, schema, 0
        self.writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        """Append `table`'s rows (cast to the sink's schema)."""
        if table.num_rows == 0:
            return
        self._pending.append(table.cast(self.schema))
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, self.schema, **column_encodings(table))
            self.writer.write_table(table, row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        """Write what is pending and close the file (a table of no rows still gets its schema)."""
        self.flush()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.close()


@contextmanager
def table_writer(directory: Path, name: str, schema: pa.Schema, meta: dict[str, Any] | None = None):
    """Write table `name` piece by piece (`TableSink.write`): on success it replaces the old file atomically, then
    its manifest is written (last: it marks the table complete); on error nothing changes."""
    parquet_path, manifest_path = table_paths(directory, name)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_writer(parquet_path) as tmp:
        sink = TableSink(tmp, schema)
        try:
            yield sink
        except BaseException:
            if sink.writer is not None:
                sink.writer.close()  # atomic_writer then removes the partial file
            raise
        sink.close()
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "rows": sink.rows,
        "columns": schema.names,
        "written_at": time.time(),
        **(meta or {}),
    }
    write_json_atomic(manifest, manifest_path)
