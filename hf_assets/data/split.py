"""One split of a backend, whatever its storage: pieces that read chosen columns lazily, and where they came from."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from hf_assets.config.schema import CaptionConfig

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
BATCH_ROWS = 1 << 18  # rows of metadata columns read at once; row groups larger than this are read alone


class DatasetNotFound(FileNotFoundError):
    """The configured dataset could not be opened; says what was tried."""


@dataclass(frozen=True)
class TablePiece:
    """Rows already held as a (memory-mapped) Arrow table: a `datasets` split or an image folder listing."""

    table: pa.Table
    key: str
    start: int = 0
    record: dict = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def batches(self, columns: list[str], max_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        selected = self.table.select(columns)
        for offset in range(0, max(selected.num_rows, 1), max_rows):
            if selected.num_rows:
                yield selected.slice(offset, max_rows)

    def take(self, column: str, local_rows: list[int]) -> pa.Array:
        return self.table.column(column).take(pa.array(local_rows, pa.int64())).combine_chunks()

    def take_tasks(self, column: str, local_rows: list[int]) -> list[tuple[list[int], object]]:
        """One task reading `column` at `local_rows` (the table is already at hand)."""
        return [(local_rows, lambda: self.take(column, local_rows))]


@dataclass(frozen=True)
class RawSplit:
    """One split of one backend: its pieces, schema and fingerprint, and how rows are named and captioned.

    `kind` says which path opened it: "parquet" (files read by columns), "datasets" (converted by
    `datasets`), or "image_folder". `name_column` holds each row's file name when rows have stable
    names (image folders); otherwise rows are named "{row}.jpg". `captions` overrides the backend's
    caption settings when the source itself supplies the caption column.

    Each piece is a contiguous run of the split's rows (`TablePiece`, `ParquetPiece`, `S3FolderPiece`) with `key`
    (changes whenever its rows change), `start` (the split row of its first row), `num_rows`, `record` (what
    raw_split stores about it), and lazy readers: `batches(columns)`, `take(column, rows)` and `take_tasks`.
    """

    backend_id: str
    source: str
    fingerprint: str
    pieces: tuple
    schema: pa.Schema
    kind: str = "datasets"
    image_column: str = "image"
    revision: str | None = None
    base_dir: Path | None = None  # relative image paths resolve against it
    name_column: str | None = None
    captions: CaptionConfig | None = None
    filesystem: object = None  # the fsspec filesystem of Parquet pieces, when remote
    detail_column: str | None = None  # a column whose non-null value explains a row's drop (appended to its reason)

    @classmethod
    def from_table(cls, backend_id: str, table: pa.Table, source: str, fingerprint: str, **kwargs) -> "RawSplit":
        """A split over one in-memory table."""
        piece = TablePiece(table, key=f"table:{fingerprint}", record={"path": source, "rows": table.num_rows})
        return cls(backend_id, source, fingerprint, (piece,), table.schema, **kwargs)

    @property
    def num_rows(self) -> int:
        return sum(p.num_rows for p in self.pieces)

    @property
    def files(self) -> list[dict]:
        """What raw_split records: one entry per piece (path, size, identity, rows, first split row)."""
        return [{**p.record, "start": p.start, "rows": p.num_rows} for p in self.pieces]

    def read(self, columns: list[str]) -> pa.Table:
        """The whole split restricted to `columns` (small splits and tests; scans go piece by piece)."""
        tables = [t for p in self.pieces for t in p.batches(columns)]
        return pa.concat_tables(tables) if tables else self.schema.empty_table().select(columns)

    @property
    def table(self) -> pa.Table:
        """Every column of every row. Reads all image bytes: for tests and small splits only."""
        return self.read(self.schema.names)

    def locate(self, rows) -> list[tuple[int, int]]:
        """(piece index, piece-local row) of each split row."""
        import bisect

        starts = [p.start for p in self.pieces]
        found = []
        for row in rows:
            index = bisect.bisect_right(starts, int(row)) - 1
            if index < 0 or int(row) - starts[index] >= self.pieces[index].num_rows:
                raise IndexError(f"row {row} is outside the split ({self.num_rows} rows)")
            found.append((index, int(row) - starts[index]))
        return found
