"""One column's values at chosen rows of a Parquet piece, read page by page (data.parquet_pages), and what a read
costs in bytes before it is made. Chunks that cannot be read by pages fall back to pyarrow's whole-chunk read."""

import bisect
import functools

import pyarrow as pa

from hf_assets.data.page_rows import read_rows
from hf_assets.data.parquet_files import ParquetPiece, footer_bytes, is_local
from hf_assets.data.parquet_pages import ByteRanges, ChunkPages, Unsupported, chunk_pages, parse_footer
from hf_assets.data.sparse_pages import estimated_bytes

_FOOTERS: dict[str, dict] = {}  # piece key -> the file's footer as a Thrift struct (offset indexes, page offsets)
_CHUNKS: dict[tuple[str, int, str], ChunkPages | None] = {}  # (piece key, row group, leaf) -> pages; None: whole only


class PieceReader:
    """Page-wise reads of one Parquet piece (a local file or an fsspec file), counting the bytes they read."""

    def __init__(self, piece: ParquetPiece):
        self.piece = piece
        fs = None if is_local(piece.fs) else piece.fs
        self.ranges = ByteRanges(fs, piece.path, piece.record.get("size"))
        meta = piece.footer()
        self.schema = meta.schema.to_arrow_schema()
        leaves = [meta.schema.column(i) for i in range(meta.num_columns)]
        self._leaves = {leaf.path: i for i, leaf in enumerate(leaves)}
        self._levels = {leaf.path: (leaf.max_definition_level, leaf.max_repetition_level) for leaf in leaves}
        groups = piece.row_groups()
        self.groups = [g for g, _, _ in groups]
        self.group_starts = [first - piece.lo for _, first, _ in groups]  # piece-local row of each group's first row

    @property
    def bytes_read(self) -> int:
        return self.ranges.bytes_read

    def locate(self, local_row: int) -> tuple[int, int]:
        """(row group, row within it) of a piece-local row."""
        k = bisect.bisect_right(self.group_starts, local_row) - 1
        return self.groups[k], local_row - self.group_starts[k]

    def main_leaf(self, column: str) -> str:
        """The leaf holding a column's bulk: `column.bytes` of an Image struct, else the column itself."""
        return f"{column}.bytes" if f"{column}.bytes" in self._leaves else column

    def chunk_bytes(self, group: int, column: str) -> int:
        """Compressed bytes of a column's chunks (every leaf) in a row group: the cost of reading it whole."""
        meta = self.piece.footer().row_group(group)
        return sum(meta.column(i).total_compressed_size for p, i in self._leaves.items() if _of(p, column))

    def pages(self, group: int, leaf: str) -> ChunkPages | None:
        """The page layout of one leaf chunk, or None when it must be read whole."""
        key = (self.piece.key, group, leaf)
        if key not in _CHUNKS:
            if self.piece.key not in _FOOTERS:  # from the footer at hand: no read of the file's end
                _FOOTERS[self.piece.key] = parse_footer(footer_bytes(self.piece.footer()))
            max_def, max_rep = self._levels[leaf]
            try:
                _CHUNKS[key] = chunk_pages(
                    self.ranges, _FOOTERS[self.piece.key], group, self._leaves[leaf], leaf, max_def, max_rep
                )
            except Unsupported:
                _CHUNKS[key] = None
        return _CHUNKS[key]

    def take(self, column: str, local_rows: list[int]) -> pa.Array:
        """`column` at piece-local rows (in the order given): only the pages holding them are read."""
        by_group: dict[int, list[tuple[int, int]]] = {}
        for i, row in enumerate(local_rows):
            group, inner = self.locate(int(row))
            by_group.setdefault(group, []).append((i, inner))
        out: list = [None] * len(local_rows)
        for group, items in by_group.items():
            inner = [r for _, r in items]
            for (i, _), value in zip(items, self._group_values(column, group, inner)):
                out[i] = value
        return pa.array(out, self.schema.field(column).type)

    def _group_values(self, column: str, group: int, rows: list[int]) -> list:
        kind = self.schema.field(column).type
        children = list(kind) if pa.types.is_struct(kind) else None
        leaves = [f"{column}.{c.name}" for c in children] if children else [column]
        try:
            read = [self._leaf_values(group, leaf, rows) for leaf in leaves]
        except Unsupported:
            return self.piece.take_in_group(column, group, rows).to_pylist()
        kinds = [c.type for c in children] if children else [kind]
        read = [[_as(v, k) for v in values] for values, k in zip(read, kinds)]
        if children is None:
            return read[0]
        return [dict(zip([c.name for c in children], values)) for values in zip(*read)]

    def _leaf_values(self, group: int, leaf: str, rows: list[int]) -> list:
        if leaf not in self._leaves:
            raise Unsupported(f"{leaf} is not a leaf column")
        chunk = self.pages(group, leaf)
        if chunk is None:
            raise Unsupported(f"{leaf} of row group {group} is read whole")
        return read_rows(self.ranges, chunk, rows)


PAGE_SAVING = 0.9  # read by pages when they cost less than this share of the whole chunk


def by_pages_when_cheaper(reader: PieceReader, column: str, tasks: list[tuple[list[int], object]]) -> list:
    """`tasks` (piece-local rows of one row group each, and a callable reading the whole chunk) with each task
    reading only the pages (or values) that hold its rows instead, where that is expected to cost less. The choice
    is made inside the task, so the reads it takes (page headers, an offset index) are retried with the task."""
    return [(rows, functools.partial(_cheaper_read, reader, column, list(rows), read)) for rows, read in tasks]


def _cheaper_read(reader: PieceReader, column: str, rows: list[int], whole) -> pa.Array:
    group = reader.locate(rows[0])[0]
    if _page_cost(reader, group, column, rows) < PAGE_SAVING * reader.chunk_bytes(group, column):
        return reader.take(column, rows)
    return whole()


def _page_cost(reader: PieceReader, group: int, column: str, rows: list[int]) -> float:
    """Expected bytes of reading `rows` of the main leaf by pages (value by value within large pages); infinite
    when the chunk cannot be read by pages. Without an offset index the page headers are walked first: a small
    read per page, which the pages of pyarrow's default layout (one or two per chunk) make cheap."""
    leaf = reader.main_leaf(column)
    if leaf not in reader._leaves:
        return float("inf")
    pages = reader.pages(group, leaf)
    if pages is None:
        return float("inf")
    return estimated_bytes(pages, [reader.locate(r)[1] for r in rows])


def _of(path: str, column: str) -> bool:
    return path == column or path.startswith(column + ".")


def _as(value: bytes | None, kind: pa.DataType):
    if value is None or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return value
    return value.decode("utf-8")
