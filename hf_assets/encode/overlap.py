"""Keep the device busy: batches are stacked ahead on a thread (into pinned memory for a CUDA device), results are
copied back without blocking, and written to the cache on a thread of their own, so the thread that drives the
device only launches work.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

FEED_DEPTH = 2  # stacked batches waiting for the device
WRITE_DEPTH = 3  # encoded batches waiting to be written: bounds the device work queued ahead of the writer


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def in_background(items: Iterable, depth: int = FEED_DEPTH, name: str = "feed") -> Iterator:
    """The items of `items`, produced on a background thread up to `depth` ahead; its exception is raised here.

    Closing the returned iterator early stops the thread (and closes `items` when it is a generator).
    """
    handoff: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                handoff.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put(_Raised(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def stack_host(arrays: Sequence[np.ndarray], pin: bool) -> torch.Tensor:
    """Same-shape uint8 arrays as one (B, ...) tensor, written once, into pinned memory when `pin`."""
    out = torch.empty((len(arrays), *arrays[0].shape), dtype=torch.uint8, pin_memory=pin)
    np.stack(arrays, out=out.numpy())
    return out


def stacked_batches(
    batches: Iterable[list[tuple[str, Any]]],
    device: torch.device,
    decode_on_device: Callable[[list], list] | None = None,
    failures: dict[str, str] | None = None,
    reason: Callable[[BaseException], str] = str,
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """(keys, uint8 (B, H, W, 3) images) per batch of (key, decoded image) pairs: pinned on the host for a CUDA
    device, or made on the device by `decode_on_device` (a `gpu_decode.DeviceDecoder`), whose failures are
    recorded as `failures[key] = reason(error)` and left out of the batch."""
    for batch in batches:
        keys = [key for key, _ in batch]
        items = [item for _, item in batch]
        if decode_on_device is None:
            yield keys, stack_host(items, pin=device.type == "cuda")
            continue
        kept = []
        for key, image in zip(keys, decode_on_device(items)):
            if isinstance(image, torch.Tensor):
                kept.append((key, image))
            elif failures is not None:
                failures[key] = reason(image)
        if kept:
            yield [key for key, _ in kept], torch.stack([image for _, image in kept])


class HostCopy:
    """Named device tensors being copied to the host in `dtype` without blocking; `wait()` returns them there."""

    def __init__(self, tensors: dict[str, torch.Tensor], dtype: torch.dtype):
        first = next(iter(tensors.values()))
        self.event = None
        if first.device.type != "cuda":
            self.tensors = {name: t.to("cpu", dtype) for name, t in tensors.items()}
            return
        self.tensors = {}
        for name, t in tensors.items():
            host = torch.empty(t.shape, dtype=dtype, pin_memory=True)
            host.copy_(t.to(dtype), non_blocking=True)
            self.tensors[name] = host
        self.event = torch.cuda.Event()
        self.event.record()

    def wait(self) -> dict[str, torch.Tensor]:
        if self.event is not None:
            self.event.synchronize()
        return self.tensors


class BackgroundWrites:
    """Encoded batches handed to `write(keys, tensors)` on a thread of their own, in order, at most `depth` queued.

    Use as a context manager: leaving it writes everything handed over (also after an error in the block, so that
    finished work is kept) and raises the writer's first error.
    """

    def __init__(self, write: Callable[[list[str], dict[str, torch.Tensor]], None], depth: int = WRITE_DEPTH):
        self.write = write
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="latent-writes", daemon=True)

    def __enter__(self) -> "BackgroundWrites":
        self.thread.start()
        return self

    def put(self, keys: list[str], copy: HostCopy) -> None:
        """Queue one batch (blocks while `depth` batches wait); raises the writer's error if it failed."""
        if self.error is not None:
            raise self.error
        self.queue.put((keys, copy))

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # drain after a failure, so that `put` never blocks
            keys, copy = item
            try:
                self.write(keys, copy.wait())
            except BaseException as error:  # noqa: BLE001 - raised on the driving thread
                self.error = error

    def __exit__(self, exc_type, exc, tb) -> None:
        self.queue.put(_END)
        self.thread.join()
        if self.error is not None and exc_type is None:
            raise self.error
