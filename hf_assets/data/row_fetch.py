"""Fetch one column's values at chosen rows of a split: by row group, only the groups holding them, concurrently.

Row groups are read a window at a time while the caller consumes the previous window, so fetching overlaps
whatever the caller does with the values (decoding, encoding). Transient read errors are retried with backoff.
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from hf_assets import env
from hf_assets.data.page_reader import PieceReader, by_pages_when_cheaper
from hf_assets.data.parquet_files import ParquetPiece, is_local
from hf_assets.data.split import RawSplit

FETCH_CONCURRENCY = 8  # row groups read at once (remote requests in flight)
WINDOW_ROWS = 4096  # split rows per fetch window (whole row groups); the next windows are read while one is consumed
RETRIES = 4
BACKOFF_S = 0.5  # the first in-step backoff at the default HF_ASSETS_RETRY_DELAY; scaled with it (0 in the tests)
log = logging.getLogger(__name__)


class FetchError(OSError):
    """A row group could not be read after retries; names the file, the rows and the last error."""


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: timeouts, dropped connections, server errors; not missing files or bad data."""
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    name = type(error).__name__
    if any(word in name for word in ("Timeout", "Disconnect", "ClientError", "ClientPayload", "ServerError")):
        return True
    return isinstance(error, OSError) or "503" in str(error) or "502" in str(error) or "429" in str(error)


def backoff_s() -> float:
    """The first backoff of an in-step fetch retry: BACKOFF_S scaled by HF_ASSETS_RETRY_DELAY against its default."""
    return BACKOFF_S * env.retry_delay_s() / env.DEFAULT_RETRY_DELAY_S


def with_retries(read: Callable[[], pa.Array], what: str, retries: int = RETRIES, backoff: float | None = None):
    """read(), retried on transient errors with exponential backoff; FetchError when retries run out."""
    backoff = backoff_s() if backoff is None else backoff
    for attempt in range(retries + 1):
        try:
            return read()
        except Exception as error:
            if attempt == retries or not is_transient(error):
                raise FetchError(
                    f"reading {what} failed after {attempt + 1} attempt(s): {type(error).__name__}: {error}"
                ) from error
            log.warning("retrying %s after %s: %s", what, type(error).__name__, error)
            time.sleep(backoff * (2**attempt))
    raise AssertionError("unreachable")


def window_starts(split: RawSplit, max_rows: int = WINDOW_ROWS) -> np.ndarray:
    """The first split row of each fetch window: runs of whole row groups of one piece, about max_rows rows each.

    No row group belongs to two windows, so rows requested window by window (in any order within a window)
    read every row group at most once.
    """
    starts = []
    for piece in split.pieces:
        groups = getattr(piece, "group_rows", None)
        sizes = groups() if groups else [max_rows] * (-(-piece.num_rows // max_rows))
        first, filled = piece.start, max_rows
        for rows in sizes:
            if filled + rows > max_rows:
                starts.append(first)
                filled = 0
            filled += rows
            first += rows
    return np.asarray(starts or [0], dtype=np.int64)


def fetch_units(split: RawSplit, rows) -> np.ndarray:
    """The fetch unit of each split row: its row group (a Parquet piece reads its image column a row group at a
    time), or the row itself in an in-memory piece. Rows grouped by unit never read one chunk twice."""
    return np.searchsorted(window_starts(split, 1), np.asarray(rows, dtype=np.int64), side="right") - 1


def is_remote(split: RawSplit) -> bool:
    """True when the split's rows are read over a network (an fsspec filesystem other than the local one)."""
    return any(isinstance(p, ParquetPiece) and not is_local(p.fs) for p in split.pieces)


class RowFetcher:
    """Values of `column` at requested split rows, in the requested order."""

    def __init__(self, split: RawSplit, column: str, concurrency: int = FETCH_CONCURRENCY):
        self.split = split
        self.column = column
        self.concurrency = max(1, concurrency)
        self.starts = window_starts(split)
        self.readers: dict[int, PieceReader] = {}  # remote pieces read by pages where cheaper

    def window_ids(self, rows) -> np.ndarray:
        """The fetch window of each split row: order requests by it to read each row group once."""
        return np.searchsorted(self.starts, np.asarray(rows, dtype=np.int64), side="right") - 1

    def _windows(self, rows: list[int]) -> Iterator[list[tuple[int, int]]]:
        """Runs of (piece, local row) in request order; a run ends where the fetch window changes."""
        ids = self.window_ids(rows).tolist()
        window: list[tuple[int, int]] = []
        for i, located in enumerate(self.split.locate(rows)):
            if window and (ids[i] != ids[i - 1] or len(window) >= WINDOW_ROWS):
                yield window
                window = []
            window.append(located)
        if window:
            yield window

    def _submit(self, pool: ThreadPoolExecutor, window) -> list[tuple[list[int], int, Future]]:
        by_piece: dict[int, list[int]] = {}
        for piece, local in window:
            by_piece.setdefault(piece, []).append(local)
        submitted = []
        for piece, locals_ in by_piece.items():
            source = self.split.pieces[piece]
            tasks = source.take_tasks(self.column, sorted(set(locals_)))
            if isinstance(source, ParquetPiece) and not is_local(source.fs):  # remote: fetch only the pages needed
                if piece not in self.readers:
                    self.readers[piece] = PieceReader(source)
                tasks = by_pages_when_cheaper(self.readers[piece], self.column, tasks)
            for rows, read in tasks:
                where = source.record.get("path", self.split.source)
                what = f"column '{self.column}' of {where} rows {rows[0]}..{rows[-1]}"
                submitted.append((rows, piece, pool.submit(with_retries, read, what)))
        return submitted

    def fetch(self, rows) -> Iterator[object]:
        """Each requested row's value (a Python object), in order; later windows are read while this one is consumed."""
        rows = [int(r) for r in rows]
        if not rows:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="row-fetch") as pool:
            windows = self._windows(rows)
            queue: deque = deque()
            in_flight = 0
            exhausted = False
            while True:
                # keep at least one window ahead, and enough tasks to use every connection
                while not exhausted and (len(queue) < 2 or in_flight < 2 * self.concurrency):
                    window = next(windows, None)
                    if window is None:
                        exhausted = True
                        break
                    tasks = self._submit(pool, window)
                    queue.append((window, tasks))
                    in_flight += len(tasks)
                if not queue:
                    return
                window, tasks = queue.popleft()
                in_flight -= len(tasks)
                values: dict[tuple[int, int], object] = {}
                for task_rows, piece, future in tasks:
                    for local, value in zip(task_rows, future.result().to_pylist()):
                        values[(piece, local)] = value
                for located in window:
                    yield values[located]
