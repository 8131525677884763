"""The video half of `vae_latents`: clips trimmed to the VAE's frame rule, encoded (in the shard step), checked
(in the commit step)."""

import dagster as dg
import pyarrow as pa

from hf_assets.assets.cache_repairs import cache_result, start_full_verification
from hf_assets.assets.metadata import counts_table, reason_counts
from hf_assets.progress import ProgressLog


def materialize_video_latents(
    context: dg.AssetExecutionContext, backend, encoders, aspect_buckets: pa.Table, raw_split
) -> dg.MaterializeResult:
    """Encode a video backend's clips into its latent cache and report counts, drops and the three checks."""
    encoded = encode_video_latents(context, backend, encoders, aspect_buckets, raw_split)
    return video_latents_result(context, backend, encoders, aspect_buckets, encoded)


def _factors(backend, encoders) -> dict:
    from hf_assets.encode.video_latents import video_factors_for

    loaded = encoders.loaded
    try:
        return video_factors_for(loaded)
    except ValueError as exc:
        raise dg.Failure(
            f"backend '{backend.id}' holds clips, but the VAE of HF_ASSETS_MODEL={loaded.model!r} is "
            f"not a video VAE ({exc}); set HF_ASSETS_MODEL to a video pipeline (Wan, LTX-Video, "
            "HunyuanVideo or CogVideoX)",
            allow_retries=False,
        ) from None


def encode_video_latents(context, backend, encoders, aspect_buckets: pa.Table, raw_split) -> dict:
    """Encode and commit a video backend's clips (one step: clips are not sharded yet); the report as JSON values."""
    from dataclasses import replace

    from hf_assets.encode.video_latents import update_video_latents, wanted_video_latents

    if encoders.full_verify:
        start_full_verification(context, backend.vae_dir)
    loaded = encoders.loaded
    factors = _factors(backend, encoders)
    job = encoders.encode_settings()
    settings = job.latent_settings(loaded.vae_identity())
    progress = ProgressLog(context.log.info)
    wanted = wanted_video_latents(
        aspect_buckets,
        raw_split,
        backend.image_column,
        settings,
        factors,
        tiled=True,
        memo_dir=backend.metadata_dir,
        progress=progress,
    )
    meta = {
        **factors,
        "vae": settings.vae_identity,
        "model_dtype": settings.model_dtype,
        "latent_dtype": settings.latent_dtype,
        "backend": backend.id,
        "dataset_type": "video",
    }
    report = update_video_latents(
        wanted,
        raw_split,
        backend.image_column,
        loaded.vae,
        backend.vae_dir,
        meta,
        replace(job, batch_size=max(1, job.batch_size // 4)),
        log=context.log.info,
        progress=progress,
    )
    return {
        "encoded": report.encoded,
        "reused": report.reused,
        "dropped": report.dropped,
        "throughput": report.throughput,
        "size_bytes": report.size_bytes,
        "progress": progress.metadata(),
    }


def video_latents_result(context, backend, encoders, aspect_buckets: pa.Table, encoded: dict) -> dg.MaterializeResult:
    """The materialization of an encoded video backend: counts, drops and the three checks."""
    from hf_assets.cache import verify
    from hf_assets.cache.latents import open_latents
    from hf_assets.encode.video_latents import video_shape_mismatches

    factors = _factors(backend, encoders)
    dropped = encoded["dropped"]
    if dropped:
        context.log.warning(f"{backend.id}: {len(dropped)} clip(s) have no latent: {dict(list(dropped.items())[:5])}")

    def checks(manifest: pa.Table) -> tuple[dict, dict]:
        return {
            "latents_complete": verify.missing(aspect_buckets, manifest, ["filename"], excused=set(dropped)),
            "latent_shapes": video_shape_mismatches(manifest, factors["latent_channels"], factors["downscale"]),
            "latents_finite": verify.nonfinite_tensors(backend.vae_dir),
        }, {}

    return cache_result(
        context,
        backend.id,
        backend.vae_dir,
        open_latents(backend.vae_dir),
        checks,
        {
            "encoded": encoded["encoded"],
            "reused": encoded["reused"],
            "dropped": len(dropped),
            "dropped_by_reason": counts_table(reason_counts(dropped)),
            "throughput_clips_per_s": round(encoded["throughput"], 3),
            "cache_bytes": encoded["size_bytes"],
            "vae": encoders.loaded.vae_identity(),
            "vae_class": factors["vae_class"],
            "temporal_downscale": factors["temporal_downscale"],
            "scaling_factor": factors["scaling_factor"],
            "latents_mean": dg.MetadataValue.json(factors["latents_mean"]),
            "latents_std": dg.MetadataValue.json(factors["latents_std"]),
            **encoded.get("progress", {}),
        },
    )
