"""The end of `vae_latents`: what the commit did (drops logged, counts, rate, the VAE's factors) as one
materialization, the same for images and clips. Its checks read the stored cache in their own step
(`assets.cache_checks`)."""

import dagster as dg
import pyarrow as pa

from hf_assets.assets.cache_repairs import cache_result
from hf_assets.assets.metadata import counts_table, human_size, reason_counts
from hf_assets.config import BackendConfig
from hf_assets.encode import engine
from hf_assets.encode.engine_types import EncodeReport, LatentPlan


def latents_result(
    context: dg.OpExecutionContext,
    backend: BackendConfig,
    buckets: pa.Table,
    plan: LatentPlan,
    report: EncodeReport,
    planning: dict,
) -> dg.MaterializeResult:
    """The materialization of a committed latent cache: counts, drops, rates (`planning`: the plan step's
    progress figures), the VAE and its factors."""
    from hf_assets.cache.latents import open_latents  # torch-backed reader: loaded by the step, not the definitions

    unit, meta = engine.media_of(plan).unit, plan.meta
    log_drops(context, backend.id, report, backend.vae_dir, unit)

    rate = round(report.throughput, 2)
    factors = {
        k: dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v for k, v in meta.items() if v is not None
    }
    return cache_result(
        context,
        backend.id,
        backend.vae_dir,
        open_latents(backend.vae_dir),
        {
            "encoded": report.encoded,
            "reused": report.reused,
            "dropped": len(report.dropped),
            "dropped_by_reason": counts_table(reason_counts(report.dropped)),
            f"throughput_{unit}_per_s": rate,
            **planning,
            f"encode_{unit}": report.encoded,
            "encode_seconds": round(report.encode_seconds, 2),
            f"encode_{unit}_per_s": rate,
            "shards": plan.shards,
            "cache_bytes": report.size_bytes,
            "cache_size": human_size(report.size_bytes),
            **factors,
        },
    )


def log_drops(context: dg.OpExecutionContext, backend_id: str, report: EncodeReport, directory, unit: str) -> None:
    """One warning for the samples newly dropped; those an earlier run already reported get one info line."""
    new = {name: reason for name, reason in report.dropped.items() if name not in report.dropped_before}
    if new:
        context.log.warning(f"{backend_id}: {len(new)} {unit} could not be encoded: {dict(list(new.items())[:5])}")
    if report.dropped_before:
        context.log.info(
            f"{backend_id}: {len(report.dropped_before)} {unit} still dropped as an earlier run "
            f"reported (see {directory}/dropped.parquet); they are retried when their bytes change"
        )
