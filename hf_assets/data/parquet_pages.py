"""The pages of one Parquet column chunk: where they are and how to decode them (data.page_rows reads chosen rows).

Pages are located with the file's offset index when it has one (one small read per column chunk), else by walking
the chunk's page headers. Pages are decoded here (PLAIN or dictionary byte arrays, data pages v1 and v2, the codecs
pyarrow ships); `Unsupported` says when a chunk needs the whole-chunk reader instead (repeated columns, delta
encodings, LZ4 with Hadoop framing).
"""

import bisect
import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hf_assets.data.thrift_compact import TruncatedThrift, read_struct

CODECS = {0: None, 1: "snappy", 2: "gzip", 4: "brotli", 6: "zstd", 7: "lz4_raw"}
DATA_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 2, 3
PLAIN, PLAIN_DICTIONARY, RLE, RLE_DICTIONARY = 0, 2, 3, 8
BYTE_ARRAY = 6
TAIL_READ = 16 << 10  # bytes read from a file's end to find its footer (one read for small footers)
HEADER_READ = 64  # bytes read for a page header while walking a chunk without offset index (more when needed)


class Unsupported(ValueError):
    """This chunk cannot be read page by page here; read it whole."""


class ByteRanges:
    """Ranged reads of one file, local or through an fsspec filesystem; counts the bytes it reads."""

    def __init__(self, fs, path: str, size: int | None = None):
        self.fs, self.path, self.bytes_read = fs, path, 0
        self._size = size
        self._handle = None  # an unbuffered file of a filesystem without ranged cat_file

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = int(self.fs.size(self.path)) if self.fs is not None else _local_size(self.path)
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        """`length` bytes at `offset` (fewer at the end of the file)."""
        end = min(offset + length, self.size)
        if self.fs is None:
            with open(self.path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(end - offset)
        elif _generic_cat(self.fs):  # one ranged request, not a buffered file's read-ahead blocks
            if self._handle is None:
                self._handle = self.fs.open(self.path, "rb", cache_type="none")
            data = self._handle._fetch_range(offset, end)
        else:
            data = self.fs.cat_file(self.path, start=offset, end=end)
        self.bytes_read += len(data)
        return data


def _generic_cat(fs) -> bool:
    """True when `fs` reads a byte range through fsspec's generic cat_file (a buffered file that reads ahead whole
    blocks, megabytes for a few bytes: the Hub's filesystem); HTTP, S3 and the like make one ranged request."""
    from fsspec import AbstractFileSystem

    return type(fs).cat_file is AbstractFileSystem.cat_file and not hasattr(fs, "_cat_file")


def _local_size(path: str) -> int:
    import os

    return os.stat(path).st_size


def read_footer(ranges: ByteRanges) -> dict:
    """The file's FileMetaData as a Thrift struct (row groups -> column chunks -> their offsets and indexes)."""
    size = ranges.size
    tail = ranges.read(max(0, size - TAIL_READ), min(size, TAIL_READ))
    length = struct.unpack_from("<I", tail, len(tail) - 8)[0] if tail[-4:] == b"PAR1" else None
    if length is not None and length + 8 > len(tail):
        tail = ranges.read(size - length - 8, length + 8)
    return parse_footer(tail)


def parse_footer(tail: bytes) -> dict:
    """The FileMetaData struct of a buffer that ends like a Parquet file (its footer, its length, PAR1)."""
    if tail[-4:] != b"PAR1":
        raise Unsupported("not the end of a Parquet file (no PAR1)")
    length = struct.unpack_from("<I", tail, len(tail) - 8)[0]
    footer, _ = read_struct(memoryview(tail), len(tail) - 8 - length)
    return footer


@dataclass(frozen=True)
class ChunkPages:
    """Where one column chunk's pages are: data pages as (offset, bytes, first row), the dictionary page if any."""

    leaf: str
    codec: str | None
    max_def: int
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    first_rows: tuple[int, ...]
    rows: int
    dictionary: tuple[int, int] | None  # (offset, bytes)
    from_index: bool

    def page_of(self, row: int) -> int:
        """The data page holding a row-group-local row."""
        return bisect.bisect_right(self.first_rows, row) - 1

    def page_rows(self, page: int) -> tuple[int, int]:
        """[first, end) rows of a data page."""
        end = self.first_rows[page + 1] if page + 1 < len(self.first_rows) else self.rows
        return self.first_rows[page], end


def chunk_pages(
    ranges: ByteRanges, footer: dict, row_group: int, leaf: int, leaf_name: str, max_def: int, max_rep: int
) -> ChunkPages:
    """The pages of column chunk (row group, leaf); from the offset index when the file has one."""
    if max_rep:
        raise Unsupported(f"{leaf_name} is a repeated column")
    group = footer[4][row_group]
    chunk = group[1][leaf]
    meta = chunk[3]
    if meta[1] != BYTE_ARRAY:
        raise Unsupported(f"{leaf_name} is not a byte array column")
    if meta[4] not in CODECS:
        raise Unsupported(f"{leaf_name}: codec {meta[4]} is not read page by page")
    rows = group[3]
    data_start = meta[9]
    dictionary_start = meta.get(11)
    dictionary = None
    if dictionary_start is not None and 0 < dictionary_start < data_start:
        dictionary = (dictionary_start, data_start - dictionary_start)
    if chunk.get(4) is not None and chunk.get(5):
        index, _ = read_struct(memoryview(ranges.read(chunk[4], chunk[5])))
        locations = index[1]
        offsets = tuple(loc[1] for loc in locations)
        sizes = tuple(loc[2] for loc in locations)
        firsts = tuple(loc[3] for loc in locations)
        return ChunkPages(leaf_name, CODECS[meta[4]], max_def, offsets, sizes, firsts, rows, dictionary, True)
    return _walk(ranges, meta, leaf_name, max_def, rows, dictionary)


def _walk(ranges: ByteRanges, meta: dict, leaf_name: str, max_def: int, rows: int, dictionary) -> ChunkPages:
    """Page locations from the page headers themselves: one small read per page."""
    start = dictionary[0] if dictionary else meta[9]
    end = start + meta[7]
    offsets, sizes, firsts, row, pos = [], [], [], 0, start
    while pos < end:
        header, length = _header_at(ranges, pos)
        total = length + header[3]
        if header[1] in (DATA_PAGE, DATA_PAGE_V2):
            offsets.append(pos)
            sizes.append(total)
            firsts.append(row)
            row += header[8][3] if header[1] == DATA_PAGE_V2 else header[5][1]
        elif header[1] == DICTIONARY_PAGE:
            dictionary = (pos, total)
        pos += total
    pages = (tuple(offsets), tuple(sizes), tuple(firsts))
    return ChunkPages(leaf_name, CODECS[meta[4]], max_def, *pages, rows, dictionary, False)


def _header_at(ranges: ByteRanges, pos: int) -> tuple[dict, int]:
    size = HEADER_READ
    while True:
        buf = ranges.read(pos, size)
        try:
            header, length = read_struct(memoryview(buf))
            return header, length
        except TruncatedThrift:
            if len(buf) < size:
                raise
            size *= 4


def _decompress(body, codec: str | None, size: int) -> bytes:
    if codec is None:
        return bytes(body)
    return pa.decompress(bytes(body), decompressed_size=size, codec=codec, asbytes=True)


def _rle_hybrid(buf, bit_width: int, count: int) -> np.ndarray:
    """`count` values of the RLE / bit-packed hybrid encoding (levels, dictionary indices)."""
    out = np.zeros(count, dtype=np.int64)
    if bit_width == 0:
        return out
    filled, pos, byte_width = 0, 0, (bit_width + 7) // 8
    while filled < count:
        header, shift = 0, 0
        while True:
            byte = buf[pos]
            pos += 1
            header |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if header & 1:  # bit-packed: groups of 8 values, least significant bit first
            values = (header >> 1) * 8
            nbytes = (header >> 1) * bit_width
            bits = np.unpackbits(np.frombuffer(bytes(buf[pos : pos + nbytes]), dtype=np.uint8), bitorder="little")
            weights = 1 << np.arange(bit_width, dtype=np.int64)
            unpacked = bits[: values * bit_width].reshape(values, bit_width).astype(np.int64) @ weights
            take = min(values, count - filled)
            out[filled : filled + take] = unpacked[:take]
            pos += nbytes
        else:
            take = min(header >> 1, count - filled)
            out[filled : filled + take] = int.from_bytes(bytes(buf[pos : pos + byte_width]), "little")
            pos += byte_width
        filled += take
    return out


def _plain_byte_arrays(buf, count: int) -> list[bytes]:
    values, pos = [], 0
    for _ in range(count):
        length = struct.unpack_from("<I", buf, pos)[0]
        values.append(bytes(buf[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return values


def _values(encoding: int, buf, count: int, dictionary: list[bytes] | None) -> list:
    """The page's values; for a dictionary-encoded page without `dictionary`, their dictionary indices."""
    if encoding == PLAIN:
        return _plain_byte_arrays(buf, count)
    if encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY):
        indices = _rle_hybrid(memoryview(buf)[1:], buf[0], count).tolist() if count else []
        return indices if dictionary is None else [dictionary[i] for i in indices]
    raise Unsupported(f"page encoding {encoding} is not read page by page")


def decode_dictionary(page: bytes, chunk: ChunkPages) -> list[bytes]:
    """The values of a dictionary page."""
    header, length = read_struct(memoryview(page))
    body = _decompress(memoryview(page)[length : length + header[3]], chunk.codec, header[2])
    return _plain_byte_arrays(body, header[7][1])


def decode_page(page: bytes, chunk: ChunkPages, dictionary: list[bytes] | None = None) -> list[bytes | None]:
    """A data page's value for each of its rows (None where null); dictionary indices (ints) when it is
    dictionary-encoded and `dictionary` is not given."""
    header, length = read_struct(memoryview(page))
    body = memoryview(page)[length : length + header[3]]
    bit_width = chunk.max_def.bit_length()
    if header[1] == DATA_PAGE_V2:
        v2 = header[8]
        count, def_bytes, rep_bytes = v2[1], v2[5], v2[6]
        levels = body[rep_bytes : rep_bytes + def_bytes]
        defs = _rle_hybrid(levels, bit_width, count) if chunk.max_def else np.full(count, 0)
        values_raw = body[rep_bytes + def_bytes :]
        if v2.get(7, True):
            values_raw = _decompress(values_raw, chunk.codec, header[2] - rep_bytes - def_bytes)
        encoding = v2[4]
    elif header[1] == DATA_PAGE:
        raw = _decompress(body, chunk.codec, header[2])
        count, encoding, pos = header[5][1], header[5][2], 0
        defs = np.full(count, 0)
        if chunk.max_def:
            if header[5][3] != RLE:
                raise Unsupported("definition levels not RLE-encoded")
            levels_length = struct.unpack_from("<I", raw, 0)[0]
            defs = _rle_hybrid(memoryview(raw)[4 : 4 + levels_length], bit_width, count)
            pos = 4 + levels_length
        values_raw = memoryview(raw)[pos:]
    else:
        raise Unsupported(f"page type {header[1]} is not a data page")
    present = defs == chunk.max_def
    values = iter(_values(encoding, values_raw, int(present.sum()), dictionary))
    return [next(values) if here else None for here in present.tolist()]
