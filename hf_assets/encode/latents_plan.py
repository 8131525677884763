"""Plan a latent cache update: what to encode, split into stable shards that any process or machine can encode."""

import json
import logging
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.atomic import write_json_atomic, write_parquet_atomic
from hf_assets.cache.encoded import EncodedCache
from hf_assets.encode import latents_update as core

PLANS_DIR = "plans"  # <cache dir>/plans/<plan id>/: removed by the commit
PLAN_FILE = "plan.json"
STALE_PLAN_SECONDS = 7 * 24 * 3600  # plans of runs never committed nor re-executed are pruned after a week
MAX_SHARDS = 4096


class CacheNotShared(RuntimeError):
    """A step cannot see the cache directory another step wrote: the cache is not on a shared filesystem."""


def shard_of(keys: pa.Array | pa.ChunkedArray, shards: int) -> np.ndarray:
    """The shard of each cache key: its first 32 bits mod `shards`. Depends on the key alone, never on row order."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be between 1 and {MAX_SHARDS}, got {shards}")
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    head = pc.utf8_slice_codeunits(keys.cast(pa.string()), 0, 8)
    if pc.min(pc.utf8_length(head)).as_py() != 8:
        raise ValueError("shard_of: cache keys must be hex digests of at least 8 characters")
    fixed = head.cast(pa.binary()).cast(pa.binary(8))  # one contiguous buffer of 8 bytes per key
    ascii_hex = np.frombuffer(fixed.buffers()[1], np.uint8)[fixed.offset * 8 : (fixed.offset + len(fixed)) * 8]
    nibbles = _HEX[ascii_hex].reshape(-1, 8).astype(np.int64)
    if (nibbles < 0).any():
        raise ValueError("shard_of: cache keys must be lowercase hex digests")
    value = (nibbles << np.arange(28, -1, -4, dtype=np.int64)).sum(axis=1)
    return value % shards


_HEX = np.full(256, -1, np.int8)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.int8)


@dataclass(frozen=True)
class LatentPlan:
    """A written plan: the rows to commit, the rows each shard encodes, and the failures carried from earlier runs."""

    directory: Path  # <cache dir>/plans/<plan id>
    shards: int
    shard_sizes: tuple[int, ...]  # rows to encode per shard
    reused: int
    host: str

    @property
    def cache_dir(self) -> Path:
        return self.directory.parent.parent

    @property
    def busy_shards(self) -> list[int]:
        """Shards with something to encode."""
        return [k for k, n in enumerate(self.shard_sizes) if n]

    @property
    def to_encode(self) -> int:
        return sum(self.shard_sizes)

    def shard_rows(self, shard: int) -> pa.Table:
        """The rows shard `shard` encodes (key, filename, row, geometry, hashes)."""
        return _read(self.directory / f"shard-{shard:05d}.parquet", self)

    def readable(self) -> pa.Table:
        """Every wanted sample whose image could be read, with its key: what the commit records."""
        return _read(self.directory / "readable.parquet", self)

    def unreadable(self) -> list[str]:
        """File names whose image bytes could not be read at all."""
        return _read(self.directory / "unreadable.parquet", self).column("filename").to_pylist()

    def carried_failures(self) -> dict[str, str]:
        """cache key -> reason of images that failed to decode in an earlier run (not tried again)."""
        table = _read(self.directory / "carried_failures.parquet", self)
        return dict(zip(table.column("key").to_pylist(), table.column("reason").to_pylist()))

    def to_dict(self) -> dict:
        return {
            "directory": str(self.directory),
            "shards": self.shards,
            "shard_sizes": list(self.shard_sizes),
            "reused": self.reused,
            "host": self.host,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "LatentPlan":
        return cls(
            Path(values["directory"]),
            int(values["shards"]),
            tuple(values["shard_sizes"]),
            int(values["reused"]),
            values["host"],
        )


def plan_latents(
    wanted: pa.Table,
    directory: Path,
    shards: int,
    plan_id: str | None = None,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
) -> LatentPlan:
    """Write the plan of bringing the cache at `directory` up to `wanted` into `<directory>/plans/<plan id>/`."""
    directory = Path(directory)
    plan_id = plan_id or uuid.uuid4().hex[:12]
    if not plan_id.replace("-", "").isalnum():
        raise ValueError(f"plan id {plan_id!r} must be letters, digits and dashes")
    _prune_stale_plans(directory / PLANS_DIR, log)
    cache = EncodedCache(directory, prefix="latents")
    unreadable = pc.equal(wanted.column("content_hash"), "")
    readable = cache.with_keys(wanted.filter(pc.invert(unreadable)))
    to_encode, reused = cache.plan(readable)
    carried: dict[str, str] = {}
    earlier = core.earlier_decode_failures(directory, log)
    if earlier and to_encode.num_rows:
        known_bad = pc.is_in(to_encode.column("key"), pa.array(list(earlier), pa.string()))
        carried = {key: earlier[key] for key in to_encode.filter(known_bad).column("key").to_pylist()}
        to_encode = to_encode.filter(pc.invert(known_bad))
        if carried:
            log(
                f"skipping {len(carried)} image(s) that failed to decode in an earlier run "
                f"(see {directory / (core.DROPPED + '.parquet')}); a changed image is tried again"
            )
    target = directory / PLANS_DIR / plan_id
    assignment = shard_of(to_encode.column("key"), shards)
    sizes = np.bincount(assignment, minlength=shards)
    for shard in np.flatnonzero(sizes):
        write_parquet_atomic(to_encode.filter(pa.array(assignment == shard)), target / f"shard-{shard:05d}.parquet")
    write_parquet_atomic(readable, target / "readable.parquet")
    if pc.any(unreadable).as_py():  # the optional tables are written only when they hold rows
        write_parquet_atomic(wanted.filter(unreadable).select(["filename"]), target / "unreadable.parquet")
    if carried:
        write_parquet_atomic(
            pa.table(
                {"key": pa.array(list(carried), pa.string()), "reason": pa.array(list(carried.values()), pa.string())}
            ),
            target / "carried_failures.parquet",
        )
    plan = LatentPlan(target, shards, tuple(int(n) for n in sizes), reused.num_rows, socket.gethostname())
    write_json_atomic({**plan.to_dict(), "created": time.time()}, target / PLAN_FILE)  # written last: marks it whole
    if to_encode.num_rows:
        log(
            f"plan {plan_id}: {to_encode.num_rows} latents to encode in {len(plan.busy_shards)} of {shards} "
            f"shard(s), {reused.num_rows} reused"
        )
    return plan


def require_visible(plan: LatentPlan) -> None:
    """Fail clearly when this process cannot see the plan another step wrote (the cache is not shared)."""
    if not (plan.directory / PLAN_FILE).is_file():
        raise CacheNotShared(
            f"{socket.gethostname()} cannot see {plan.directory / PLAN_FILE}, written by the plan step on "
            f"{plan.host}: the cache_dir of this backend must be on a filesystem every step can read and write "
            "(NFS, Lustre, a ReadWriteMany volume mounted at the same path), or the plan was removed by a commit"
        )


def remove_plan(plan: LatentPlan) -> None:
    """Delete a committed plan's files."""
    shutil.rmtree(plan.directory, ignore_errors=True)


_OPTIONAL = {
    "unreadable.parquet": pa.table({"filename": pa.array([], pa.string())}),
    "carried_failures.parquet": pa.table({"key": pa.array([], pa.string()), "reason": pa.array([], pa.string())}),
}


def _read(path: Path, plan: LatentPlan) -> pa.Table:
    import pyarrow.parquet as pq

    if not path.is_file():
        require_visible(plan)
        if path.name in _OPTIONAL:
            return _OPTIONAL[path.name]
        if path.name.startswith("shard-"):
            return pa.table({"key": pa.array([], pa.string())})  # an idle shard has no file
        raise FileNotFoundError(f"{path}: the plan in {plan.directory} is incomplete; run vae_latents again")
    return pq.read_table(path)


def _prune_stale_plans(plans: Path, log: Callable[[str], None]) -> None:
    if not plans.is_dir():
        return
    cutoff = time.time() - STALE_PLAN_SECONDS
    for entry in plans.iterdir():
        try:
            created = json.loads((entry / PLAN_FILE).read_text())["created"]
        except (OSError, ValueError, KeyError):
            created = entry.stat().st_mtime
        if created < cutoff:
            log(f"removing plan {entry.name}, never committed")
            shutil.rmtree(entry, ignore_errors=True)
