"""Crash-safe file writes: write a temp file beside the target, fsync it, then `os.replace`."""

import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# `.{final name}.tmp-{pid}-{8 hex}`: hidden, never matches a `*.safetensors` / `*.parquet` glob.
_TEMP_RE = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}$")


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temp name in the same directory as `path` (same filesystem, so rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def is_temp_name(name: str) -> bool:
    """True when `name` is a temp file name made by `temp_path_for`."""
    return _TEMP_RE.match(name) is not None


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms/filesystems cannot open a directory for fsync
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows (thread-safe on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it: restore at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; on success fsync and rename it to `path`, on error remove it.

    The file gets the mode the process umask gives any new file, whatever the writing library chose for its temp
    (some create 0600 files), so a trainer running as another user can read the caches as it reads the metadata.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_writer: nothing was written to {tmp} for {path}")
        os.chmod(tmp, file_mode())
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(path.parent, directory=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; return the path."""
    path = Path(path)
    with atomic_writer(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def write_json_atomic(obj: Any, path: str | os.PathLike, **dumps_kwargs: Any) -> Path:
    """Write `obj` as indented, key-sorted JSON to `path` atomically; return the path."""
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("sort_keys", True)
    return atomic_write_bytes(path, (json.dumps(obj, **dumps_kwargs) + "\n").encode())


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike, **write_kwargs: Any) -> Path:
    """Write `table` as Parquet to `path` atomically; return the path."""
    path = Path(path)
    with atomic_writer(path) as tmp:
        pq.write_table(table, tmp, **write_kwargs)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def clean_stale_temps(directory: str | os.PathLike, include_live: bool = False) -> list[Path]:
    """Remove temp files left by killed writers in `directory` (not recursive); return them.

    Temps whose writer pid is still alive (this process included) are kept unless `include_live`.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    with os.scandir(directory) as it:
        for entry in it:
            match = _TEMP_RE.match(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            if not include_live and _pid_alive(int(match.group(1))):
                continue
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return sorted(removed)
