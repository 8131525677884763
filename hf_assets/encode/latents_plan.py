"""Plan a latent cache update: what to encode, split into stable shards that any process or machine can encode."""

import json
import logging
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.atomic import write_json_atomic, write_parquet_atomic
from hf_assets.cache.encoded import EncodedCache
from hf_assets.encode.drop_records import DROPPED, earlier_decode_failures
from hf_assets.encode.engine_types import PLAN_FILE, EncodeSettings, LatentPlan
from hf_assets.encode.fetch_hashes import PENDING_FILE, shards_by_unit
from hf_assets.encode.media import Media

PLANS_DIR = "plans"  # <cache dir>/plans/<plan id>/: removed by the commit
STALE_PLAN_SECONDS = 7 * 24 * 3600  # plans of runs never committed nor re-executed are pruned after a week
MAX_SHARDS = 4096


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


def plan_latents(
    wanted: pa.Table,
    directory: Path,
    shards: int,
    *,
    media: Media,
    column: str,
    settings: EncodeSettings,
    meta: dict,
    refused: dict[str, str] | None = None,
    plan_id: str | None = None,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    units: Callable[[np.ndarray], np.ndarray] | None = None,
    memo_dir: Path | None = None,
) -> LatentPlan:
    """Write the plan of bringing the cache at `directory` up to `wanted` (samples of kind `media`, read from the
    split's `column`) into `<directory>/plans/<plan id>/`; `refused` (file name -> reason) are samples dropped
    before encoding, `meta` the cache's metadata and `settings` how every shard encodes.

    With `units` (split rows -> their fetch units), shards are runs of whole fetch units, so no unit is fetched by
    two shards; otherwise shards are split by key. Rows of `wanted` without a content hash (null) are keyed by
    their shard as it fetches them (`encode.fetch_hashes`), which records the hashes in the memo at `memo_dir`;
    they need `units`."""
    directory = Path(directory)
    plan_id = plan_id or uuid.uuid4().hex[:12]
    if not plan_id.replace("-", "").isalnum():
        raise ValueError(f"plan id {plan_id!r} must be letters, digits and dashes")
    _prune_stale_plans(directory / PLANS_DIR, log)
    cache = EncodedCache(directory, prefix="latents")
    unknown = pc.is_null(wanted.column("content_hash"))
    pending, wanted = wanted.filter(unknown), wanted.filter(pc.invert(unknown))
    if pending.num_rows and units is None:
        raise ValueError("plan_latents: rows without a content hash need their fetch units (units=...)")
    unreadable = pc.equal(wanted.column("content_hash"), "")
    refused = {
        **(refused or {}),
        **dict.fromkeys(wanted.filter(unreadable).column("filename").to_pylist(), media.unreadable),
    }
    readable = cache.with_keys(wanted.filter(pc.invert(unreadable)))
    to_encode, reused = cache.triage(readable)
    carried: dict[str, str] = {}
    earlier = earlier_decode_failures(directory, log, media.decoder, media.decode_failure)
    if earlier and to_encode.num_rows:
        known_bad = pc.is_in(to_encode.column("key"), pa.array(list(earlier), pa.string()))
        carried = {key: earlier[key] for key in to_encode.filter(known_bad).column("key").to_pylist()}
        to_encode = to_encode.filter(pc.invert(known_bad))
        if carried:
            log(
                f"skipping {len(carried)} {media.unit} that failed to decode in an earlier run "
                f"(see {directory / (DROPPED + '.parquet')}); a changed one is tried again"
            )
    target = directory / PLANS_DIR / plan_id
    if pending.num_rows:
        write_parquet_atomic(pending, target / PENDING_FILE)
        keyless = pending.add_column(0, "key", pa.nulls(pending.num_rows, pa.string()))
        to_encode = pa.concat_tables([to_encode, keyless.select(to_encode.column_names).cast(to_encode.schema)])
    if units is not None:
        assignment = shards_by_unit(units(to_encode.column("row").to_numpy()), shards)
    else:
        assignment = shard_of(to_encode.column("key"), shards)
    sizes = np.bincount(assignment, minlength=shards)
    for shard in np.flatnonzero(sizes):
        write_parquet_atomic(to_encode.filter(pa.array(assignment == shard)), target / f"shard-{shard:05d}.parquet")
    write_parquet_atomic(readable, target / "readable.parquet")
    if refused:  # the optional tables are written only when they hold rows
        write_parquet_atomic(_pairs("filename", "reason", refused), target / "refused.parquet")
    if carried:
        write_parquet_atomic(_pairs("key", "reason", carried), target / "carried_failures.parquet")
    plan = LatentPlan(
        target,
        shards,
        tuple(int(n) for n in sizes),
        reused.num_rows,
        socket.gethostname(),
        media.name,
        column,
        settings,
        meta,
        str(memo_dir) if memo_dir is not None and pending.num_rows else "",
    )
    write_json_atomic({**plan.to_dict(), "created": time.time()}, target / PLAN_FILE)  # written last: marks it whole
    if to_encode.num_rows:
        log(
            f"plan {plan_id}: {to_encode.num_rows} {media.unit} to encode in {len(plan.busy_shards)} of {shards} "
            f"shard(s), {reused.num_rows} reused"
            + (f"; {pending.num_rows} to be hashed as their shard fetches them" if pending.num_rows else "")
        )
    return plan


def _pairs(key: str, value: str, mapping: dict[str, str]) -> pa.Table:
    return pa.table({key: pa.array(list(mapping), pa.string()), value: pa.array(list(mapping.values()), pa.string())})


def remove_plan(plan: LatentPlan) -> None:
    """Delete a committed plan's files."""
    shutil.rmtree(plan.directory, ignore_errors=True)


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
