"""Which step failures are retried with backoff (network, remote files, CUDA out-of-memory, a busy cache) and
which fail at once with their message (config and data errors, a missing dataset or model, a full disk)."""

import errno
import functools
from collections.abc import Callable, Iterator

import dagster as dg

from hf_assets import env

# Errors of these kinds raised by hf_assets itself are verdicts on the config or the data (ConfigError, DatasetNotFound,
# MissingColumn, ColumnTypeError, UnreadableImage, ModelNotFound, ...): no retry changes them, whatever they wrap.
PERMANENT_KINDS = (ValueError, TypeError, LookupError, FileNotFoundError, NotADirectoryError)


def transient_retry() -> dg.RetryPolicy:
    """3 retries after about 15 s, 30 s, 60 s (+/- jitter): long enough for a Hub hiccup or another process to free
    GPU memory. HF_ASSETS_RETRY_DELAY sets the first delay (the tests set 0)."""
    delay = env.retry_delay_s()
    return dg.RetryPolicy(max_retries=3, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


TRANSIENT_RETRY = transient_retry()  # read when this module is imported; builders call transient_retry()
TRANSIENT_STATUS = frozenset({408, 425, 429})  # and every 5xx
NETWORK_MODULES = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "fsspec", "socket", "ssl")
TRANSIENT_NAMES = frozenset({"OutOfMemoryError", "CacheBusyError"})  # torch's CUDA OOM; another writer of a cache
PERMANENT_NAMES = frozenset({"OfflineModeIsEnabled"})  # HF_HUB_OFFLINE: no retry can reach the Hub


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from: `__cause__`, else `__context__` unless `raise ... from None` (or
    `from X`) suppressed it; an error that hides its context means to hide it from this walk too."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        if error.__cause__ is not None:
            error = error.__cause__
        elif error.__suppress_context__:
            error = None
        else:
            error = error.__context__


def _is_verdict(error: BaseException) -> bool:
    """A config or data error raised by hf_assets (its own exception types)."""
    return type(error).__module__.startswith("hf_assets.") and isinstance(error, PERMANENT_KINDS)


def is_transient(error: BaseException) -> bool:
    """True when running the step again later may succeed: a network read, a remote fetch, out of GPU memory
    (raised only after the batch fallback reached one sample), or a cache another process is writing."""
    for e in _chain(error):
        name = type(e).__name__
        if name in PERMANENT_NAMES or _is_verdict(e):
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
    """Let transient errors reach the step's RetryPolicy; turn every other error into a Failure that is not retried.
    A Failure the step raises itself is a verdict too (an empty split, every row dropped) and is not retried; a step
    that wants another attempt raises RetryRequested."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except dg.RetryRequested:
            raise
        except dg.Failure as failure:
            if not failure.allow_retries:
                raise
            raise dg.Failure(
                description=failure.description, metadata=failure.metadata, allow_retries=False
            ) from failure
        except Exception as error:
            if is_transient(error):
                raise
            raise dg.Failure(
                description=failure_message(error), allow_retries=False, metadata={"error_type": type(error).__name__}
            ) from error

    return wrapper
