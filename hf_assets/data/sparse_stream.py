"""Random access to the bytes of one Parquet page body without reading all of it: stored as is, or snappy-compressed.

A snappy stream is a run of elements, each a literal (bytes stored as they are) or a copy (of `length` bytes from
`offset` bytes back in the output). Walking the elements needs only their tags, a few bytes each: a literal's tag
says how long it is, so the walk jumps over its bytes. Incompressible values such as JPEG or WebP bytes are almost
all literal, so a 2 MB page of images has some tens of elements, and reading one image out of it costs that image's
bytes plus a small read per element tag walked, not the page. Copies are resolved from the output they point at,
which is read the same way. Other codecs have no such structure and are read whole by the caller.
"""

import bisect
import struct

from hf_assets.data.parquet_pages import ByteRanges

TAG_READ = 64  # bytes read at an element tag: the next tags when elements are short (a copy is 2 to 5 bytes)
GAP = 64  # compressed ranges closer than this are fetched in one read


class CachedRanges:
    """Ranged reads of one region of a file [base, base + length), keeping what was read (a page's worth at most)."""

    def __init__(self, ranges: ByteRanges, base: int, length: int):
        self.ranges, self.base, self.length = ranges, base, length
        self.starts: list[int] = []  # sorted, non-overlapping segments read so far
        self.data: list[bytes] = []

    def _missing(self, offset: int, end: int) -> list[tuple[int, int]]:
        """The parts of [offset, end) that no segment holds, as (start, end)."""
        out, at = [], offset
        k = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        while at < end and k < len(self.starts):
            start, stop = self.starts[k], self.starts[k] + len(self.data[k])
            if start > at:
                out.append((at, min(start, end)))
            at = max(at, stop)
            k += 1
        if at < end:
            out.append((at, end))
        return out

    def fetch(self, spans: list[tuple[int, int]]) -> None:
        """Read what is missing of every (offset, length) span, parts closer than GAP in one read each."""
        missing = sorted(part for o, n in spans for part in self._missing(o, min(o + n, self.length)))
        merged: list[list[int]] = []
        for start, end in missing:
            if merged and start <= merged[-1][1] + GAP:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:  # one read each; what is held already is not stored twice
            parts = self._missing(start, end)
            data = self.ranges.read(self.base + start, end - start)
            for a, b in parts:
                k = bisect.bisect_left(self.starts, a)
                self.starts.insert(k, a)
                self.data.insert(k, data[a - start : b - start])

    def get(self, offset: int, n: int, ahead: int = 0) -> bytes:
        """`n` bytes at `offset` of the region (fewer at its end); a read when missing takes `ahead` bytes more."""
        end = min(offset + n, self.length)
        if self._missing(offset, end):
            self.fetch([(offset, max(end - offset, ahead))])
        k = bisect.bisect_right(self.starts, offset) - 1
        out = bytearray()
        at = offset
        while at < end:
            start, data = self.starts[k], self.data[k]
            out += data[at - start : end - start]
            at = start + len(data)
            k += 1
        return bytes(out)


class PlainStream:
    """A page body stored as is, `length` bytes at `start` of a cached region: its bytes are the file's bytes."""

    def __init__(self, cache: CachedRanges, start: int, length: int):
        self.cache, self.start, self.size = cache, start, length

    def read(self, pos: int, n: int, ahead: int = 0) -> bytes:
        return self.cache.get(self.start + pos, min(n, self.size - pos), ahead)


class SnappyStream:
    """A raw snappy stream of `length` bytes at `start` of a cached region; read(pos, n) gives uncompressed bytes."""

    def __init__(self, cache: CachedRanges, start: int, length: int):
        self.cache = cache
        self.clen = start + length  # compressed positions are region offsets
        head = self.cache.get(start, 5, TAG_READ)
        self.size, used = _varint(head, 0)  # uncompressed size
        self.c = start + used  # region offset of the next tag
        self.u = 0  # uncompressed position the walk has reached
        self.starts: list[int] = []  # per element: uncompressed start
        self.lengths: list[int] = []
        self.sources: list[int] = []  # literal: region offset of its bytes; copy: -(offset back)

    def _walk_to(self, target: int) -> None:
        """Index elements until the walk covers uncompressed position `target` (exclusive)."""
        while self.u < target and self.c < self.clen:
            tag = self.cache.get(self.c, 5, TAG_READ)
            kind = tag[0] & 3
            if kind == 0:
                length = tag[0] >> 2
                extra = 0 if length < 60 else length - 59
                if extra:
                    length = int.from_bytes(tag[1 : 1 + extra], "little")
                source = self.c + 1 + extra
                length += 1
                self.c = source + length
            else:
                if kind == 1:
                    length, back, used = ((tag[0] >> 2) & 7) + 4, ((tag[0] >> 5) << 8) | tag[1], 2
                elif kind == 2:
                    length, back, used = (tag[0] >> 2) + 1, int.from_bytes(tag[1:3], "little"), 3
                else:
                    length, back, used = (tag[0] >> 2) + 1, int.from_bytes(tag[1:5], "little"), 5
                if back == 0 or back > self.u:
                    raise ValueError(f"corrupt snappy stream: copy of offset {back} at output byte {self.u}")
                source = -back
                self.c += used
            self.starts.append(self.u)
            self.lengths.append(length)
            self.sources.append(source)
            self.u += length
        if self.u < target:
            raise ValueError(f"snappy stream ends at output byte {self.u}, before byte {target}")

    def read(self, pos: int, n: int, ahead: int = 0) -> bytes:
        """Uncompressed bytes [pos, pos + n) (fewer at the end); `ahead` is ignored (literal reads are exact)."""
        n = min(n, self.size - pos)
        if n <= 0:
            return b""
        self._walk_to(pos + n)
        first = bisect.bisect_right(self.starts, pos) - 1
        last = bisect.bisect_right(self.starts, pos + n - 1) - 1
        spans = []
        for k in range(first, last + 1):  # every literal part in one go: adjacent literals are one read
            if self.sources[k] >= 0:
                a, b = max(pos, self.starts[k]), min(pos + n, self.starts[k] + self.lengths[k])
                spans.append((self.sources[k] + a - self.starts[k], b - a))
        self.cache.fetch(spans)
        out = bytearray()
        for k in range(first, last + 1):
            a, b = max(pos, self.starts[k]), min(pos + n, self.starts[k] + self.lengths[k])
            source = self.sources[k]
            if source >= 0:
                out += self.cache.get(source + a - self.starts[k], b - a)
            else:
                out += self._copied(self.starts[k], -source, a, b)
        return bytes(out)

    def _copied(self, start: int, back: int, a: int, b: int) -> bytes:
        """Bytes [a, b) of a copy element that starts at `start` and repeats the output from `back` bytes before."""
        origin = start - back
        if back >= b - start:  # no overlap with itself: a plain earlier range
            return self.read(origin + (a - start), b - a)
        pattern = self.read(origin, back)  # the copy repeats these `back` bytes
        times = (b - start) // back + 1
        return (pattern * times)[a - start : b - start]


def open_stream(cache: CachedRanges, start: int, length: int, codec: str | None):
    """A random-access stream over a page body, or None when its codec has no random access here."""
    if codec is None:
        return PlainStream(cache, start, length)
    if codec == "snappy":
        return SnappyStream(cache, start, length)
    return None


def plain_values_at(stream, start: int, ordinals: list[int]) -> dict[int, bytes]:
    """PLAIN byte arrays (a 4-byte length, then the bytes) from uncompressed position `start` of `stream`: the
    values with the given ordinals. Walks the lengths up to the last one; reads only the wanted values' bytes."""
    wanted = set(ordinals)
    out: dict[int, bytes] = {}
    pos = start
    for k in range(max(ordinals) + 1 if ordinals else 0):
        length = struct.unpack("<I", stream.read(pos, 4))[0]
        if k in wanted:
            # the next value's length with it: one read instead of two where the stream is stored as is
            out[k] = stream.read(pos + 4, length, ahead=length + 4)
        pos += 4 + length
    return out


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
