import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.assets.cache_repairs import cache_result, start_full_verification
from hf_assets.assets.metadata import human_size
from hf_assets.assets.retries import retry_only_transient, transient_retry
from hf_assets.automation.reap import reap_before_pool
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource
from hf_assets.resources.encoders import EncodersResource


def build_text_embeds_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `text_embeds` asset over the given backend partitions."""

    @dg.asset(
        name="text_embeds",
        partitions_def=partitions,
        group_name="encoders",
        kinds={"pytorch", "safetensors"},
        pool="gpu",
        retry_policy=transient_retry(),
    )
    @retry_only_transient
    def text_embeds(
        context: dg.AssetExecutionContext,
        dataloader_config: DataloaderConfigResource,
        encoders: EncodersResource,
        aspect_buckets: pa.Table,
        vae_latents,
    ):
        """Text-encoder embeddings of every caption variant of every encoded sample, each distinct text once."""
        # torch-backed modules load here, not when the webserver or daemon imports the definitions
        from hf_assets.cache import verify
        from hf_assets.cache.text_embed_cache import open_text_embeds
        from hf_assets.encode.compiled import compile_text_encoders
        from hf_assets.encode.encoder_set import text_identity
        from hf_assets.encode.text_update import update_text_embeds, wanted_captions

        # Record this run's worker (a run that dies now can be reaped) and reap dead runs; vae_latents' first step
        # does it before any pool wait, this covers a run of text_embeds alone.
        reap_before_pool(context.instance, context.run, context.log.warning)
        backend = dataloader_config.backend(context.partition_key)
        if encoders.full_verify:
            start_full_verification(context, backend.text_dir)
        loaded = encoders.for_backend(backend, context.log.info)
        max_length = encoders.max_length or None
        identity = text_identity(loaded, encoders.max_length)
        encoded = pa.array(list(vae_latents), pa.string())
        wanted = wanted_captions(aspect_buckets, identity, only=encoded)
        progress = ProgressLog(context.log.info)
        report = update_text_embeds(
            wanted,
            lambda: compile_text_encoders(
                loaded.text_encoders(), encoders.text_compile, encoders.compile_cache, context.log.info
            ),
            identity["family"],
            max_length,
            backend.text_dir,
            {"identity": identity, "backend": backend.id},
            batch_size=encoders.text_batch_size,
            shard_bytes=encoders.shard_bytes,
            log=context.log.info,
            progress=progress,
        )

        # encoded + reused = distinct_captions: all three count distinct caption texts (one cache entry each);
        # `variants` counts (sample, caption variant) pairs, several of which may share one text.
        return cache_result(
            context,
            backend.id,
            backend.text_dir,
            open_text_embeds(backend.text_dir),
            {
                "encoded": report.encoded,
                "reused": report.reused,
                "distinct_captions": pc.count_distinct(wanted.column("content_hash")).as_py(),
                "variants": wanted.num_rows,
                "throughput_captions_per_s": round(report.throughput, 2),
                **progress.metadata(),
                "cache_bytes": report.size_bytes,
                "cache_size": human_size(report.size_bytes),
                "family": identity["family"],
            },
            lambda manifest: {"shapes": dg.MetadataValue.json(verify.inconsistent_shapes(manifest)[1])},
        )

    return text_embeds
