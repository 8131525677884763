"""Read Thrift compact-protocol structs, the encoding of Parquet footers, page headers and page indexes.

Structs decode to {field id: value}: integers, bytes, lists, nested dicts. Only reading, and only what Parquet uses.
"""

import struct

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)


class TruncatedThrift(ValueError):
    """The buffer ended inside a struct: read more bytes and decode again."""


def _varint(buf, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise TruncatedThrift("varint runs past the buffer")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf, pos: int, kind: int):
    if kind in (TRUE, FALSE):
        return kind == TRUE, pos
    if kind == BYTE:
        return struct.unpack_from("b", buf, pos)[0], pos + 1
    if kind in (I16, I32, I64):
        raw, pos = _varint(buf, pos)
        return _zigzag(raw), pos
    if kind == DOUBLE:
        return struct.unpack_from("<d", buf, pos)[0], pos + 8
    if kind == BINARY:
        length, pos = _varint(buf, pos)
        if pos + length > len(buf):
            raise TruncatedThrift("binary runs past the buffer")
        return bytes(buf[pos : pos + length]), pos + length
    if kind in (LIST, SET):
        return _list(buf, pos)
    if kind == MAP:
        return _map(buf, pos)
    if kind == STRUCT:
        return read_struct(buf, pos)
    raise ValueError(f"not a Thrift compact type: {kind}")


def _list(buf, pos: int) -> tuple[list, int]:
    if pos >= len(buf):
        raise TruncatedThrift("list header past the buffer")
    header = buf[pos]
    pos += 1
    size, kind = header >> 4, header & 0x0F
    if size == 15:
        size, pos = _varint(buf, pos)
    items = []
    for _ in range(size):
        if kind in (TRUE, FALSE):  # booleans in a collection take one byte each
            items.append(buf[pos] == TRUE)
            pos += 1
        else:
            item, pos = _value(buf, pos, kind)
            items.append(item)
    return items, pos


def _map(buf, pos: int) -> tuple[dict, int]:
    size, pos = _varint(buf, pos)
    if size == 0:
        return {}, pos
    kinds = buf[pos]
    pos += 1
    out = {}
    for _ in range(size):
        key, pos = _value(buf, pos, kinds >> 4)
        out[key], pos = _value(buf, pos, kinds & 0x0F)
    return out, pos


def read_struct(buf, pos: int = 0) -> tuple[dict, int]:
    """The struct starting at `pos` as {field id: value}, and the position after it."""
    fields: dict = {}
    field = 0
    while True:
        if pos >= len(buf):
            raise TruncatedThrift("struct runs past the buffer")
        header = buf[pos]
        pos += 1
        if header == STOP:
            return fields, pos
        kind, delta = header & 0x0F, header >> 4
        if delta:
            field += delta
        else:
            raw, pos = _varint(buf, pos)
            field = _zigzag(raw)
        fields[field], pos = _value(buf, pos, kind)
