"""Which rows a preview shows, chosen so that fetching their images stays within a byte budget, and their values.

One kept row per bucket and one dropped row per reason, as far as the budget allows. Rows are taken from the
cheapest row groups first (by the image column's compressed bytes) and, within them, from the pages already
chosen or else the cheapest page holding a row of the wanted kind (pages located by the offset index when the file
has one). Each chosen page is read once, or only the chosen values where the page is large and its codec allows
(data.sparse_pages); nothing else of the image column is read.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.data.header_sizes import image_value, resolve_image_path
from hf_assets.data.page_reader import PieceReader
from hf_assets.data.parquet_files import ParquetPiece
from hf_assets.data.row_fetch import is_remote
from hf_assets.data.sparse_pages import row_cost
from hf_assets.data.split import RawSplit

PREVIEW_BUDGET = 8 << 20  # image bytes a partition's preview may fetch (README: "Pictures in the UI")
PREVIEW_SHARE = 0.05  # over a remote source, also at most this share of the kept rows' image bytes
MAX_UNITS = 16  # row groups whose page layout is looked at (the cheapest ones holding wanted rows)
PER_KIND = 64  # rows of each bucket / reason considered per row group


@dataclass
class PreviewRows:
    """Split rows to show (kept, then dropped, each with its label) and the image bytes budgeted to fetch them."""

    kept: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[tuple[int, str]] = field(default_factory=list)
    fetch_bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # labels no row of which fits the budget


def _units(split: RawSplit, rows: np.ndarray) -> tuple[np.ndarray, list]:
    """For each split row, the index of its unit (a row group of a Parquet piece, or a whole in-memory piece)."""
    starts, units = [], []
    for index, piece in enumerate(split.pieces):
        if isinstance(piece, ParquetPiece):
            for group, first, _ in piece.row_groups():
                starts.append(piece.start + max(first - piece.lo, 0))
                units.append((index, group))
        else:
            starts.append(piece.start)
            units.append((index, None))
    return np.searchsorted(np.asarray(starts, dtype=np.int64), rows, side="right") - 1, units


class _FetchLedger:
    def __init__(self, split: RawSplit, column: str, budget: int):
        self.split, self.column, self.budget = split, column, budget
        self.readers: dict[int, PieceReader] = {}
        self.chosen_pages: set[tuple] = set()
        self.dictionaries: set[tuple] = set()
        self.spent = 0

    def reader(self, piece: int) -> PieceReader:
        if piece not in self.readers:
            self.readers[piece] = PieceReader(self.split.pieces[piece])
        return self.readers[piece]

    def unit_cost(self, unit) -> int:
        piece, group = unit
        return 0 if group is None else self.reader(piece).chunk_bytes(group, self.column)

    def page_costs(self, unit, rows: np.ndarray) -> list[tuple[tuple, int, int]]:
        """(page key, bytes to read it, dictionary bytes) for each split row of a unit."""
        piece, group = unit
        if group is None:
            return [((piece, None, None), 0, 0)] * len(rows)
        reader = self.reader(piece)
        pages = reader.pages(group, reader.main_leaf(self.column))
        local = rows - self.split.pieces[piece].start
        if pages is None:  # read whole: the chunk is one "page"
            return [((piece, group, None), reader.chunk_bytes(group, self.column), 0)] * len(rows)
        dictionary = pages.dictionary[1] if pages.dictionary else 0
        dictionary_row = row_cost(pages, dictionary, pages.rows) if dictionary else None
        out = []
        for row in local.tolist():
            page = pages.page_of(reader.locate(row)[1])
            first, end = pages.page_rows(page)
            alone = row_cost(pages, pages.sizes[page], end - first)
            if alone is None:  # the page is read whole, once for every row chosen from it
                out.append(((piece, group, page), pages.sizes[page], dictionary))
            elif dictionary_row is None:  # the value alone, and the dictionary whole
                out.append(((piece, group, page, row), int(alone), dictionary))
            else:  # the value alone, from the page or from the dictionary
                out.append(((piece, group, page, row), int(alone + dictionary_row), 0))
        return out

    def marginal(self, key: tuple, size: int, dictionary: int) -> int:
        if key in self.chosen_pages:
            return 0
        return size + (dictionary if key[:2] not in self.dictionaries else 0)

    def take(self, key: tuple, size: int, dictionary: int) -> None:
        self.spent += self.marginal(key, size, dictionary)
        self.chosen_pages.add(key)
        if dictionary:
            self.dictionaries.add(key[:2])


def _coded(rows, labels) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(rows, label code of each, label names) with codes numbered by frequency, most frequent first."""
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    labels = labels if isinstance(labels, pa.Array) else pa.array(labels, pa.string())
    encoded = labels if pa.types.is_dictionary(labels.type) else pc.dictionary_encode(labels)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    names = encoded.dictionary.to_pylist()
    by_count = np.argsort(-np.bincount(codes, minlength=len(names)), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_count] = np.arange(len(names))
    return np.asarray(rows, dtype=np.int64), rank[codes], [names[i] for i in by_count]


def _slots(names: list[str], count: int) -> list[int]:
    """Label codes to fill: each label once (most frequent first), then again, until `count` slots."""
    return [i % len(names) for i in range(count)] if names else []


def preview_budget(split: RawSplit, column: str, kept_rows: np.ndarray) -> int:
    """The image bytes a preview may fetch: PREVIEW_BUDGET, and over a remote source also PREVIEW_SHARE of the
    kept rows' image bytes (from the footers: each row group's image chunk in proportion to its kept rows), so that
    on a first run the previews stay a small part of what encoding fetches, however small the dataset."""
    if not is_remote(split) or len(kept_rows) == 0:
        return PREVIEW_BUDGET
    unit_of, units = _units(split, np.asarray(kept_rows, dtype=np.int64))
    counts = np.bincount(unit_of, minlength=len(units))
    readers: dict[int, PieceReader] = {}
    kept_bytes = 0.0
    for u in np.flatnonzero(counts).tolist():
        piece, group = units[u]
        if group is None:
            continue
        reader = readers.setdefault(piece, PieceReader(split.pieces[piece]))
        rows = split.pieces[piece].footer().row_group(group).num_rows
        kept_bytes += reader.chunk_bytes(group, column) * counts[u] / max(rows, 1)
    return min(PREVIEW_BUDGET, int(PREVIEW_SHARE * kept_bytes))


def choose_preview_rows(
    split: RawSplit,
    column: str,
    kept: tuple,
    dropped: tuple,
    kept_count: int = 4,
    dropped_count: int = 4,
    budget: int = PREVIEW_BUDGET,
) -> PreviewRows:
    """Rows to preview. `kept` and `dropped` are (split rows, label of each row): a bucket, a drop reason."""
    ledger = _FetchLedger(split, column, budget)
    sides = [_coded(*kept), _coded(*dropped)]
    all_rows = np.concatenate([rows for rows, _, _ in sides])
    unit_of, units = _units(split, all_rows)
    order = sorted(np.unique(unit_of).tolist(), key=lambda u: (ledger.unit_cost(units[u]), u))[:MAX_UNITS]
    counts = (kept_count, dropped_count)
    slots = Counter((side, code) for side, (_, _, names) in enumerate(sides) for code in _slots(names, counts[side]))
    side_units = np.split(unit_of, [len(sides[0][0])])
    options: dict[tuple[int, int], list] = {}  # (side, label code) -> [(page key, bytes, dictionary bytes, row)]
    for u in order:  # cheapest row groups first, until every slot has candidates
        if all(len(options.get(key, [])) >= n for key, n in slots.items()):
            break
        for side, (rows, codes, _) in enumerate(sides):
            in_unit = np.flatnonzero(side_units[side] == u)
            for code in np.unique(codes[in_unit]).tolist():
                if (side, code) not in slots:
                    continue
                picked = rows[in_unit[codes[in_unit] == code][:PER_KIND]]
                costs = ledger.page_costs(units[u], picked)
                options.setdefault((side, code), []).extend((*c, r) for c, r in zip(costs, picked.tolist()))
    result, taken = PreviewRows(), set()
    for side, (count, (_, _, names)) in enumerate(zip(counts, sides)):
        for code in _slots(names, count):
            candidates = [option for option in options.get((side, code), []) if option[3] not in taken]
            best = min(candidates, key=lambda o: ledger.marginal(*o[:3]), default=None)
            if best is None or ledger.spent + ledger.marginal(*best[:3]) > budget:
                result.skipped.append(names[code])
                continue
            ledger.take(*best[:3])
            taken.add(best[3])
            (result.kept if side == 0 else result.dropped).append((best[3], names[code]))
    result.fetch_bytes = ledger.spent
    return result


def fetch_preview_values(split: RawSplit, column: str, rows: list[int]) -> tuple[list, int]:
    """(value of `column` at each split row, in order; image bytes read): Parquet pieces page by page."""
    values: dict[int, object] = {}
    read = 0
    by_piece: dict[int, list[int]] = {}
    for piece, local in split.locate(rows):
        by_piece.setdefault(piece, []).append(local)
    for piece, locals_ in by_piece.items():
        source = split.pieces[piece]
        if isinstance(source, ParquetPiece):
            reader = PieceReader(source)
            array = reader.take(column, locals_)
            read += reader.bytes_read
        else:
            array = source.take(column, locals_)
        for local, value in zip(locals_, array.to_pylist()):
            values[source.start + local] = value
    return [values[int(r)] for r in rows], read


def preview_sources(split: RawSplit, column: str, rows: list[int]) -> tuple[list, int]:
    """(each row's image as the encoders take it: bytes, else an absolute file path, else None; bytes read)."""
    values, read = fetch_preview_values(split, column, rows)
    sources = []
    for value in values:
        blob, path = image_value(value)
        sources.append(blob if blob else str(resolve_image_path(path, split.base_dir)) if path else None)
    return sources, read
