"""Bring a backend's text-embedding cache up to date: every caption variant, each distinct text encoded once."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.hashing import settings_hash, text_hash
from hf_assets.encode.engine_types import EncodeReport
from hf_assets.encode.text import encode_captions
from hf_assets.encode.vae import encode_with_oom_backoff
from hf_assets.progress import ProgressLog, quiet


def wanted_captions(buckets: pa.Table, identity: dict, only: pa.Array | None = None) -> pa.Table:
    """One row per (filename, variant, caption), keyed by the caption text and the encoder settings."""
    if only is not None:
        buckets = buckets.filter(pc.is_in(buckets.column("filename"), value_set=only))
    captions = buckets.column("captions").combine_chunks()
    lengths = pc.list_value_length(captions).fill_null(0).to_numpy()
    parents = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    texts = pc.list_flatten(captions)
    unique = pc.unique(texts)
    hashes = pa.array([text_hash(t) for t in unique.to_pylist()], pa.string())
    content = pc.take(hashes, pc.index_in(texts, value_set=unique))
    return pa.table(
        {
            "filename": pc.take(buckets.column("filename"), pa.array(parents, pa.int64())),
            "variant": pa.array(np.arange(len(parents)) - starts, pa.int32()),
            "caption": texts,
            "content_hash": content,
            "settings_hash": pa.array([settings_hash(identity)] * len(parents), pa.string()),
        }
    )


def update_text_embeds(
    wanted: pa.Table,
    encoders_loader: Callable[[], list],
    family: str,
    max_length: int | None,
    directory: Path,
    meta: dict,
    batch_size: int = 64,
    shard_bytes: int = 256 << 20,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    progress: ProgressLog | None = None,
) -> EncodeReport:
    """Encode the distinct captions the cache lacks, then commit a manifest of every wanted variant.

    `encoded` and `reused` both count distinct caption texts (one cache entry each), so they add up to the
    distinct captions wanted; the variants that share a text are counted by the caller.
    """
    report = EncodeReport()
    progress = progress or quiet()
    cache = EncodedCache(directory, prefix="text", max_bytes=shard_bytes)
    to_encode, reused = cache.triage(wanted)
    report.reused = pc.count_distinct(reused.column("key")).as_py() if reused.num_rows else 0
    if to_encode.num_rows:
        log(f"encoding {to_encode.num_rows} distinct captions ({report.reused} reused) into {directory}")
        with progress.waiting("loading the text encoders"):
            encoders = encoders_loader()
        started = time.perf_counter()
        with cache.writer() as writer, progress.step("encode", to_encode.num_rows, unit="captions") as step:
            for start in range(0, to_encode.num_rows, batch_size):
                part = to_encode.slice(start, batch_size)
                texts = part.column("caption").to_pylist()
                embeds = encode_with_oom_backoff(
                    lambda chunk: encode_captions(encoders, list(chunk), family, max_length), texts, log
                )
                for key, tensors in zip(part.column("key").to_pylist(), embeds):
                    writer.add(key, tensors)
                report.encoded += part.num_rows
                step.advance(part.num_rows)
        report.encode_seconds = time.perf_counter() - started
    with progress.step("commit", unit="entries") as step:
        result = cache.commit(wanted, meta)
        step.advance(result.manifest.table.num_rows)
    report.size_bytes = result.size_bytes
    return report
