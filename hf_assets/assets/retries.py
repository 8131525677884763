"""Which step failures are retried with backoff (network, remote files, CUDA out-of-memory, a busy cache) and
which fail at once with their message (config and data errors, missing models, a full disk)."""

import errno
import functools
from collections.abc import Callable, Iterator

import dagster as dg

# 15 s, 30 s, 60 s (each +/- jitter): long enough for a Hub hiccup or another process to free GPU memory.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
TRANSIENT_STATUS = frozenset({408, 425, 429})  # and every 5xx
NETWORK_MODULES = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "fsspec", "socket", "ssl")
TRANSIENT_NAMES = frozenset({"OutOfMemoryError", "CacheBusyError"})  # torch's CUDA OOM; another writer of a cache
PERMANENT_NAMES = frozenset({"OfflineModeIsEnabled"})  # HF_HUB_OFFLINE: no retry can reach the Hub


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_transient(error: BaseException) -> bool:
    """True when running the step again later may succeed: a network read, a remote fetch, out of GPU memory
    (raised only after the batch fallback reached one sample), or a cache another process is writing."""
    for e in _chain(error):
        name = type(e).__name__
        if name in PERMANENT_NAMES:
            return False
        if name in TRANSIENT_NAMES or (isinstance(e, RuntimeError) and "out of memory" in str(e)):
            return True
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int):
            return status in TRANSIENT_STATUS or status >= 500
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            return False
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        if type(e).__module__.split(".")[0] in NETWORK_MODULES:
            return True
    return False


def failure_message(error: BaseException) -> str:
    """The error's message; other libraries' errors keep their type in front."""
    message = str(error) or type(error).__name__
    if type(error).__module__.startswith("hf_assets") or isinstance(error, (ValueError, KeyError)):
        return message
    return f"{type(error).__name__}: {message}"


def retry_only_transient(fn: Callable) -> Callable:
    """Let transient errors reach the step's RetryPolicy; turn every other error into a Failure that is not retried."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (dg.Failure, dg.RetryRequested):
            raise
        except Exception as error:
            if is_transient(error):
                raise
            raise dg.Failure(
                description=failure_message(error), allow_retries=False, metadata={"error_type": type(error).__name__}
            ) from error

    return wrapper
