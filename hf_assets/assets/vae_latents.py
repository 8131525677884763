"""The `vae_latents` asset: reap dead runs, plan, encode each shard as its own step in the gpu pool, commit (its
checks: `assets.cache_checks`).
The engine (hf_assets.encode.engine) does the work, the same for images and clips."""

import dagster as dg
import pyarrow as pa

from hf_assets.assets.cache_repairs import start_full_verification
from hf_assets.assets.latents_result import latents_result
from hf_assets.assets.retries import TRANSIENT_RETRY, retry_only_transient
from hf_assets.automation.reap import reap_dead_runs
from hf_assets.data.lineage import require_built_from
from hf_assets.data.sources import RawSplit
from hf_assets.encode import engine
from hf_assets.encode.engine_types import LatentPlan
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource
from hf_assets.resources.encoders import EncodersResource

STEP_IO = "step_io_manager"  # the plan's location travels as JSON on the shared cache dir
SHARD_RETRY = TRANSIENT_RETRY  # each step retries transient failures alone; a retried shard resumes its journal
SHARD_POD = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}  # k8s_job_executor only


def shard_op(shard: int) -> str:
    """The name of shard `shard`'s op (its step key ends with it)."""
    return f"encode_vae_shard_{shard}"


def build_vae_latents_asset(partitions: dg.PartitionsDefinition, shards: int) -> dg.AssetsDefinition:
    """`vae_latents` over the backend partitions, with `shards` shard steps. The fan-out is static (fixed when the
    definitions load), so every executor runs it as it is, dagster-dask included (it plans all steps up front)."""

    @dg.op(ins={"reaped": dg.In(dg.Nothing)}, out=dg.Out(io_manager_key=STEP_IO), retry_policy=SHARD_RETRY)
    @retry_only_transient
    def plan_vae_latents(
        context: dg.OpExecutionContext,
        dataloader_config: DataloaderConfigResource,
        encoders: EncodersResource,
        aspect_buckets: pa.Table,
        raw_split: RawSplit,
    ) -> dg.Output:
        """Find what the cache lacks and split it into shards by cache key; idle shards finish at once."""
        backend, progress = dataloader_config.backend(context.partition_key), ProgressLog(context.log.info)
        # The stored bucket table's `row`s number the split it was built from: with another split they would name
        # other samples. Refuse before reading any model.
        require_built_from(backend.metadata_dir, backend.id, "aspect_buckets", raw_split.fingerprint)
        if encoders.full_verify:
            start_full_verification(context, backend.vae_dir)
        settings = encoders.encode_settings()
        loaded = encoders.for_backend(backend, context.log.info)
        plan = engine.plan(backend, aspect_buckets, raw_split, loaded, settings, shards, context.run_id, progress)
        metadata = {"to_encode": plan.to_encode, "reused": plan.reused, "busy_shards": len(plan.busy_shards)}
        return dg.Output({**plan.to_dict(), "progress": progress.metadata()}, metadata=metadata)

    @dg.op(out=dg.Out(dg.Nothing), pool="gpu", retry_policy=SHARD_RETRY, tags={"dagster-k8s/config": SHARD_POD})
    @retry_only_transient
    def encode_vae_shard(
        context: dg.OpExecutionContext,
        dataloader_config: DataloaderConfigResource,
        encoders: EncodersResource,
        raw_split: RawSplit,
        plan: dict,
    ):
        """Encode one shard of the plan into the cache, on any worker that sees the cache; its report stays in the
        plan for the commit (dagster-dask hands a fan-in input no values)."""
        written, shard = LatentPlan.from_dict(plan), int(context.op.name.rsplit("_", 1)[1])
        if shard in written.busy_shards:  # an idle shard claims no device and loads no model
            backend = dataloader_config.backend(context.partition_key)
            with encoders.for_shard(backend, shard, context.log.info) as loaded:
                progress = ProgressLog(context.log.info)
                engine.encode_shard(written, shard, raw_split, loaded.vae, progress, context.log.info, loaded.depth)

    @dg.op(ins={"shards_done": dg.In(dg.Nothing)}, retry_policy=SHARD_RETRY)
    @retry_only_transient
    def commit_vae_latents(
        context: dg.OpExecutionContext,
        dataloader_config: DataloaderConfigResource,
        aspect_buckets: pa.Table,
        plan: dict,
    ):
        """Merge the shards into the cache's manifest atomically; its blocking checks follow in their own step."""
        backend, written = dataloader_config.backend(context.partition_key), LatentPlan.from_dict(plan)
        progress = ProgressLog(context.log.info)
        report = engine.commit(written, progress, context.log.info)
        planning = {**plan.get("progress", {}), **progress.metadata()}
        return latents_result(context, backend, aspect_buckets, written, report, planning)

    @dg.graph_asset(
        name="vae_latents",
        partitions_def=partitions,
        group_name="encoders",
        kinds={"pytorch", "safetensors"},
        description="The VAE latent distribution (mean, std) of every bucketed sample, cached by content and settings.",
    )
    def vae_latents(aspect_buckets: pa.Table, raw_split: RawSplit):
        plan = plan_vae_latents(aspect_buckets, raw_split, reap_dead_runs())
        done = [encode_vae_shard.alias(shard_op(k))(raw_split, plan) for k in range(shards)]
        return commit_vae_latents(aspect_buckets, plan, done)

    return vae_latents
