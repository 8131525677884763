"""Shard health: which shards cannot be read, which stored tensors hold NaN or inf, and what a shard holds.

Read from the files themselves, so a cache repairs itself: entries of an unreadable shard or with a non-finite
tensor count as missing and are encoded again, and a lost manifest is rebuilt from the shards' headers.

`verified.json` remembers each inspected shard by "size:mtime_ns", so an unchanged shard is never read twice;
`full=True` ignores it and reads every shard again (for files changed with their mtime kept).
"""

import json
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from safetensors import safe_open

from hf_assets.cache.atomic import write_json_atomic
from hf_assets.cache.hashing import file_stamp

VERIFIED_FILE = "verified.json"  # shard -> "size:mtime_ns" (clean) or {"stamp", "nonfinite" | "unreadable"}
MAX_HEADER_BYTES = 100 << 20
# safetensors dtype codes -> torch dtype names, as the manifest records them
DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}

log = logging.getLogger(__name__)


class CorruptShard(OSError):
    """A shard file whose header does not describe a complete safetensors file; the message names the file."""


@dataclass
class ShardHealth:
    """What inspecting some shards found."""

    unreadable: dict[str, str] = field(default_factory=dict)  # shard -> reason
    nonfinite: dict[str, list[str]] = field(default_factory=dict)  # shard -> stored names holding NaN or inf

    def bad_keys(self) -> set[tuple[str, str]]:
        """(shard, entry key) pairs whose tensors are non-finite."""
        return {(shard, name.rsplit("/", 1)[0]) for shard, names in self.nonfinite.items() for name in names}


def read_header(path: Path) -> dict:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets), checked against its size.

    Raises CorruptShard for a short file, a header that is not JSON, or data extending past the end of the file
    (a truncated shard); the `__metadata__` entry is dropped.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CorruptShard(f"{path}: {size} bytes, too short for a safetensors header")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise CorruptShard(f"{path}: header length {length} exceeds the file ({size} bytes)")
            header = json.loads(f.read(length))
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptShard(f"{path}: header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise CorruptShard(f"{path}: header is not a JSON object")
    header.pop("__metadata__", None)
    end = 0
    for name, spec in header.items():
        try:
            begin, stop = spec["data_offsets"]
            DTYPES[spec["dtype"]]
            [int(d) for d in spec["shape"]]
        except (KeyError, TypeError, ValueError):
            raise CorruptShard(f"{path}: malformed header entry {name!r}") from None
        end = max(end, stop)
    if 8 + length + end != size:
        raise CorruptShard(f"{path}: data ends at byte {8 + length + end} but the file has {size} bytes (truncated)")
    return header


def entries_from_header(shard: str, header: dict) -> list[dict]:
    """Manifest location rows (ENTRY_SCHEMA) of the entries a shard holds, from its tensor table."""
    by_key: dict[str, list[tuple[int, str, dict]]] = {}
    for stored, spec in header.items():
        key, _, name = stored.rpartition("/")
        if key and name:
            by_key.setdefault(key, []).append((spec["data_offsets"][0], name, spec))
    rows = []
    for key, tensors in by_key.items():
        tensors.sort()  # write order: a writer stores an entry's tensors one after the other
        dtypes = [DTYPES[spec["dtype"]] for _, _, spec in tensors]
        rows.append(
            {
                "key": key,
                "shard": shard,
                "tensor_names": [name for _, name, _ in tensors],
                "shapes": [[int(d) for d in spec["shape"]] for _, _, spec in tensors],
                "dtypes": dtypes,
                "dtype": dtypes[0] if len(set(dtypes)) == 1 else "mixed",
                "nbytes": sum(spec["data_offsets"][1] - spec["data_offsets"][0] for _, _, spec in tensors),
            }
        )
    return rows


def recover_entries(shards_dir: Path, shards: Iterable[str], schema: pa.Schema) -> tuple[pa.Table, dict[str, str]]:
    """The entries of shards nothing records (a lost manifest or journal), and the shards whose header is unreadable."""
    rows, unreadable = [], {}
    for shard in shards:
        try:
            rows.extend(entries_from_header(shard, read_header(shards_dir / shard)))
        except (CorruptShard, OSError) as error:
            unreadable[shard] = str(error)
    return pa.Table.from_pylist(rows, schema=schema), unreadable


def inspect_shards(
    directory: Path, shards: Iterable[str], shards_subdir: str = "shards", full: bool = False
) -> ShardHealth:
    """Read each shard not yet verified in its current state: header, then every floating tensor's finiteness."""
    directory = Path(directory)
    memo_path = directory / VERIFIED_FILE
    memo = {} if full else read_memo(memo_path)
    kept = {
        shard: value
        for shard, value in read_memo(memo_path).items()  # forget deleted shards
        if (directory / shards_subdir / shard).exists()
    }
    health = ShardHealth()
    for shard in sorted(set(shards)):
        path = directory / shards_subdir / shard
        stamp = file_stamp(path)
        if stamp is None:
            kept.pop(shard, None)
            continue
        known = memo.get(shard)
        if known is None or _stamp_of(known) != stamp:
            known = _inspect(path, stamp)
            if file_stamp(path) == stamp:  # not rewritten while it was read
                kept[shard] = known
        if isinstance(known, dict) and known.get("unreadable"):
            health.unreadable[shard] = known["unreadable"]
        elif isinstance(known, dict) and known.get("nonfinite"):
            health.nonfinite[shard] = list(known["nonfinite"])
    _write_memo(memo_path, kept)
    return health


def forget_shards(directory: Path, shards: Iterable[str] | None = None) -> None:
    """Drop shards from the memo (all when None), so the next inspection reads them again."""
    memo_path = Path(directory) / VERIFIED_FILE
    if shards is None:
        memo_path.unlink(missing_ok=True)
        return
    memo = read_memo(memo_path)
    for shard in shards:
        memo.pop(shard, None)
    _write_memo(memo_path, memo)


def _inspect(path: Path, stamp: str) -> str | dict:
    """The memo value of one shard: its stamp when clean, else a dict saying what is wrong."""
    import torch  # here, not at module level: the definitions import this module and must load without torch

    try:
        header = read_header(path)
        bad = []
        with safe_open(str(path), framework="pt") as f:
            for name in header:
                tensor = f.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    bad.append(name)
    except Exception as error:  # noqa: BLE001 - safetensors' SafetensorError derives from Exception only
        reason = str(error) if isinstance(error, CorruptShard) else f"{path}: {type(error).__name__}: {error}"
        return {"stamp": stamp, "unreadable": reason}
    return {"stamp": stamp, "nonfinite": sorted(bad)} if bad else stamp


def _stamp_of(value) -> str | None:
    return value if isinstance(value, str) else value.get("stamp") if isinstance(value, dict) else None


def read_memo(path: Path) -> dict:
    """shard -> memo value; {} when the memo is absent or unreadable (everything is read again)."""
    try:
        memo = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(memo, dict):
        return {}
    return {k: v for k, v in memo.items() if isinstance(k, str) and _stamp_of(v)}


def _write_memo(path: Path, memo: dict) -> None:
    if memo == read_memo(path):
        return
    try:
        write_json_atomic(memo, path)
    except OSError as error:  # the memo only saves time: a read-only cache is still checked in full
        log.warning("could not write %s: %s", path, error)
