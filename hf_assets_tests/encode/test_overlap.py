"""Overlapping host and device work: background batches in order with errors and early stops, stacking into one
tensor, device decode failures recorded per key, results copied back and written in order on another thread."""

import threading

import numpy as np
import pytest
import torch

from hf_assets.encode.overlap import BackgroundWrites, HostCopy, in_background, stack_host, stacked_batches
from hf_assets.encode.prefetch import group_batches, prefetch


def test_background_items_arrive_in_order_and_an_error_is_raised_here():
    assert list(in_background(iter(range(20)), depth=2)) == list(range(20))

    def failing():
        yield 1
        raise OSError("disk gone")

    items = in_background(failing())
    assert next(items) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(items)


def test_stopping_early_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    items = in_background(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed.wait(5)
    assert not any(t.name == "feed" for t in threading.enumerate())


def test_batches_are_stacked_once_and_device_failures_are_recorded_by_key():
    arrays = [np.full((2, 3, 3), i, np.uint8) for i in range(3)]
    ((keys, stacked),) = stacked_batches([[("a", arrays[0]), ("b", arrays[1]), ("c", arrays[2])]], torch.device("cpu"))
    assert keys == ["a", "b", "c"] and stacked.shape == (3, 2, 3, 3) and stacked[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert torch.equal(stack_host(arrays, pin=False), stacked)

    def decode(items):  # stands in for gpu_decode.DeviceDecoder: a tensor per image, or its error
        return [ValueError("cannot decode") if item is None else torch.from_numpy(item) for item in items]

    failures: dict[str, str] = {}
    batches = [[("a", arrays[0]), ("x", None), ("c", arrays[2])], [("y", None)]]
    out = list(stacked_batches(batches, torch.device("cpu"), decode, failures, lambda e: f"corrupt_image: {e}"))
    assert [keys for keys, _ in out] == [["a", "c"]] and out[0][1][:, 0, 0, 0].tolist() == [0, 2]
    assert failures == {"x": "corrupt_image: cannot decode", "y": "corrupt_image: cannot decode"}


def test_results_are_written_in_order_off_this_thread():
    written, threads = [], set()

    def write(keys, tensors):
        threads.add(threading.current_thread().name)
        written.extend(zip(keys, tensors["mean"].tolist()))

    with BackgroundWrites(write, depth=1) as writes:
        for start in range(0, 9, 3):
            values = torch.arange(start, start + 3, dtype=torch.float64)
            writes.put([f"k{i}" for i in range(start, start + 3)], HostCopy({"mean": values}, torch.float32))
    assert written == [(f"k{i}", float(i)) for i in range(9)]
    assert threads == {"latent-writes"}


def test_a_failed_write_is_raised_and_later_batches_are_not_blocked():
    def write(keys, tensors):
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        with BackgroundWrites(write, depth=1) as writes:
            for _ in range(5):
                writes.put(["k"], HostCopy({"mean": torch.zeros(1)}, torch.float32))


def test_host_copies_take_the_latent_dtype():
    copy = HostCopy({"mean": torch.ones(2, 3, dtype=torch.float32)}, torch.bfloat16)
    assert copy.wait()["mean"].dtype == torch.bfloat16


def test_groups_go_when_full_by_a_size_per_group_or_when_too_many_wait():
    jobs = [(f"k{i}", group) for i, group in enumerate("ababbaab")]
    items = list(prefetch(jobs, lambda job: job[0], workers=0))
    sizes = {"a": 2, "b": 3}
    batches = list(group_batches(items, lambda job: job[1], sizes.get, {}, str))
    assert [[key for key, _ in b] for b in batches] == [["k0", "k2"], ["k1", "k3", "k4"], ["k5", "k6"], ["k7"]]
    crowded = list(group_batches(items, lambda job: job[1], 10, {}, str, max_waiting=3))
    # the fourth waiting item sends the fullest group (the first of equals): a at k3, b at k5; the rest at the end
    assert [[key for key, _ in b] for b in crowded] == [["k0", "k2"], ["k1", "k3", "k4"], ["k5", "k6"], ["k7"]]
    assert sorted(key for b in crowded for key, _ in b) == sorted(key for key, _ in jobs)
