"""Per-piece scan results cached by the piece's identity and every setting (and code) that shapes them."""

import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.cache.atomic import atomic_writer, write_json_atomic
from hf_assets.config.schema import BackendConfig
from hf_assets.data import captions, composite, dropped, filters, header_sizes, index, video_index
from hf_assets.data.dropped import DROPPED_SCHEMA
from hf_assets.data.split import RawSplit

SCAN_FORMAT = 3  # 3: kept and dropped rows written batch by batch, counts in a JSON file written last
# The code whose change changes a scan result: editing any of these modules invalidates every cached piece.
_CODE = [captions, composite, dropped, filters, header_sizes, index, video_index]


def _code_hash() -> str:
    digest = hashlib.blake2b(digest_size=8)
    for module in _CODE:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def scan_settings(split: RawSplit, backend: BackendConfig) -> str:
    """A hash of everything besides the rows that decides a piece's kept rows, captions and sizes."""
    parts = [
        SCAN_FORMAT,
        _code_hash(),
        backend.dataset_type,
        split.image_column,
        split.name_column,
        split.detail_column,
        backend.width_column,
        backend.height_column,
        backend.num_frames_column,
        backend.fps_column,
        repr(split.captions or backend.captions),
        repr(backend.filters),
        repr(backend.composite),
        repr(backend.buckets),
        repr(getattr(backend, "video", None)),
    ]
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=16).hexdigest()


class PieceWriter:
    """Receives a piece's scan result batch by batch (kept rows, drop counts, dropped rows)."""

    def __init__(self, kept: pq.ParquetWriter, lost: pq.ParquetWriter):
        self.kept, self.lost = kept, lost
        self.counts: dict[str, int] = {}

    def add(self, kept: pa.Table, counts: dict[str, int], lost: pa.Table) -> None:
        self.kept.write_table(kept)
        self.lost.write_table(lost.cast(DROPPED_SCHEMA))
        for reason, n in counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n


class ScanCache:
    """A piece's scan result (kept rows, drop counts, dropped rows) under `directory`, written batch by batch and
    read back batch by batch; `prune` removes the entries this run did not use."""

    def __init__(self, directory: Path, settings: str):
        self.directory = Path(directory)
        self.settings = settings
        self.used: set[str] = set()
        self.read = 0  # pieces read from the source
        self._lock = threading.Lock()
        self.reused = 0  # pieces answered from the cache

    def _paths(self, piece) -> tuple[Path, Path, Path]:
        name = hashlib.blake2b(f"{self.settings}|{piece.key}".encode(), digest_size=16).hexdigest()
        self.used.update({name + ".parquet", name + ".dropped.parquet", name + ".json"})
        files = self.directory / f"{name}.parquet", self.directory / f"{name}.dropped.parquet"
        return files, self.directory / f"{name}.json"

    def get(self, piece, fresh: bool = False):
        """The piece's cached result (an `index.PieceResult` reading its files), or None; `fresh`: just written."""
        (kept_path, dropped_path), counts_path = self._paths(piece)
        if not counts_path.is_file():  # written last: its presence means the entry is whole
            return None
        try:
            counts = json.loads(counts_path.read_text())
            kept_file, dropped_file = pq.ParquetFile(kept_path), pq.ParquetFile(dropped_path)
        except Exception:  # noqa: BLE001 - a damaged entry is only a miss: the piece is read again
            return None
        if not fresh:
            self.reused += 1
        return index.PieceResult(0, _groups(kept_file), _groups(dropped_file), counts)

    @contextmanager
    def writing(self, piece, schema: pa.Schema) -> Iterator[PieceWriter]:
        """Write the piece's result as it is made; its counts file is written last, when every batch is in."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (kept_path, dropped_path), counts_path = self._paths(piece)
        counts_path.unlink(missing_ok=True)
        with atomic_writer(kept_path) as kept_tmp, atomic_writer(dropped_path) as dropped_tmp:
            # Read back whole and never filtered by statistics: no dictionaries or statistics, which halve the
            # write time of unique file names and captions.
            plain = {"use_dictionary": False, "write_statistics": False}
            with (
                pq.ParquetWriter(kept_tmp, schema, **plain) as kept,
                pq.ParquetWriter(dropped_tmp, DROPPED_SCHEMA, **plain) as lost,
            ):
                writer = PieceWriter(kept, lost)
                yield writer
        write_json_atomic(writer.counts, counts_path)

    def results(self, pieces, scan, schema: pa.Schema, workers: int = 1):
        """(piece, its result) in order: cached ones as they are, the others first scanned into the cache by
        `scan(piece, writer, share)` on `workers` threads (`share`: how many scans run at once), ahead of the piece
        being yielded. Results are opened at their turn, so scans far ahead hold no file open. A scan's error is
        raised at its piece's turn; pieces not yet started are then not scanned."""
        pieces = list(pieces)
        missing = [i for i, piece in enumerate(pieces) if not self._paths(piece)[1].is_file()]
        share = workers if workers > 1 and len(missing) > 1 else 1

        def fill(piece, share: int = 1) -> None:
            with self._lock:
                self.read += 1
            with self.writing(piece, schema) as writer:
                scan(piece, writer, share)

        def result(piece, ahead=None):
            if ahead is not None:
                ahead.result()
            found = self.get(piece, fresh=ahead is not None)
            if found is None:  # not cached yet, or a damaged entry: scanned now
                fill(piece)
                found = self.get(piece, fresh=True)
            return found

        if share == 1:
            for piece in pieces:
                yield piece, result(piece)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="scan") as pool:
            ahead = {i: pool.submit(fill, pieces[i], share) for i in missing}
            try:
                for i, piece in enumerate(pieces):
                    yield piece, result(piece, ahead.get(i))
            finally:
                for future in ahead.values():
                    future.cancel()

    def prune(self) -> int:
        """Delete entries of pieces or settings this run did not use; returns how many."""
        removed = 0
        for path in sorted(self.directory.iterdir()) if self.directory.is_dir() else []:
            if path.suffix in (".parquet", ".json") and path.name not in self.used:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _groups(file: pq.ParquetFile) -> Iterator[pa.Table]:
    """A cached file's rows, one row group (one scanned batch) at a time."""
    for group in range(file.metadata.num_row_groups):
        yield file.read_row_group(group)


def scan_cache_for(split: RawSplit, backend: BackendConfig) -> ScanCache:
    """The backend's scan cache, under its metadata folder."""
    return ScanCache(backend.metadata_dir / "scan", scan_settings(split, backend))
