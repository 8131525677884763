"""Batch samplers: same-size batches sharded evenly across ranks, and batches interleaved across backends."""

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Sampler

from hf_assets.config.schema import DrawSchedule

log = logging.getLogger(__name__)

ShortBucketPolicy = Literal["repeat", "drop", "keep"]
# What happens to the last batch of a size group when it holds fewer than batch_size samples:
#   repeat: fill it with other samples of the same size (reshuffled each epoch); every batch is full
#   drop:   leave those samples out of this epoch (the shuffle picks different ones each epoch)
#   keep:   yield it short (fine for one process; ranks may then step with different batch sizes)
# Merging a short bucket into the nearest aspect is not offered here: a cached latent has exactly one size, so a
# merge must happen before encoding (choose fewer buckets, or drop_small_buckets, in the dataloader config).
SHORT_BUCKET_POLICIES: tuple[str, ...] = ("repeat", "drop", "keep")


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for one (seed, epoch): every epoch shuffles differently, every rerun alike."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]))


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size) as given, else from an initialised torch.distributed process group, else (0, 1)."""
    initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
    if world_size is None:
        world_size = torch.distributed.get_world_size() if initialised else 1
    if rank is None:
        rank = torch.distributed.get_rank() if initialised else 0
    if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


@dataclass(frozen=True)
class SizeGroup:
    """One target size and what the short-bucket policy does with its samples each epoch."""

    width: int
    height: int
    buckets: tuple[str, ...]  # the bucket keys its samples carry (normally one)
    samples: int
    batches: int  # per epoch, over all ranks, before the ranks are evened out
    short: int  # samples in the last, partial batch; 0 when the group divides evenly
    frames: int | None = None  # clips: the frame count all its samples share
    partners: tuple[tuple[int, int], ...] = ()  # the sizes of loose conditioning partners all its samples share

    def describe(self, policy: str, batch_size: int) -> str:
        frames = f"@{self.frames}" if self.frames is not None else ""
        partners = "".join(f" + {w}x{h}" for w, h in self.partners)
        label = f"{self.width}x{self.height}{frames}{partners} (bucket {', '.join(self.buckets)})"
        action = {
            "repeat": f"filled with {batch_size - self.short} repeated",
            "drop": "dropped each epoch",
            "keep": "yielded as a short batch",
        }[policy]
        return f"{label}: {self.samples} samples, last batch of {self.short} {action}"


@dataclass(frozen=True)
class SamplerSummary:
    """What a BucketBatchSampler will yield: its settings, its size groups and the batches each rank gets."""

    policy: str
    batch_size: int
    rank: int
    world_size: int
    groups: tuple[SizeGroup, ...]
    batches_per_rank: int
    evened: int  # batches added (repeat/keep) or left out (drop) per epoch so every rank gets batches_per_rank

    @property
    def short_groups(self) -> tuple[SizeGroup, ...]:
        return tuple(g for g in self.groups if g.short)

    def __str__(self) -> str:
        total = sum(g.batches for g in self.groups)
        lines = [
            f"{sum(g.samples for g in self.groups)} samples in {len(self.groups)} target sizes, batch_size "
            f"{self.batch_size}, short buckets: {self.policy}; {total} batches per epoch, {self.batches_per_rank} on "
            f"each of {self.world_size} rank(s)"
        ]
        if self.evened:
            verb = "left out" if self.policy == "drop" else "repeated"
            lines.append(f"{self.evened} batch(es) {verb} per epoch so every rank steps the same number of times")
        lines += [g.describe(self.policy, self.batch_size) for g in self.short_groups]
        return "\n  ".join(lines)


class BucketBatchSampler(Sampler[list[int]]):
    """Lists of sample indices sharing one target size; reshuffled per epoch, sharded evenly across ranks.

    Batches are formed by (target_width, target_height), never by bucket key alone, so every batch stacks. All ranks
    build the same epoch from (seed, epoch) and take every world_size-th batch, so their batches are disjoint
    (except those repeated to even out the count) and every rank gets `len(self)` batches.
    """

    def __init__(
        self,
        sizes: Sequence[tuple[int, int]] | np.ndarray,
        batch_size: int,
        *,
        buckets: Sequence[str] | None = None,
        seed: int = 0,
        short_buckets: ShortBucketPolicy = "repeat",
        shuffle: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        frames: bool | None = None,
    ):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if short_buckets not in SHORT_BUCKET_POLICIES:
            raise ValueError(f"short_buckets must be one of {SHORT_BUCKET_POLICIES}, got {short_buckets!r}")
        sizes = target_size_array(sizes)
        # a third column is a frame count (clips) unless told otherwise; columns after it pair up as partner sizes
        self.frames = sizes.shape[1] % 2 == 1 if frames is None else bool(frames)
        labels = np.full(len(sizes), "?", dtype=object) if buckets is None else np.asarray(list(buckets), object)
        if len(labels) != len(sizes):
            raise ValueError(f"{len(sizes)} sizes but {len(labels)} bucket keys")
        unique, inverse = np.unique(sizes, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1]
        self.size_indices: dict[tuple[int, ...], np.ndarray] = {
            tuple(int(v) for v in size): ix for size, ix in zip(unique, np.split(order, bounds))
        }
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), bool(shuffle)
        self.short_buckets: str = short_buckets
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.epoch = 0
        self.summary = self._summarise(labels)
        if self.rank == 0 and len(sizes):
            level = logging.WARNING if self.summary.short_groups or self.summary.evened else logging.INFO
            log.log(level, "%s", self.summary)

    @classmethod
    def from_samples(cls, samples, batch_size: int, **kwargs) -> "BucketBatchSampler":
        """A sampler over a CachedSamples (its target sizes, with frame counts and loose partners' sizes, and bucket
        keys)."""
        frames = getattr(samples, "frames", None) is not None
        return cls(samples.target_sizes, batch_size, buckets=samples.buckets, frames=frames, **kwargs)

    def _group_batches(self, count: int) -> int:
        if self.short_buckets == "drop":
            return count // self.batch_size
        return math.ceil(count / self.batch_size)

    def _summarise(self, labels: np.ndarray) -> SamplerSummary:
        groups = tuple(
            SizeGroup(
                width=size[0],
                height=size[1],
                buckets=tuple(sorted({str(b) for b in labels[ix]})),
                samples=len(ix),
                batches=self._group_batches(len(ix)),
                short=len(ix) % self.batch_size,
                frames=size[2] if self.frames else None,
                partners=tuple(zip(size[2 + self.frames :: 2], size[3 + self.frames :: 2])),
            )
            for size, ix in self.size_indices.items()
        )
        total = sum(g.batches for g in groups)
        return SamplerSummary(
            policy=self.short_buckets,
            batch_size=self.batch_size,
            rank=self.rank,
            world_size=self.world_size,
            groups=groups,
            batches_per_rank=self._per_rank(total),
            evened=abs(self._per_rank(total) * self.world_size - total),
        )

    def _per_rank(self, total: int) -> int:
        if self.short_buckets == "drop" or total == 0:
            return total // self.world_size
        return math.ceil(total / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle as epoch `epoch` (give the dataset the same epoch)."""
        self.epoch = int(epoch)

    def global_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of one epoch over all ranks, evened to a multiple of world_size; rank r takes r::world_size."""
        generator = epoch_generator(self.seed, epoch)
        result: list[list[int]] = []
        for size in sorted(self.size_indices):  # fixed order, so the draws below depend only on (seed, epoch)
            indices = self.size_indices[size]
            if self.shuffle:
                indices = indices[torch.randperm(len(indices), generator=generator).numpy()]
            full = len(indices) - len(indices) % self.batch_size
            result.extend(
                indices[start : start + self.batch_size].tolist() for start in range(0, full, self.batch_size)
            )
            rest = indices[full:]
            if len(rest) and self.short_buckets == "keep":
                result.append(rest.tolist())
            elif len(rest) and self.short_buckets == "repeat":  # other samples of this size first, cycling if few
                result.append(np.concatenate([rest, np.resize(indices, self.batch_size - len(rest))]).tolist())
        if self.shuffle:
            result = [result[i] for i in torch.randperm(len(result), generator=generator).tolist()]
        needed = self._per_rank(len(result)) * self.world_size
        return result[:needed] + [result[i % len(result)] for i in range(len(result), needed)]

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of one epoch, in the order they are yielded."""
        return self.global_batches(epoch)[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch))

    def __len__(self) -> int:
        return self.summary.batches_per_rank


def target_size_array(sizes) -> np.ndarray:
    """(N, 2) int64 (target_width, target_height), (N, 3) with clips' frame counts, and two more columns per loose
    conditioning partner (its width and height); refuses bucket keys, which may stand for several sizes."""
    array = np.asarray(sizes) if len(sizes) else np.empty((0, 2), np.int64)
    if array.dtype.kind not in "iu" or array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(
            "sizes must be (target_width, target_height) pairs, e.g. CachedSamples.target_sizes; batching by the "
            f"bucket key alone could mix two sizes in one batch (got shape {array.shape}, dtype {array.dtype})"
        )
    return array.astype(np.int64)


class MultiBackendSampler(Sampler[list[tuple[int, int, int]]]):
    """Interleaves several backends' batches; each batch's backend is drawn with probability ∝ its `probability`.

    An epoch goes through every backend with a non-zero probability `1 + repeats` times (SimpleTuner's meaning of
    `repeats`); a backend leaves the draw once its batches are spent and the epoch ends when all are. Keys are
    `(backend, draw epoch, index)` for `MultiBackendSamples`; each repeat has its own draw epoch, so a repeated sample
    gets fresh noise and caption variant. Every batch comes from one backend and one size. With samplers sharded for
    the same (rank, world_size), every rank draws the same backend at the same step and gets `len(self)` batches.

    `schedules` (SimpleTuner's per-backend keys, `BackendConfig.schedule`) gate the draw: a backend is drawn only
    from `start_epoch` / `start_step` up to `end_epoch` / `end_step`, and one with `ignore_epochs` does not hold up
    the end of an epoch (it starts afresh each epoch). Epochs count from 1 as in SimpleTuner: `set_epoch(e)` is
    epoch e + 1. The optimizer step is `set_step`'s value plus the batches yielded since, divided by
    `gradient_accumulation_steps`. With schedules, `len(self)` is an upper bound.
    """

    def __init__(
        self,
        samplers: Sequence[BucketBatchSampler],
        probabilities: Sequence[float],
        repeats: Sequence[int] | None = None,
        seed: int = 0,
        schedules: Sequence[DrawSchedule] | None = None,
        gradient_accumulation_steps: int = 1,
    ):
        repeats = [0] * len(samplers) if repeats is None else [int(r) for r in repeats]
        probabilities = [float(p) for p in probabilities]
        schedules = [DrawSchedule()] * len(samplers) if schedules is None else list(schedules)
        if not len(samplers) == len(probabilities) == len(repeats) == len(schedules):
            raise ValueError(
                f"{len(samplers)} samplers, {len(probabilities)} probabilities, {len(repeats)} repeats, "
                f"{len(schedules)} schedules"
            )
        if any(not math.isfinite(p) or p < 0 for p in probabilities) or not any(p > 0 for p in probabilities):
            raise ValueError(f"probabilities must be finite, >= 0 and not all 0, got {probabilities}")
        if any(r < 0 for r in repeats):
            raise ValueError(f"repeats must be >= 0, got {repeats}")
        if int(gradient_accumulation_steps) < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}")
        shards = {(s.rank, s.world_size) for s in samplers}
        if len(shards) > 1:
            raise ValueError(f"every backend's sampler must have the same (rank, world_size), got {sorted(shards)}")
        self.rank, self.world_size = shards.pop() if shards else (0, 1)
        self.samplers, self.probabilities, self.repeats = list(samplers), probabilities, repeats
        self.schedules, self.accumulation = schedules, int(gradient_accumulation_steps)
        self.seed, self.epoch = int(seed), 0
        self.first_step, self.batches_yielded = 0, 0

    @classmethod
    def from_backends(cls, samplers: Sequence[BucketBatchSampler], backends: Sequence, seed: int = 0, **kwargs):
        """Weights, repeats and schedules from the backends' configs (`BackendConfig.probability`, `.repeats`,
        `.schedule`); a backend that is prepared but not trained on (`eval`, `conditioning`) is never drawn."""
        probabilities = [b.probability if getattr(b, "trains", True) else 0.0 for b in backends]
        schedules = [getattr(b, "schedule", DrawSchedule()) for b in backends]
        repeats = [b.repeats for b in backends]
        return cls(samplers, probabilities, repeats, seed=seed, schedules=schedules, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Interleave and shuffle as epoch `epoch` (SimpleTuner's epoch `epoch + 1`)."""
        self.epoch = int(epoch)

    def set_step(self, step: int) -> None:
        """The optimizer step of the next batch (when resuming); later steps are counted from the batches yielded."""
        self.first_step, self.batches_yielded = int(step), 0

    @property
    def step(self) -> int:
        """The optimizer step the next batch belongs to."""
        return self.first_step + self.batches_yielded // self.accumulation

    def _passes(self, backend: int) -> Iterator[list[tuple[int, int, int]]]:
        """One backend's batches for this epoch, every repeat reshuffled under its own draw epoch."""
        passes = self.repeats[backend] + 1
        for k in range(passes):
            draw = self.epoch * passes + k
            for batch in self.samplers[backend].batches(draw):
                yield [(backend, draw, i) for i in batch]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        # The draws depend on (seed, epoch, step) and on each backend's per-rank batch count, which all ranks share.
        generator = epoch_generator(self.seed, self.epoch)
        epoch = self.epoch + 1
        drawn = [b for b, p in enumerate(self.probabilities) if p > 0 and self._may_start(b, epoch)]
        streams = {b: self._passes(b) for b in drawn}
        holding = {b for b in drawn if not self.schedules[b].ignore_epochs} or set(drawn)
        spent: set[int] = set()
        while holding - spent:
            active = [b for b in drawn if b not in spent and self.schedules[b].active(epoch, self.step)]
            if not active:
                return  # the rest wait for a step this epoch cannot reach, or have ended
            weights = torch.tensor([self.probabilities[b] for b in active], dtype=torch.float64)
            backend = active[int(torch.multinomial(weights, 1, generator=generator))]
            batch = next(streams[backend], None)
            if batch is None:
                spent.add(backend)
            else:
                self.batches_yielded += 1
                yield batch

    def _may_start(self, backend: int, epoch: int) -> bool:
        s = self.schedules[backend]
        return s.start_epoch <= epoch and (s.end_epoch is None or epoch <= s.end_epoch)

    def __len__(self) -> int:
        pairs = zip(self.samplers, self.probabilities, self.repeats)
        return sum(
            (r + 1) * len(s) for b, (s, p, r) in enumerate(pairs) if p > 0 and self._may_start(b, self.epoch + 1)
        )
