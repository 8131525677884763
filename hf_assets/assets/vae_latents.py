import dagster as dg
import pyarrow as pa

from hf_assets.assets.cache_repairs import report_repairs, start_full_verification
from hf_assets.assets.metadata import check_result, counts_table, reason_counts
from hf_assets.assets.partitions import partition_check_specs
from hf_assets.assets.retries import TRANSIENT_RETRY, retry_only_transient
from hf_assets.cache.tables import load_manifest
from hf_assets.data.sources import RawSplit
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader import DataloaderConfigResource
from hf_assets.resources.gpu import EncoderResource
from hf_assets.resources.io_manager import stale_split_message

CHECKS = {
    "latents_complete": "Every bucketed sample has a latent, or was dropped with a reason (corrupt image).",
    "latent_shapes": "Every latent has shape (C, target_height / f, target_width / f).",
    "latents_finite": "No latent holds NaN or inf (fp16 SDXL VAE: use bf16/fp32 or an fp16-fix VAE).",
}


def build_vae_latents(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `vae_latents` asset over the given backend partitions."""

    @dg.asset(
        name="vae_latents",
        partitions_def=partitions,
        group_name="encoders",
        kinds={"pytorch", "safetensors"},
        pool="gpu",
        retry_policy=TRANSIENT_RETRY,
        check_specs=partition_check_specs("vae_latents", CHECKS, partitions),
    )
    @retry_only_transient
    def vae_latents(
        context: dg.AssetExecutionContext,
        dataloader: DataloaderConfigResource,
        encoders: EncoderResource,
        aspect_buckets: pa.Table,
        raw_split: RawSplit,
    ):
        """The VAE latent distribution (mean, std) of every bucketed sample, cached by content and settings."""
        # torch-backed modules load here, not when the webserver or daemon imports the definitions
        from hf_assets.cache import verify
        from hf_assets.cache.latents import open_latents
        from hf_assets.cache.manifest import read_manifest
        from hf_assets.encode.latents_update import LatentSettings, update_latents, wanted_latents
        from hf_assets.encode.models import is_video_vae
        from hf_assets.encode.vae import vae_factors_from_config

        backend = dataloader.backend(context.partition_key)
        # The bucket table's `row` numbers index the split it was built from: with another split they would name
        # other images, and the cache would store them under these file names. Refuse before loading any model.
        built_from = load_manifest(backend.metadata_dir, "aspect_buckets").get("source_fingerprint")
        if built_from != raw_split.fingerprint:
            raise dg.Failure(
                stale_split_message(backend.id, "aspect_buckets was built", built_from, raw_split.fingerprint),
                metadata={"aspect_buckets_fingerprint": str(built_from), "current_fingerprint": raw_split.fingerprint},
            )
        if backend.dataset_type == "video":
            from hf_assets.assets.video_latents import materialize_video_latents

            return materialize_video_latents(context, backend, encoders, aspect_buckets, raw_split)
        if encoders.full_verify:
            start_full_verification(context, backend.vae_dir)
        models = encoders.encoders
        if is_video_vae(models.vae_config()):
            raise dg.Failure(f"backend '{backend.id}' holds images, but HF_ASSETS_MODEL={models.model!r} has a video "
                             "VAE; set HF_ASSETS_MODEL to an image pipeline (or dataset_type \"video\" for clips)")
        factors = vae_factors_from_config(models.vae_config())
        settings = LatentSettings(models.vae_identity(), str(models.dtype), str(encoders.storage_dtype))
        progress = ProgressLog(context.log.info)
        wanted = wanted_latents(aspect_buckets, raw_split, backend.image_column, settings, backend.metadata_dir,
                                progress=progress)
        meta = {**factors, "vae": settings.vae_identity, "model_dtype": settings.model_dtype,
                "storage_dtype": settings.storage_dtype, "backend": backend.id}
        report = update_latents(
            wanted, raw_split, backend.image_column, models.vae, backend.vae_dir, meta, encoders.storage_dtype,
            batch_size=encoders.vae_batch_size, workers=encoders.decode_workers,
            shard_bytes=encoders.shard_mb << 20, log=context.log.info, progress=progress,
        )
        log_drops(context, backend.id, report, backend.vae_dir)
        repaired = report_repairs(context, backend.id, backend.vae_dir)
        manifest = read_manifest(backend.vae_dir).table
        complete = verify.missing(aspect_buckets, manifest, ["filename"], excused=set(report.dropped))
        shapes = verify.latent_shape_mismatches(manifest, factors["latent_channels"], factors["downscale"])
        finite = verify.nonfinite_tensors(backend.vae_dir)
        return dg.MaterializeResult(
            value=open_latents(backend.vae_dir),
            metadata={
                "encoded": report.encoded,
                "reused": report.reused,
                "dropped": len(report.dropped),
                "dropped_by_reason": counts_table(reason_counts(report.dropped)),
                "throughput_img_per_s": round(report.throughput, 2),
                **progress.metadata(),
                "cache_bytes": report.size_bytes,
                "cache_dir": dg.MetadataValue.path(str(backend.vae_dir)),
                "repaired": dg.MetadataValue.json(repaired),
                "vae": settings.vae_identity,
                "scaling_factor": factors["scaling_factor"],
                "shift_factor": factors["shift_factor"],
            },
            check_results=[
                check_result(context, "latents_complete", complete, repaired),
                check_result(context, "latent_shapes", shapes, repaired),
                check_result(context, "latents_finite", finite, repaired),
            ],
        )

    return vae_latents


def log_drops(context: dg.AssetExecutionContext, backend_id: str, report, directory) -> None:
    """One warning per newly failed image; images an earlier run already reported get one info line, not a warning."""
    new = {name: reason for name, reason in report.dropped.items() if name not in report.dropped_before}
    if new:
        context.log.warning(f"{backend_id}: {len(new)} image(s) could not be encoded: {dict(list(new.items())[:5])}")
    if report.dropped_before:
        context.log.info(f"{backend_id}: {len(report.dropped_before)} image(s) still dropped as an earlier run "
                         f"reported (see {directory}/dropped.parquet); they are retried when their bytes change")
