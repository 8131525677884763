"""The prefetch iterator: ordered, bounded, errors as values, lazy over its jobs."""

import random
import threading
import time

import pytest

from hf_assets.encode.prefetch import group_batches, prefetch


def test_yields_in_order_despite_uneven_load_times():
    delays = random.Random(0)

    def load(job):
        time.sleep(delays.random() * 0.01)
        return job * job

    items = list(prefetch(range(50), load, workers=4, max_in_flight=6))
    assert [i.job for i in items] == list(range(50))
    assert [i.value for i in items] == [j * j for j in range(50)]
    assert all(i.ok for i in items)


def test_errors_are_values_not_fatal():
    def load(job):
        if job % 3 == 0:
            raise ValueError(f"corrupt {job}")
        return job

    items = list(prefetch(range(7), load, workers=2))
    assert [(i.job, i.value, str(i.error) if i.error else None) for i in items] == [
        (0, None, "corrupt 0"),
        (1, 1, None),
        (2, 2, None),
        (3, None, "corrupt 3"),
        (4, 4, None),
        (5, 5, None),
        (6, None, "corrupt 6"),
    ]


def test_in_flight_items_are_bounded_and_jobs_read_lazily():
    lock, live, peak, pulled = threading.Lock(), [0], [0], []

    def jobs():
        for j in range(40):
            pulled.append(j)
            yield j

    def load(job):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.002)
        return job

    for item in prefetch(jobs(), load, workers=8, max_in_flight=5):
        assert len(pulled) <= item.job + 5  # never more than max_in_flight jobs ahead of the consumer
        time.sleep(0.003)  # a slow consumer: loaded items pile up unless bounded
        with lock:
            live[0] -= 1
    assert peak[0] <= 5 and len(pulled) == 40


def test_early_stop_and_inline_mode():
    started = []

    def load(job):
        started.append(job)
        return job

    gen = prefetch(range(1000), load, workers=2, max_in_flight=4)
    assert [next(gen).value for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert len(started) <= 7
    assert [i.value for i in prefetch(range(5), lambda j: j + 1, workers=0)] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="max_in_flight=0"):
        next(prefetch(range(3), load, max_in_flight=0))


def test_a_failing_job_iterable_propagates():
    def jobs():
        yield 1
        raise RuntimeError("listing failed")

    with pytest.raises(RuntimeError, match="listing failed"):
        list(prefetch(jobs(), lambda j: j))


def test_group_batches_fill_each_group_across_others_and_record_failures():
    def load(job):
        if job[1] == "bad":
            raise ValueError("cannot decode")
        return job[0].upper()

    jobs = [("a", 1), ("b", 1), ("c", 1), ("x", "bad"), ("d", 2), ("e", 1)]
    failures: dict = {}
    batches = list(
        group_batches(
            prefetch(jobs, load, workers=2), lambda job: job[1], 2, failures, lambda error: f"corrupt: {error}"
        )
    )
    # "c" waits while "d" (another group) passes, and fills its batch with "e"; what waits goes at the end
    assert batches == [[("a", "A"), ("b", "B")], [("c", "C"), ("e", "E")], [("d", "D")]]
    assert failures == {"x": "corrupt: cannot decode"}
