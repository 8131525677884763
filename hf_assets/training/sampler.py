"""Batch samplers: same-bucket batches per backend, and batches interleaved across backends by probability."""

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for one (seed, epoch): every epoch shuffles differently, every rerun alike."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]))


class BucketBatchSampler(Sampler[list[int]]):
    """Lists of sample indices sharing a bucket; order within and across buckets reshuffled per epoch.

    A bucket with fewer samples left than `batch_size` gives a short batch, or none with `drop_last`.
    """

    def __init__(
        self, buckets: Sequence[str], batch_size: int, seed: int = 0, drop_last: bool = False, shuffle: bool = True
    ):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        names, inverse = np.unique(np.asarray(list(buckets), dtype=object).astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1]
        self.bucket_indices: dict[str, np.ndarray] = dict(zip(names.tolist(), np.split(order, bounds)))
        self.batch_size, self.seed, self.drop_last, self.shuffle = int(batch_size), int(seed), drop_last, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Shuffle as epoch `epoch` (give the dataset the same epoch)."""
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[list[int]]:
        """Every batch of one epoch, in the order they are yielded."""
        generator = epoch_generator(self.seed, epoch)
        result = []
        for bucket in sorted(self.bucket_indices):  # fixed order, so the draws below depend only on (seed, epoch)
            indices = self.bucket_indices[bucket]
            if self.shuffle:
                indices = indices[torch.randperm(len(indices), generator=generator).numpy()]
            stop = len(indices) - len(indices) % self.batch_size if self.drop_last else len(indices)
            size = self.batch_size
            result.extend(indices[start : start + size].tolist() for start in range(0, stop, size))
        if self.shuffle:
            result = [result[i] for i in torch.randperm(len(result), generator=generator).tolist()]
        return result

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch))

    def __len__(self) -> int:
        rounding = math.floor if self.drop_last else math.ceil
        return sum(rounding(len(ix) / self.batch_size) for ix in self.bucket_indices.values())


class MultiBackendSampler(Sampler[list[tuple[int, int, int]]]):
    """Interleaves several backends' batches; each batch's backend is drawn with probability ∝ its `probability`.

    An epoch goes through every backend with a non-zero probability `1 + repeats` times (SimpleTuner's meaning of
    `repeats`); a backend leaves the draw once its batches are spent and the epoch ends when all are. Keys are
    `(backend, draw epoch, index)` for `MultiBackendSamples`; each repeat has its own draw epoch, so a repeated sample
    gets fresh noise and caption variant.
    """

    def __init__(
        self,
        samplers: Sequence[BucketBatchSampler],
        probabilities: Sequence[float],
        repeats: Sequence[int] | None = None,
        seed: int = 0,
    ):
        repeats = [0] * len(samplers) if repeats is None else [int(r) for r in repeats]
        probabilities = [float(p) for p in probabilities]
        if not len(samplers) == len(probabilities) == len(repeats):
            raise ValueError(f"{len(samplers)} samplers, {len(probabilities)} probabilities, {len(repeats)} repeats")
        if any(not math.isfinite(p) or p < 0 for p in probabilities) or not any(p > 0 for p in probabilities):
            raise ValueError(f"probabilities must be finite, >= 0 and not all 0, got {probabilities}")
        if any(r < 0 for r in repeats):
            raise ValueError(f"repeats must be >= 0, got {repeats}")
        self.samplers, self.probabilities, self.repeats = list(samplers), probabilities, repeats
        self.seed, self.epoch = int(seed), 0

    @classmethod
    def from_backends(cls, samplers: Sequence[BucketBatchSampler], backends: Sequence, seed: int = 0):
        """Weights and repeats from the backends' configs (`BackendConfig.probability`, `.repeats`)."""
        return cls(samplers, [b.probability for b in backends], [b.repeats for b in backends], seed=seed)

    def set_epoch(self, epoch: int) -> None:
        """Interleave and shuffle as epoch `epoch`."""
        self.epoch = int(epoch)

    def _passes(self, backend: int) -> Iterator[list[tuple[int, int, int]]]:
        """One backend's batches for this epoch, every repeat reshuffled under its own draw epoch."""
        passes = self.repeats[backend] + 1
        for k in range(passes):
            draw = self.epoch * passes + k
            for batch in self.samplers[backend].batches(draw):
                yield [(backend, draw, i) for i in batch]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        generator = epoch_generator(self.seed, self.epoch)
        active = [b for b, p in enumerate(self.probabilities) if p > 0]
        streams = {b: self._passes(b) for b in active}
        while active:
            weights = torch.tensor([self.probabilities[b] for b in active], dtype=torch.float64)
            backend = active[int(torch.multinomial(weights, 1, generator=generator))]
            batch = next(streams[backend], None)
            if batch is None:
                active.remove(backend)
            else:
                yield batch

    def __len__(self) -> int:
        return sum(
            (r + 1) * len(s) for s, p, r in zip(self.samplers, self.probabilities, self.repeats) if p > 0
        )
