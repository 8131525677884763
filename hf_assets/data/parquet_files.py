"""Parquet files of a split, wherever they live: find them, identify them, and read chosen columns lazily."""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.data.split import BATCH_ROWS

FOOTER_WORKERS = 8  # concurrent footer reads when a remote split has many files
_FOOTERS: dict[str, pq.FileMetaData] = {}  # piece key -> footer, so a process reads each footer once
_GROUPS: dict[str, list[tuple[int, int, int]]] = {}  # piece key -> its row groups


def is_local(fs) -> bool:
    """True for the local filesystem (read natively by pyarrow)."""
    return fs is None or "file" in _protocols(fs)


def _protocols(fs) -> tuple[str, ...]:
    protocol = getattr(fs, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def open_parquet(fs, path: str, metadata: pq.FileMetaData | None = None, size: int | None = None) -> pq.ParquetFile:
    """A ParquetFile over `path`: read directly when local, else by ranged reads through the fsspec filesystem
    (given the file's `size` from the listing, opening it asks the store nothing)."""
    if is_local(fs):
        return pq.ParquetFile(path, metadata=metadata)  # buffered reads of exactly the chunks asked for
    # No read-ahead cache: pyarrow asks for exactly the column chunks it needs, and each becomes one ranged GET.
    known = {"size": size} if size is not None else {}
    handle = fs.open(path, "rb", cache_type="none", block_size=1 << 20, **known)
    return pq.ParquetFile(handle, metadata=metadata)


def file_identity(info: dict) -> str:
    """What changes when a file's content changes: a content hash or etag when the store gives one, else mtime."""
    lfs = info.get("lfs")
    if isinstance(lfs, dict) and lfs.get("sha256"):
        return "sha256:" + lfs["sha256"]
    for key in ("blob_id", "ETag", "etag", "md5Hash", "crc32c", "mtime_ns"):
        if info.get(key):
            return f"{key}:{str(info[key]).strip(chr(34))}"
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        if info.get(key):
            return f"{key}:{info[key]}"
    return "size-only"


@dataclass(frozen=True)
class ParquetPiece:
    """Rows [lo, hi) of one Parquet file; reads only the columns and row groups asked for."""

    path: str
    fs: object
    key: str
    start: int
    lo: int
    hi: int
    record: dict

    @property
    def num_rows(self) -> int:
        return self.hi - self.lo

    def footer(self) -> pq.FileMetaData:
        """The file's footer (row groups, schema), read once per process."""
        if self.key not in _FOOTERS:
            _FOOTERS[self.key] = open_parquet(self.fs, self.path, size=self.record.get("size")).metadata
        return _FOOTERS[self.key]

    def group_rows(self) -> list[int]:
        """Rows of this piece in each row group it overlaps, in order."""
        return [min(self.hi, first + rows) - max(self.lo, first) for _, first, rows in self.row_groups()]

    def row_groups(self) -> list[tuple[int, int, int]]:
        """(row group, first file row, rows) of each row group overlapping [lo, hi)."""
        if self.key in _GROUPS:
            return _GROUPS[self.key]
        meta, out, first = self.footer(), [], 0
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            if first < self.hi and first + rows > self.lo:
                out.append((group, first, rows))
            first += rows
        _GROUPS[self.key] = out
        return out

    def batches(self, columns: list[str], max_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        if self.num_rows == 0:
            return
        reader = open_parquet(self.fs, self.path, self.footer(), self.record.get("size"))
        run: list[tuple[int, int, int]] = []
        for group in self.row_groups():
            if run and sum(r for _, _, r in run) + group[2] > max_rows:
                yield self._read_run(reader, run, columns)
                run = []
            run.append(group)
        if run:
            yield self._read_run(reader, run, columns)

    def _read_run(self, reader: pq.ParquetFile, run: list[tuple[int, int, int]], columns: list[str]) -> pa.Table:
        table = reader.read_row_groups([g for g, _, _ in run], columns=columns)
        first = run[0][1]
        lo, hi = max(self.lo, first), min(self.hi, first + table.num_rows)
        return table.slice(lo - first, hi - lo)

    def take_tasks(self, column: str, local_rows: list[int]) -> list[tuple[list[int], object]]:
        """One task per row group holding some of `local_rows`: (those rows, a callable reading their values)."""
        by_group: dict[int, list[int]] = {}
        groups = self.row_groups()
        bounds = [(g, first - self.lo, first - self.lo + rows) for g, first, rows in groups]
        index = 0
        for row in sorted(local_rows):
            while not bounds[index][1] <= row < bounds[index][2]:
                index += 1
            by_group.setdefault(index, []).append(row)
        tasks = []
        for index, rows in by_group.items():
            group, offset, _ = bounds[index]
            tasks.append((rows, lambda g=group, o=offset, r=rows: self.take_in_group(column, g, [x - o for x in r])))
        return tasks

    def take_in_group(self, column: str, group: int, rows: list[int]) -> pa.Array:
        """`column` at rows of one row group (group-local), reading its whole chunk."""
        reader = open_parquet(self.fs, self.path, self.footer(), self.record.get("size"))
        values = reader.read_row_group(group, columns=[column], use_threads=False).column(0)
        return values.take(pa.array(rows, pa.int64())).combine_chunks()

    def take(self, column: str, local_rows: list[int]) -> pa.Array:
        parts = [(rows, task()) for rows, task in self.take_tasks(column, local_rows)]
        return pa.concat_arrays([values for _, values in parts]) if parts else pa.array([])


def remember_footer(key: str, metadata: pq.FileMetaData) -> None:
    """Use this footer for the piece `key` (read from raw_split's record instead of the file)."""
    _FOOTERS[key] = metadata


def footer_bytes(metadata: pq.FileMetaData) -> bytes:
    """A Parquet footer as the bytes of a metadata-only Parquet file (PAR1, FileMetaData, its length, PAR1)."""
    sink = pa.BufferOutputStream()
    metadata.write_metadata_file(sink)
    return sink.getvalue().to_pybytes()


def read_footers(fs, infos: list[dict]) -> list[pq.FileMetaData]:
    """Each listed file's footer (infos: name and size), read concurrently when remote."""
    if is_local(fs) or len(infos) < 2:
        return [open_parquet(fs, i["name"], size=i.get("size")).metadata for i in infos]
    with ThreadPoolExecutor(max_workers=min(FOOTER_WORKERS, len(infos)), thread_name_prefix="footers") as pool:
        return list(pool.map(lambda i: open_parquet(fs, i["name"], size=i.get("size")).metadata, infos))


def make_pieces(
    fs, infos: list[dict], footers: list[pq.FileMetaData], span: tuple[int, int] | None
) -> list[ParquetPiece]:
    """Pieces for the files `infos` (name, size, identity) restricted to split rows [from, to) when span is given."""
    lo_all, hi_all = span if span is not None else (0, sum(f.num_rows for f in footers))
    pieces, first = [], 0
    for info, footer in zip(infos, footers):
        rows = footer.num_rows
        lo, hi = max(lo_all - first, 0), min(hi_all - first, rows)
        if hi > lo:
            identity = file_identity(info)
            key = f"{info['name']}|{info.get('size')}|{identity}|{lo}:{hi}"
            record = {"path": info["name"], "size": info.get("size"), "identity": identity, "file_rows": rows}
            piece = ParquetPiece(info["name"], fs, key, start=first + lo - lo_all, lo=lo, hi=hi, record=record)
            _FOOTERS[key] = footer
            pieces.append(piece)
        first += rows
    return pieces


def local_info(path: str) -> dict:
    """name, size and mtime of a local file, as fsspec would give them."""
    stat = os.stat(path)
    return {"name": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "type": "file"}
