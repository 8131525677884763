"""Chosen rows of a large Parquet page without reading the page: its levels, then only the wanted values.

A data page or dictionary page stored as is or snappy-compressed (pyarrow's default, and what `datasets` writes for
image bytes) is read through a random-access stream (data.sparse_stream). pyarrow puts a row group's image bytes in
one page unless told otherwise, so when a filter keeps rows scattered through the row groups, reading whole pages
would fetch every image; read this way, each kept image costs its own bytes and a few small reads. Small pages,
pages with most rows wanted and other codecs are read whole by data.parquet_pages.
"""

import struct

import numpy as np

from hf_assets.data.parquet_pages import (
    DATA_PAGE,
    DATA_PAGE_V2,
    DICTIONARY_PAGE,
    PLAIN,
    PLAIN_DICTIONARY,
    RLE,
    RLE_DICTIONARY,
    ByteRanges,
    ChunkPages,
    _rle_hybrid,
)
from hf_assets.data.sparse_stream import TAG_READ, CachedRanges, open_stream, plain_values_at
from hf_assets.data.thrift_compact import TruncatedThrift, read_struct

SPARSE_CODECS = (None, "snappy")
SPARSE_MIN_PAGE = 64 << 10  # pages smaller than this are read whole (one read; the walk would save little)
SPARSE_SAVING = 0.95  # read a page value by value when that is expected to cost at most this share of the page
WALK_BYTES = {None: 8, "snappy": 128}  # bytes read per value walked over (its length; snappy: element tags)


def sparse_worthwhile(chunk: ChunkPages, page_bytes: int, wanted: int, rows: int) -> bool:
    """True when reading `wanted` of a page's `rows` values one by one is expected to cost less than the page."""
    if chunk.codec not in SPARSE_CODECS or page_bytes < SPARSE_MIN_PAGE:
        return False
    return _sparse(chunk, page_bytes, wanted, rows) <= SPARSE_SAVING * page_bytes


def _sparse(chunk: ChunkPages, page_bytes: int, wanted: int, rows: int) -> float:
    return page_bytes * wanted / max(rows, 1) + WALK_BYTES[chunk.codec] * rows


def estimated_bytes(chunk: ChunkPages, rows: list[int]) -> float:
    """Bytes that reading `rows` (row-group-local) of a chunk is expected to cost, page by page or value by value,
    the dictionary page included."""
    counts: dict[int, int] = {}
    for row in set(rows):
        page = chunk.page_of(row)
        counts[page] = counts.get(page, 0) + 1
    total = 0.0
    for page, wanted in counts.items():
        first, end = chunk.page_rows(page)
        total += _cost(chunk, chunk.sizes[page], wanted, end - first)
    if chunk.dictionary:
        total += _cost(chunk, chunk.dictionary[1], sum(counts.values()), chunk.rows)
    return total


def row_cost(chunk: ChunkPages, page_bytes: int, rows: int) -> float | None:
    """Expected bytes of one row read value by value from a page of `rows` rows; None when it would be read whole."""
    if not sparse_worthwhile(chunk, page_bytes, 1, rows):
        return None
    return page_bytes / max(rows, 1) + WALK_BYTES[chunk.codec] * rows / 2


def _cost(chunk: ChunkPages, page_bytes: int, wanted: int, rows: int) -> float:
    if not sparse_worthwhile(chunk, page_bytes, wanted, rows):
        return page_bytes
    return _sparse(chunk, page_bytes, wanted, rows)


class _Page:
    """One page's header and a cache over its bytes."""

    def __init__(self, ranges: ByteRanges, offset: int, size: int):
        self.cache = CachedRanges(ranges, offset, size)
        read = TAG_READ
        while True:
            try:
                self.header, self.body = read_struct(memoryview(self.cache.get(0, read, read)))
                break
            except TruncatedThrift:
                if read >= size:
                    raise
                read *= 4
        self.compressed, self.uncompressed = self.header[3], self.header[2]


def page_entries(ranges: ByteRanges, chunk: ChunkPages, page: int, rows: list[int]) -> dict | None:
    """{row-group-local row: bytes, dictionary index (int) or None} for `rows` of one data page, reading only what
    they need; None when this page cannot be read so (the caller reads it whole)."""
    first, _ = chunk.page_rows(page)
    read = _Page(ranges, chunk.offsets[page], chunk.sizes[page])
    header, bit_width = read.header, chunk.max_def.bit_length()
    if header[1] == DATA_PAGE_V2:
        v2 = header[8]
        count, encoding, def_bytes, rep_bytes = v2[1], v2[4], v2[5], v2[6]
        levels = read.cache.get(read.body + rep_bytes, def_bytes)
        defs = _rle_hybrid(levels, bit_width, count) if chunk.max_def else np.zeros(count, np.int64)
        codec = chunk.codec if v2.get(7, True) else None
        start = read.body + rep_bytes + def_bytes
        stream = open_stream(read.cache, start, read.compressed - rep_bytes - def_bytes, codec)
        values_at = 0
    elif header[1] == DATA_PAGE:
        count, encoding = header[5][1], header[5][2]
        stream = open_stream(read.cache, read.body, read.compressed, chunk.codec)
        if stream is None:
            return None
        defs, values_at = np.zeros(count, np.int64), 0
        if chunk.max_def:
            if header[5][3] != RLE:
                return None
            length = struct.unpack("<I", stream.read(0, 4))[0]
            defs = _rle_hybrid(stream.read(4, length), bit_width, count)
            values_at = 4 + length
    else:
        return None
    if stream is None:
        return None
    present = defs == chunk.max_def
    ordinal = np.cumsum(present) - 1  # each present row's place among the page's values
    local = sorted({r - first for r in rows})
    wanted = [int(ordinal[r]) for r in local if present[r]]
    if encoding == PLAIN:
        values = plain_values_at(stream, values_at, wanted)
    elif encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY):
        body = stream.read(values_at, stream.size - values_at)  # indices: small next to the dictionary
        indices = _rle_hybrid(memoryview(body)[1:], body[0], int(present.sum())).tolist() if wanted else []
        values = {k: int(indices[k]) for k in wanted}
    else:
        return None
    return {first + r: values[int(ordinal[r])] if present[r] else None for r in local}


def dictionary_values(ranges: ByteRanges, chunk: ChunkPages, ordinals: list[int]) -> dict[int, bytes] | None:
    """The dictionary page's values at `ordinals`, reading only those; None when the page is to be read whole."""
    offset, size = chunk.dictionary
    if not sparse_worthwhile(chunk, size, len(ordinals), chunk.rows):
        return None
    read = _Page(ranges, offset, size)
    if read.header[1] != DICTIONARY_PAGE:
        return None
    count, encoding = read.header[7][1], read.header[7].get(2, PLAIN)
    if encoding not in (PLAIN, PLAIN_DICTIONARY) or not sparse_worthwhile(chunk, size, len(ordinals), count):
        return None
    stream = open_stream(read.cache, read.body, read.compressed, chunk.codec)
    return plain_values_at(stream, 0, sorted(set(ordinals)))
