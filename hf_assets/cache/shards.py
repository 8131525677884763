"""Shards: safetensors files holding many entries' tensors, written atomically, read memory-mapped."""

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hf_assets.cache.atomic import atomic_writer

log = logging.getLogger(__name__)

SHARD_SUFFIX = ".safetensors"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
SHARD_FORMAT = "hf_assets.shard/1"


def stored_name(key: str, name: str) -> str:
    """The name a tensor is stored under inside a shard: `"{key}/{name}"`."""
    return f"{key}/{name}"


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` -> `"bfloat16"`."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class ShardEntry:
    """One key's tensors inside a flushed shard (short names, shapes and dtypes in the same order)."""

    key: str
    tensor_names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    nbytes: int


@dataclass(frozen=True)
class FlushedShard:
    """A shard durably on disk, with the entries it holds."""

    name: str
    entries: tuple[ShardEntry, ...]
    nbytes: int


def _own_cpu_copy(t: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU tensor owning its storage (no shared views, no aliasing of caller memory)."""
    t = t.detach()
    if t.device.type != "cpu":
        return t.to("cpu").contiguous()
    return t.clone(memory_format=torch.contiguous_format)


class ShardWriter:
    """Buffer entries and write them as safetensors shards of at most ~`max_bytes` each.

    An entry's location becomes known (via `on_flush` and `flushed`) only after its shard file is
    durably renamed into place, so nothing can record a key whose shard does not exist.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        prefix: str = "shard",
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_flush: Callable[[FlushedShard], None] | None = None,
        skip: set[str] | None = None,
    ):
        if "/" in prefix or prefix.startswith("."):
            raise ValueError(f"ShardWriter: prefix {prefix!r} must be a plain, non-hidden name")
        if max_bytes <= 0:
            raise ValueError(f"ShardWriter: max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_bytes = int(max_bytes)
        self.on_flush = on_flush
        self.skip = skip or set()  # keys already stored (by another writer): `add` ignores them
        self.flushed: list[FlushedShard] = []
        self._buffer: dict[str, torch.Tensor] = {}
        self._entries: list[ShardEntry] = []
        self._keys: set[str] = set()
        self._nbytes = 0
        self._name = self._new_name()

    def _new_name(self) -> str:
        return f"{self.prefix}-{uuid.uuid4().hex}{SHARD_SUFFIX}"

    @property
    def buffered_keys(self) -> int:
        """Number of entries waiting in the buffer."""
        return len(self._entries)

    def add(self, key: str, tensors: Mapping[str, torch.Tensor]) -> tuple[str, list[str]]:
        """Buffer one entry; return (shard it will be written to, stored tensor names), ("", []) for a skipped key."""
        if key in self.skip:
            return "", []
        if not key or not tensors:
            raise ValueError(f"ShardWriter.add: need a non-empty key and at least one tensor (key={key!r})")
        if key in self._keys:
            raise ValueError(f"ShardWriter.add: key {key!r} is already in the current shard buffer")
        copies = {name: _own_cpu_copy(t) for name, t in tensors.items()}
        nbytes = sum(t.numel() * t.element_size() for t in copies.values())
        if self._entries and self._nbytes + nbytes > self.max_bytes:
            self.flush()
        stored = [stored_name(key, name) for name in copies]
        self._buffer.update(zip(stored, copies.values()))
        self._entries.append(
            ShardEntry(
                key=key,
                tensor_names=tuple(copies),
                shapes=tuple(tuple(t.shape) for t in copies.values()),
                dtypes=tuple(dtype_name(t.dtype) for t in copies.values()),
                nbytes=nbytes,
            )
        )
        self._keys.add(key)
        self._nbytes += nbytes
        shard = self._name
        if self._nbytes >= self.max_bytes:
            self.flush()
        return shard, stored

    def flush(self) -> FlushedShard | None:
        """Write the buffered entries as one shard (atomically), report it, and start a new buffer."""
        if not self._entries:
            return None
        path = self.directory / self._name
        with atomic_writer(path) as tmp:
            save_file(self._buffer, tmp, metadata={"format": SHARD_FORMAT})
        shard = FlushedShard(name=self._name, entries=tuple(self._entries), nbytes=self._nbytes)
        self._buffer, self._entries, self._keys, self._nbytes = {}, [], set(), 0
        self._name = self._new_name()
        self.flushed.append(shard)
        if self.on_flush is not None:
            self.on_flush(shard)
        return shard

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
            return
        # The buffered entries are complete: keep them so a resumed run need not redo them.
        try:
            self.flush()
        except Exception:  # never mask the original error
            log.exception("ShardWriter: could not flush %d buffered entries after an error", len(self._entries))


class UnreadableShard(OSError):
    """A shard file that safetensors cannot open (corrupt or truncated); the message names it and the fix."""


class ShardReader:
    """Memory-mapped access to the shards of one directory; handles open lazily and are cached."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._handles: dict[str, object] = {}

    def _handle(self, shard: str):
        handle = self._handles.get(shard)
        if handle is None:
            if "/" in shard or shard.startswith("."):
                raise ValueError(f"ShardReader: bad shard name {shard!r}")
            path = self.directory / shard
            try:
                handle = safe_open(str(path), framework="pt", device="cpu")
            except Exception as error:  # safetensors' SafetensorError derives from Exception only
                if isinstance(error, FileNotFoundError):
                    raise
                raise UnreadableShard(
                    f"{path} is unreadable ({type(error).__name__}: {error}); materialize the asset that wrote "
                    "this cache again for its partition: entries of an unreadable shard are encoded again"
                ) from error
            self._handles[shard] = handle
        return handle

    def get(self, shard: str, name: str) -> torch.Tensor:
        """Read one stored tensor from a shard."""
        return self._handle(shard).get_tensor(name)

    def close(self) -> None:
        """Drop every open handle (their memory maps close when released)."""
        self._handles.clear()

    def __getstate__(self) -> dict:  # picklable for DataLoader workers: reopen lazily there
        return {"directory": self.directory, "_handles": {}}


def list_shards(directory: str | os.PathLike, prefix: str | None = None) -> list[str]:
    """Sorted names of the finished shard files in `directory` (temps and hidden files excluded)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    with os.scandir(directory) as it:
        names = [
            e.name
            for e in it
            if e.name.endswith(SHARD_SUFFIX)
            and not e.name.startswith(".")
            and (prefix is None or e.name.startswith(f"{prefix}-"))
            and e.is_file()
        ]
    return sorted(names)


def delete_shards(directory: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Delete the named shard files (missing ones are ignored); return those removed."""
    directory = Path(directory)
    removed = []
    for name in names:
        if "/" in name or not name.endswith(SHARD_SUFFIX):
            raise ValueError(f"delete_shards: {name!r} is not a shard file name")
        try:
            (directory / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed
