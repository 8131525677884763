"""Encode one shard of a written plan into the latent cache, beside the other shards' writers, resumably: any
process or machine that sees the cache can encode any shard, in any order."""

import logging
import os
import socket
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import torch

from hf_assets.cache.atomic import write_json_atomic
from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.shards import list_shards
from hf_assets.data.sources import RawSplit
from hf_assets.encode.drop_records import earlier_decode_failures
from hf_assets.encode.engine_types import LatentPlan, ShardReport
from hf_assets.encode.fetch_hashes import HashWhileFetching
from hf_assets.encode.image_source import entry_ids, fetch_windows
from hf_assets.encode.media import Media
from hf_assets.encode.model_loading import as_dtype
from hf_assets.encode.overlap import BackgroundWrites, HostCopy
from hf_assets.encode.vae import encode_with_oom_backoff
from hf_assets.progress import ProgressLog, quiet


def encode_shard(
    plan: LatentPlan,
    shard: int,
    split: RawSplit,
    vae_loader: Callable[[], torch.nn.Module],
    media: Media,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    progress: ProgressLog | None = None,
) -> ShardReport:
    """Encode shard `shard` of `plan` (samples of kind `media`, read from `split`) into the cache, and leave the
    report in the plan for the commit.

    Entries already journaled (by an earlier attempt of this shard) are not encoded again; the VAE is loaded
    only when something is left to encode.
    """
    report = _encode(plan, shard, split, vae_loader, media, log, progress)
    write_json_atomic(report.to_dict(), plan.report_path(shard))
    return report


def _encode(plan, shard, split, vae_loader, media, log, progress) -> ShardReport:
    report = ShardReport(shard=shard, host=socket.gethostname(), pid=os.getpid())
    progress = progress or quiet()
    cache = EncodedCache(plan.cache_dir, prefix="latents", max_bytes=plan.settings.shard_bytes)
    to_encode = plan.shard_rows(shard)
    hashing = None
    if to_encode.num_rows:  # what an earlier attempt of this shard flushed (journal only: no shard is read)
        journal = cache.journal_entries()
        flushed = journal.filter(
            pc.is_in(journal.column("shard"), value_set=pa.array(list_shards(cache.shards_dir), pa.string()))
        )
        done = pc.is_in(to_encode.column("key"), value_set=flushed.column("key"))
        report.resumed = pc.sum(done).as_py() or 0
        to_encode = to_encode.filter(pc.invert(done))
        if to_encode.column("key").null_count:  # keyed here, from the bytes fetched to encode them
            hashing = _hashing(plan, split, to_encode, cache, flushed, media, log)
    if not to_encode.num_rows:
        return report
    # Fetch window first (each row group of the source is read once), then shape (batches that stack).
    windows = fetch_windows(split, plan.column, to_encode.column("row").to_numpy())
    to_encode = to_encode.append_column("fetch_window", pa.array(windows, pa.int64()))
    to_encode = to_encode.sort_by([(c, "ascending") for c in ("fetch_window", *media.order)])
    log(
        f"shard {shard}: encoding {to_encode.num_rows} {media.unit} into {plan.cache_dir}"
        + (f" ({report.resumed} already written by an earlier attempt)" if report.resumed else "")
    )
    with progress.waiting(f"shard {shard}: loading the VAE"):  # a first download or a slow disk takes minutes
        encoder = media.encoder(vae_loader(), plan.settings, log)
    report.started = time.time()
    started = time.perf_counter()
    with (
        cache.writer(lane=f"shard-{shard}") as writer,
        progress.step("encode", to_encode.num_rows, unit=media.unit) as step,
    ):
        extra = {"keys": hashing.key} if hashing is not None else {}
        batches = media.batches(to_encode, split, plan.column, plan.settings, encoder, report.failures, log, **extra)
        dtype = as_dtype(plan.settings.latent_dtype)
        report.encoded += write_latents(batches, encoder, dtype, writer, step, log, media.stored)
    report.seconds = time.perf_counter() - started
    report.finished = time.time()
    if hashing is not None:
        hashing.write(plan.directory, shard)
        report.reused, report.resumed = hashing.reused, report.resumed + hashing.resumed
        report.carried = hashing.carried
        report.failures.update(hashing.carried)
    return report


def _hashing(plan, split, rows, cache, flushed, media, log) -> HashWhileFetching:
    """What keys this shard's keyless rows (see encode.fetch_hashes): the cache's readable entries, what an earlier
    attempt flushed, the decode failures of earlier runs."""
    keyless = rows.filter(pc.is_null(rows.column("key"))).column("row").to_numpy()
    entries = dict(zip(keyless.tolist(), entry_ids(split, keyless)))
    present = set(cache.known_entries().column("key").to_pylist())
    earlier = earlier_decode_failures(plan.cache_dir, log, media.decoder, media.decode_failure)
    hashing = HashWhileFetching(entries, present, set(flushed.column("key").to_pylist()), earlier)
    hashing.seen.update(k for k in rows.column("key").to_pylist() if k is not None)
    return hashing


def write_latents(
    batches,
    encode: Callable,
    latent_dtype: torch.dtype,
    writer,
    step,
    log: Callable[[str], None],
    stored: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
) -> int:
    """Encode each (keys, pixels) batch (`encode` gives (mean, std), halving the batch on out-of-memory) and add
    each key's mean and std, in `latent_dtype`, to `writer`, with the tensors `stored(pixels)` names beside them
    as they are (e.g. a conditioning sample's control image); the number of entries written.

    The results come back to the host without blocking and are written on another thread, so this thread only
    launches work: the device encodes the next batch while the last one is copied and written.
    """

    def write(keys: list[str], tensors: dict[str, torch.Tensor]) -> None:
        for i, key in enumerate(keys):
            writer.add(key, {name: batch[i] for name, batch in tensors.items()})
        step.advance(len(keys))

    written = 0
    with BackgroundWrites(write) as writes:
        for keys, pixels in batches:
            beside = stored(pixels) if stored is not None else {}
            mean, std = encode_with_oom_backoff(encode, pixels, log)
            copy = HostCopy({"mean": mean, "std": std}, latent_dtype)
            writes.put(list(keys), _WithStored(copy, beside) if beside else copy)
            written += len(keys)
    return written


class _WithStored:
    """A `HostCopy` of the latents joined by host tensors stored as they are (not cast to the latent dtype)."""

    def __init__(self, copy: HostCopy, tensors: dict[str, torch.Tensor]):
        self.copy = copy
        self.tensors = {name: t.to("cpu") for name, t in tensors.items()}

    def wait(self) -> dict[str, torch.Tensor]:
        return {**self.copy.wait(), **self.tensors}
