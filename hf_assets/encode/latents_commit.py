"""Commit a latent cache update: merge what every shard wrote into one manifest, atomically, and record drops."""

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.encoded import EncodedCache
from hf_assets.encode.drop_records import save_drops
from hf_assets.encode.engine_types import EncodeReport, LatentPlan, ShardReport, require_visible
from hf_assets.encode.fetch_hashes import fetched_hashes, key_pending
from hf_assets.encode.image_source import remember
from hf_assets.encode.latents_plan import remove_plan
from hf_assets.encode.media import Media
from hf_assets.progress import ProgressLog, quiet


def commit_latents(
    plan: LatentPlan,
    media: Media,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    progress: ProgressLog | None = None,
    reports: Iterable[ShardReport] | None = None,
) -> EncodeReport:
    """Write the manifest of every sample the shards encoded or the cache held (with the plan's metadata) and
    `dropped.parquet` (samples of kind `media` without a latent); remove the plan.

    `reports` are the shards' reports, by default those the shard steps left in the plan. Raises
    `MissingEntriesError` (naming examples) when a shard of the plan did not finish.
    """
    require_visible(plan)
    reports = list(plan.shard_reports() if reports is None else reports)
    report = EncodeReport(reused=plan.reused, encoded=sum(r.encoded + r.resumed for r in reports))
    timed = [r for r in reports if r.encoded]
    if timed:  # wall time from the first shard's start to the last one's end: the throughput of all workers together
        report.encode_seconds = max(r.finished for r in timed) - min(r.started for r in timed)
    carried = plan.carried_failures()
    failures = dict(carried)
    for r in reports:
        failures.update(r.failures)
        carried.update(r.carried)
        report.reused += r.reused
    report.dropped.update(plan.refused())  # refused before encoding: no key
    dropped_keys: dict[str, str | None] = {}  # filename -> cache key
    cache = EncodedCache(plan.cache_dir, prefix="latents")
    readable = _with_fetched(plan, media, cache, report)
    is_bad = pc.is_in(readable.column("key"), pa.array(list(failures), pa.string()))
    bad = readable.filter(is_bad)
    for name, key in zip(bad.column("filename").to_pylist(), bad.column("key").to_pylist()):
        report.dropped[name] = failures[key]
        dropped_keys[name] = key
        if key in carried:
            report.dropped_before.add(name)
    with (progress or quiet()).step("commit", unit="entries") as step:
        result = cache.commit(readable.filter(pc.invert(is_bad)), plan.meta)
        step.advance(result.manifest.table.num_rows)
    save_drops(plan.cache_dir, report.dropped, dropped_keys, media.unit, media.decoder, media.decode_failure)
    remove_plan(plan)
    report.size_bytes = cache.size_bytes()
    if len(reports) > 1:
        hosts = sorted({f"{r.host}:{r.pid}" for r in timed})
        log(f"committed {len(reports)} shard(s) encoded by {len(hosts)} process(es): {report.encoded} latents")
    return report


def _with_fetched(plan: LatentPlan, media: Media, cache: EncodedCache, report: EncodeReport) -> pa.Table:
    """The plan's keyed rows and those its shards keyed as they fetched them (`encode.fetch_hashes`), whose hashes
    join the content-hash memo; those whose bytes could not be read are dropped as unreadable."""
    readable, pending = plan.readable(), plan.pending()
    if not pending.num_rows:
        return readable
    hashed = fetched_hashes(plan.directory)
    pending = key_pending(pending, hashed)
    unreadable = pc.equal(pending.column("content_hash"), "")
    report.dropped.update(dict.fromkeys(pending.filter(unreadable).column("filename").to_pylist(), media.unreadable))
    keyed = cache.with_keys(pending.filter(pc.invert(unreadable)))
    if plan.memo_dir:
        remember(Path(plan.memo_dir), hashed)
    return pa.concat_tables([readable, keyed.select(readable.column_names).cast(readable.schema)])
