"""Per-piece scan results cached by the piece's identity and every setting (and code) that shapes them."""

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.cache.atomic import write_parquet_atomic
from hf_assets.config.schema import BackendConfig
from hf_assets.data import captions, composite, dropped, filters, index, sizes, video_index
from hf_assets.data.split import RawSplit

SCAN_FORMAT = 2
COUNTS_KEY = b"hf_assets.drop_counts"
# The code whose change changes a scan result: editing any of these modules invalidates every cached piece.
_CODE = [captions, composite, dropped, filters, index, sizes, video_index]


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


class ScanCache:
    """`get`/`put` a piece's (kept rows, drop counts, dropped rows) under `directory`; `prune` removes the entries
    this run did not use."""

    def __init__(self, directory: Path, settings: str):
        self.directory = Path(directory)
        self.settings = settings
        self.used: set[str] = set()
        self.read = 0  # pieces read from the source
        self.reused = 0  # pieces answered from the cache

    def _paths(self, piece) -> tuple[Path, Path]:
        name = hashlib.blake2b(f"{self.settings}|{piece.key}".encode(), digest_size=16).hexdigest()
        self.used.update({name + ".parquet", name + ".dropped.parquet"})
        return self.directory / f"{name}.parquet", self.directory / f"{name}.dropped.parquet"

    def get(self, piece) -> tuple[pa.Table | None, dict[str, int], pa.Table] | None:
        kept_path, dropped_path = self._paths(piece)
        if not kept_path.is_file():  # written last: its presence means the entry is whole
            return None
        try:
            table = pq.read_table(kept_path)
            counts = json.loads(table.schema.metadata[COUNTS_KEY])
            lost = pq.read_table(dropped_path)
        except Exception:  # noqa: BLE001 - a damaged entry is only a miss: the piece is read again
            return None
        self.reused += 1
        return (table if table.num_rows else None), counts, lost

    def put(self, piece, kept: pa.Table | None, counts: dict[str, int], lost: pa.Table) -> None:
        self.read += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        kept_path, dropped_path = self._paths(piece)
        table = kept if kept is not None else pa.table({"row": pa.array([], pa.int64())})
        table = table.replace_schema_metadata({COUNTS_KEY: json.dumps(counts).encode()})
        write_parquet_atomic(lost, dropped_path)
        write_parquet_atomic(table, kept_path)

    def prune(self) -> int:
        """Delete entries of pieces or settings this run did not use; returns how many."""
        removed = 0
        for path in self.directory.glob("*.parquet") if self.directory.is_dir() else []:  # also *.dropped.parquet
            if path.name not in self.used:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def scan_cache_for(split: RawSplit, backend: BackendConfig) -> ScanCache:
    """The backend's scan cache, under its metadata folder."""
    return ScanCache(backend.metadata_dir / "scan", scan_settings(split, backend))
