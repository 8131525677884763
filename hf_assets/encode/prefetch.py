"""Load items on background threads, ahead of the consumer, in order and with bounded memory."""

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any, NamedTuple


class Prefetched(NamedTuple):
    """One job and what loading it gave: a value, or the exception it raised (then value is None)."""

    job: Any
    value: Any
    error: BaseException | None

    @property
    def ok(self) -> bool:
        """True when the load succeeded."""
        return self.error is None


def prefetch(
    jobs: Iterable, load_fn: Callable[[Any], Any], workers: int = 4, max_in_flight: int = 8
) -> Iterator[Prefetched]:
    """Yield Prefetched(job, load_fn(job), error) in job order, loading ahead on `workers` threads."""
    # At most max_in_flight jobs are submitted or loaded-but-unconsumed at once (the item held by the consumer
    # included), so memory stays bounded. load_fn's exceptions become the item's error; an exception from
    # the jobs iterable itself propagates. workers=0 loads inline.
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight={max_in_flight}: must be at least 1")
    jobs = iter(jobs)
    if workers <= 0:
        for job in jobs:
            yield _call(load_fn, job)
        return
    pool = ThreadPoolExecutor(max_workers=min(workers, max_in_flight), thread_name_prefix="prefetch")
    pending: deque[tuple[Any, Future]] = deque()
    try:
        for job in islice(jobs, max_in_flight):
            pending.append((job, pool.submit(_call, load_fn, job)))
        while pending:
            _, future = pending.popleft()
            item = future.result()
            del future
            yield item
            del item
            for job in islice(jobs, 1):
                pending.append((job, pool.submit(_call, load_fn, job)))
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _call(load_fn: Callable[[Any], Any], job: Any) -> Prefetched:
    """Run one load, capturing its exception as a value."""
    try:
        return Prefetched(job, load_fn(job), None)
    except Exception as error:  # noqa: BLE001 - reported per item, not fatal
        return Prefetched(job, None, error)


def group_batches(
    items: Iterable[Prefetched],
    group_of: Callable[[Any], Any],
    batch_size: int | Callable[[Any], int],
    failures: dict,
    reason: Callable[[BaseException], str],
    max_waiting: int | None = None,
) -> Iterator[list[tuple[Any, Any]]]:
    """(key, value) batches of loaded items of one group (`group_of(job)`, e.g. a target size), so each batch stacks;
    a job is `(key, ...)`. A batch goes as soon as it holds `batch_size` items (an int, or a function of the group).

    Items of a group wait for their batch to fill while other groups' items pass, so interleaved groups still make
    full batches; when more than `max_waiting` items wait (default four batches), the group with the most waiting goes
    as it is. What waits at the end goes last, group by group. A failed load is recorded as
    `failures[key] = reason(error)` and skipped.
    """
    size_of = batch_size if callable(batch_size) else (lambda group: batch_size)
    limit = max_waiting or (4 * batch_size if isinstance(batch_size, int) else 256)
    waiting: dict[Any, list[tuple[Any, Any]]] = {}
    held = 0
    for item in items:
        key = item.job[0]
        if not item.ok:
            failures[key] = reason(item.error)
            continue
        group = group_of(item.job)
        batch = waiting.setdefault(group, [])
        batch.append((key, item.value))
        held += 1
        if len(batch) >= max(1, size_of(group)):
            held -= len(batch)
            yield waiting.pop(group)
        elif held > limit:
            fullest = max(waiting, key=lambda g: len(waiting[g]))
            held -= len(waiting[fullest])
            yield waiting.pop(fullest)
    for group in list(waiting):
        yield waiting.pop(group)
