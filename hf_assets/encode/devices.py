"""One GPU per step on a machine running several steps at once: a shard prefers GPU (shard mod count) and takes the
first free one, held by a lock file, so two steps never share a device."""

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None

LOCK_DIR = Path(tempfile.gettempdir()) / f"hf_assets-devices-{os.getuid() if hasattr(os, 'getuid') else 0}"


@contextlib.contextmanager
def claim_device(
    count: int, preferred: int, lock_dir: Path = LOCK_DIR, poll_seconds: float = 1.0, log: Callable[[str], None] = print
) -> Iterator[int]:
    """Hold one of `count` devices for the block: `preferred` mod count if free, else the next free one, else wait."""
    if count < 1:
        raise ValueError(f"claim_device: need at least one device, got {count}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    order = [(preferred + i) % count for i in range(count)]
    waited = False
    while True:
        for index in order:
            handle = open(lock_dir / f"device-{index}.lock", "a+b")  # held for the block
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
            try:
                yield index
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()
            return
        if not waited:
            log(
                f"all {count} devices are held by other steps; waiting for one (keep max_concurrent and the gpu "
                "pool limit at or below the number of GPUs)"
            )
            waited = True
        time.sleep(poll_seconds)
