"""Read the undecoded images of chosen rows (kept rows only, by row group); hash them to key caches by content."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.hashing import content_hash, file_stamp
from hf_assets.cache.tables import load_manifest, load_table, save_table
from hf_assets.data.header_sizes import image_value, resolve_image_path
from hf_assets.data.row_fetch import FETCH_CONCURRENCY, RowFetcher
from hf_assets.data.split import RawSplit
from hf_assets.progress import ProgressLog, quiet

HASH_TABLE = "content_hashes"
MEMO_FORMAT = 3  # 3: entries keyed by piece identity and row within the piece
_MEMO_SCHEMA = pa.schema(
    [("row", pa.int64()), ("entry", pa.string()), ("content_hash", pa.string()), ("stamp", pa.string())]
)


class ImageSource:
    """The undecoded images of a split's rows: only the row groups holding requested rows are read, image column only,
    concurrently and ahead of the consumer."""

    def __init__(self, split: RawSplit, image_column: str, concurrency: int = FETCH_CONCURRENCY):
        self.split = split
        self.fetcher = RowFetcher(split, image_column, concurrency)

    def sources(self, rows: np.ndarray) -> Iterator[bytes | str | None]:
        """For each row, in order: its image bytes, else its file path (absolute), else None."""
        for value in self.fetcher.fetch(np.asarray(rows, dtype=np.int64).tolist()):
            blob, path = image_value(value)  # the types the scan accepted (data.header_sizes)
            yield blob if blob else str(resolve_image_path(path, self.split.base_dir)) if path else None


def fetch_windows(split: RawSplit, image_column: str, rows: np.ndarray) -> np.ndarray:
    """Each row's fetch window (consecutive whole row groups): requesting rows window by window, in any order
    within a window, reads every row group once."""
    return RowFetcher(split, image_column).window_ids(rows)


def iter_images(split: RawSplit, image_column: str, rows: np.ndarray) -> Iterator[bytes | str | None]:
    """For each row: its image bytes, else its file path, else None (see `ImageSource`)."""
    return ImageSource(split, image_column).sources(rows)


def read_source(source: bytes | str | None) -> bytes | None:
    """The bytes of a source from `iter_images` (reads files), None when there is none or it cannot be read."""
    if source is None or isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError:
        return None


def content_hashes(
    split: RawSplit,
    image_column: str,
    rows: np.ndarray,
    memo_dir: Path | None = None,
    progress: ProgressLog | None = None,
    defer: bool = False,
) -> pa.Array:
    """blake2b of each row's image bytes ("" when unreadable), memoised in `memo_dir`.

    A memo entry belongs to a row of one piece (a Parquet file, by its identity): it is reused while that
    piece is unchanged, so adding or changing one file re-reads only that file's images; for an image stored
    as a file path, also only while that file's size and modification time are unchanged.

    With `defer`, rows the memo does not know are not read: their hash is null, to be computed where their bytes
    are fetched anyway (the shard that encodes them, `encode.fetch_hashes`), which records it with `remember`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    ids = entry_ids(split, rows)
    by_row = dict(zip(rows.tolist(), ids))
    known = _memo(memo_dir)  # piece key#local row -> (content hash, file stamp or "" for inline bytes)
    recheck = np.array(
        [r for r in rows.tolist() if (by_row[r] not in known and not defer) or known.get(by_row[r], ("", ""))[1]],
        dtype=np.int64,
    )
    changed = False
    with (progress or quiet()).step("hash", len(recheck), unit="images") as step:
        for row, source in zip(recheck.tolist(), iter_images(split, image_column, recheck)):
            step.advance()
            stamp, entry = stamp_of(source), by_row[row]
            if entry in known and known[entry][1] == stamp and stamp != "missing":
                continue
            data = read_source(source)
            known[entry] = (content_hash(data) if data else "", stamp)
            changed = True
    if memo_dir is not None:
        _save_memo(split, memo_dir, known, changed)
    return pa.array([known[e][0] if e in known else None for e in ids], pa.string())


def entry_ids(split: RawSplit, rows) -> list[str]:
    """The memo entry of each split row: its piece's identity and its row within the piece."""
    return [f"{split.pieces[piece].key}#{local}" for piece, local in split.locate([int(r) for r in rows])]


def remember(memo_dir: Path, hashed: pa.Table) -> None:
    """Add hashes computed where the bytes were fetched (`hashed`: row, entry, content_hash, stamp) to the memo of
    `content_hashes`; a later entry of the same row of the same piece replaces the earlier one."""
    if not hashed.num_rows:
        return
    columns = ["row", "entry", "content_hash", "stamp"]
    meta = load_manifest(memo_dir, HASH_TABLE)
    tables = [hashed.select(columns)]
    if meta.get("memo_format") == MEMO_FORMAT:
        old = load_table(memo_dir, HASH_TABLE).select(columns)
        tables.insert(0, old.filter(pc.invert(pc.is_in(old.column("entry"), value_set=hashed.column("entry")))))
    table = pa.concat_tables(tables).cast(_MEMO_SCHEMA)
    save_table(memo_dir, HASH_TABLE, table, {"fingerprint": meta.get("fingerprint", ""), "memo_format": MEMO_FORMAT})


def _memo(memo_dir: Path | None) -> dict[str, tuple[str, str]]:
    memo_meta = load_manifest(memo_dir, HASH_TABLE) if memo_dir is not None else {}
    if memo_meta.get("memo_format") != MEMO_FORMAT:
        return {}
    memo = load_table(memo_dir, HASH_TABLE)
    hashes, stamps = memo.column("content_hash").to_pylist(), memo.column("stamp").to_pylist()
    return dict(zip(memo.column("entry").to_pylist(), zip(hashes, stamps)))


def _save_memo(split: RawSplit, memo_dir: Path, known: dict[str, tuple[str, str]], changed: bool) -> None:
    starts = {piece.key: piece.start for piece in split.pieces}
    kept = {e: v for e, v in known.items() if e.rpartition("#")[0] in starts}  # entries of files still in the split
    if not changed and len(kept) == len(known):
        return
    entries = list(kept)
    table = pa.table(
        {
            "row": pa.array([starts[e.rpartition("#")[0]] + int(e.rpartition("#")[2]) for e in entries], pa.int64()),
            "entry": pa.array(entries, pa.string()),
            "content_hash": pa.array([kept[e][0] for e in entries], pa.string()),
            "stamp": pa.array([kept[e][1] for e in entries], pa.string()),
        },
        schema=_MEMO_SCHEMA,
    )
    save_table(memo_dir, HASH_TABLE, table, {"fingerprint": split.fingerprint, "memo_format": MEMO_FORMAT})


def stamp_of(source: bytes | str | None) -> str:
    """ "" for inline bytes; "size:mtime_ns" for a file path; "missing" when there is nothing to read."""
    if isinstance(source, bytes):
        return ""
    try:
        stamp = file_stamp(source) if source else None
    except OSError:  # unreadable: hashed again (as unreadable) each run
        stamp = None
    return stamp or "missing"
