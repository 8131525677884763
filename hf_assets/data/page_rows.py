"""Chosen rows of one Parquet column chunk: only the pages that hold them, each fetched once, and within a large
page only the wanted values where its codec allows (data.sparse_pages); the dictionary page the same way."""

from hf_assets.data.parquet_pages import ByteRanges, ChunkPages, Unsupported, decode_dictionary, decode_page
from hf_assets.data.sparse_pages import dictionary_values, page_entries, sparse_worthwhile


def read_rows(ranges: ByteRanges, chunk: ChunkPages, rows: list[int]) -> list[bytes | None]:
    """The values at row-group-local `rows` (any order, repeats allowed)."""
    by_page: dict[int, list[int]] = {}
    for row in sorted(set(rows)):
        by_page.setdefault(chunk.page_of(row), []).append(row)
    entries: dict[int, object] = {}  # row -> bytes, None, or a dictionary index (int)
    whole = []
    for page, page_rows in by_page.items():
        first, end = chunk.page_rows(page)
        found = None
        if sparse_worthwhile(chunk, chunk.sizes[page], len(page_rows), end - first):
            found = page_entries(ranges, chunk, page, page_rows)
        if found is None:
            whole.append(page)
        else:
            entries.update(found)
    for page, data in _whole_pages(ranges, chunk, whole):
        decoded = decode_page(data, chunk)
        first = chunk.page_rows(page)[0]
        entries.update((row, decoded[row - first]) for row in by_page[page])
    ordinals = sorted({v for v in entries.values() if isinstance(v, int)})
    if ordinals:
        if not chunk.dictionary:
            raise Unsupported("a dictionary-encoded page without its dictionary")
        lookup = dictionary_values(ranges, chunk, ordinals)
        if lookup is None:
            values = decode_dictionary(ranges.read(*chunk.dictionary), chunk)
            lookup = {k: values[k] for k in ordinals}
        entries = {row: lookup[v] if isinstance(v, int) else v for row, v in entries.items()}
    return [entries[row] for row in rows]


def _whole_pages(ranges: ByteRanges, chunk: ChunkPages, pages: list[int]):
    """(page, its bytes) for sorted `pages`; adjacent pages in one read."""
    run: list[int] = []
    for page in pages + [None]:
        if run and (page is None or page != run[-1] + 1):
            start = chunk.offsets[run[0]]
            data = ranges.read(start, chunk.offsets[run[-1]] + chunk.sizes[run[-1]] - start)
            for p in run:
                yield p, data[chunk.offsets[p] - start : chunk.offsets[p] - start + chunk.sizes[p]]
            run = []
        if page is not None:
            run.append(page)
