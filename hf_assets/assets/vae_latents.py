import contextlib
import os

import dagster as dg
import pyarrow as pa

from hf_assets import env
from hf_assets.assets.cache_repairs import cache_result, start_full_verification
from hf_assets.assets.metadata import counts_table, reason_counts
from hf_assets.assets.partitions import partition_check_specs
from hf_assets.assets.retries import TRANSIENT_RETRY, retry_only_transient
from hf_assets.cache.tables import load_manifest, load_table
from hf_assets.data.sources import RawSplit
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader import DataloaderConfigResource
from hf_assets.resources.encoders import EncodersResource
from hf_assets.resources.io_manager import stale_split_message

CHECKS = {
    "latents_complete": "Every bucketed sample has a latent, or was dropped with a reason (corrupt image).",
    "latent_shapes": "Every latent has shape (C, target_height / f, target_width / f).",
    "latents_finite": "No latent holds NaN or inf (fp16 SDXL VAE: use bf16/fp32 or an fp16-fix VAE).",
}
STEP_IO = "step_io_manager"  # small values between the plan, shard and commit steps, on the shared cache dir
DEFAULT_SHARDS = 8
# Each step retries transient failures alone (network, GPU out of memory, a lane still held by a lost attempt);
# a retried shard resumes from its journaled flushes. Other errors fail at once (assets/retries.py).
SHARD_RETRY = TRANSIENT_RETRY
# On the k8s_job_executor each shard is a pod holding one GPU; other executors ignore this tag.
SHARD_POD = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}


def check_output(check: str) -> str:
    """The output carrying a check's result, named as the graph asset names it (its spec's python identifier)."""
    return f"vae_latents_{check}"


def shard_op(shard: int) -> str:
    """The name of shard `shard`'s op (its step key ends with it)."""
    return f"encode_vae_shard_{shard}"


def shard_index(op_name: str) -> int:
    """The shard an op encodes, from its name."""
    return int(op_name.rsplit("_", 1)[1])


def default_shards() -> int:
    """Shards per run: HF_ASSETS_SHARDS, else 8 (override per run in the plan step's config)."""
    value = os.environ.get(env.SHARDS, str(DEFAULT_SHARDS))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{env.SHARDS}={value!r}: give a whole number of shards, at least 1")
    return int(value)


def build_vae_latents_asset(partitions: dg.PartitionsDefinition, shards: int | None = None) -> dg.AssetsDefinition:
    """The `vae_latents` asset over the given backend partitions: plan, encode each of `shards` shards (default
    HF_ASSETS_SHARDS or 8) as its own step, commit.

    The fan-out is static (one op per shard, fixed when the definitions load): every executor runs it as it is,
    including dagster-dask, which plans all steps up front and would silently skip dynamically mapped ones.
    """
    shards = shards or default_shards()

    @dg.op(name="plan_vae_latents", out=dg.Out(io_manager_key=STEP_IO), retry_policy=SHARD_RETRY)
    @retry_only_transient
    def plan_vae_latents(
        context: dg.OpExecutionContext,
        dataloader: DataloaderConfigResource,
        encoders: EncodersResource,
        aspect_buckets: pa.Table,
        raw_split: RawSplit,
    ):
        """Find what the cache lacks and split it into shards by cache key; idle shards finish at once."""
        from hf_assets.encode.latents_plan import plan_latents
        from hf_assets.encode.latents_update import wanted_latents
        from hf_assets.encode.models import is_video_vae

        backend = dataloader.backend(context.partition_key)
        if backend.conditioning.generator is not None:
            raise dg.Failure(
                f"backend '{backend.id}': encoding a generated conditioning dataset is not supported yet; its pairs "
                "and preview are in aspect_buckets (job scan_datasets)",
                allow_retries=False,
            )
        # The bucket table's `row` numbers index the split it was built from: with another split they would name
        # other images, and the cache would store them under these file names. Refuse before loading any model.
        built_from = load_manifest(backend.metadata_dir, "aspect_buckets").get("source_fingerprint")
        if built_from != raw_split.fingerprint:
            raise dg.Failure(
                stale_split_message(backend.id, "aspect_buckets was built", built_from, raw_split.fingerprint),
                metadata={"aspect_buckets_fingerprint": str(built_from), "current_fingerprint": raw_split.fingerprint},
                allow_retries=False,
            )
        if backend.dataset_type == "video":  # clips are encoded whole by shard 0 (in the gpu pool)
            return {"video": True}
        if encoders.full_verify:
            start_full_verification(context, backend.vae_dir)
        loaded = encoders.loaded
        if is_video_vae(loaded.vae_config()):
            raise dg.Failure(
                f"backend '{backend.id}' holds images, but HF_ASSETS_MODEL={loaded.model!r} has a video "
                'VAE; set HF_ASSETS_MODEL to an image pipeline (or dataset_type "video" for clips)',
                allow_retries=False,
            )
        settings = encoders.encode_settings().latent_settings(loaded.vae_identity())
        progress = ProgressLog(context.log.info)
        wanted = wanted_latents(
            aspect_buckets, raw_split, backend.image_column, settings, backend.metadata_dir, progress=progress
        )
        plan = plan_latents(wanted, backend.vae_dir, shards, plan_id=context.run_id, log=context.log.info)
        return dg.Output(
            {**plan.to_dict(), "progress": progress.metadata()},
            metadata={"to_encode": plan.to_encode, "reused": plan.reused, "busy_shards": len(plan.busy_shards)},
        )

    @dg.op(
        name="encode_vae_shard",
        out=dg.Out(io_manager_key=STEP_IO),
        pool="gpu",
        retry_policy=SHARD_RETRY,
        tags={"dagster-k8s/config": SHARD_POD},
    )
    @retry_only_transient
    def encode_vae_shard(
        context: dg.OpExecutionContext,
        dataloader: DataloaderConfigResource,
        encoders: EncodersResource,
        raw_split: RawSplit,
        plan: dict,
    ) -> dict:
        """Encode one shard's images into the cache (one step per shard, on any worker that sees the cache)."""
        from hf_assets.encode.engine_types import LatentPlan, ShardReport, require_visible
        from hf_assets.encode.latents_update import encode_shard

        backend = dataloader.backend(context.partition_key)
        shard = shard_index(context.op.name)
        if plan.get("video"):
            if shard:
                return {}
            from hf_assets.assets.video_latents import encode_video_latents

            aspect_buckets = load_table(backend.metadata_dir, "aspect_buckets")
            return {"video": encode_video_latents(context, backend, encoders, aspect_buckets, raw_split)}
        written = LatentPlan.from_dict(plan)
        require_visible(written)
        if not written.shard_sizes[shard]:
            return ShardReport(shard=shard).to_dict()  # idle: no device claimed, no model loaded
        with shard_device(context, encoders, shard) as loaded:
            report = encode_shard(
                written,
                shard,
                raw_split,
                backend.image_column,
                loaded.vae,
                encoders.encode_settings(),
                log=context.log.info,
            )
        return report.to_dict()

    @dg.op(
        name="commit_vae_latents",
        out={"result": dg.Out(), **{check_output(name): dg.Out(dg.Nothing, is_required=False) for name in CHECKS}},
        retry_policy=SHARD_RETRY,
    )
    @retry_only_transient
    def commit_vae_latents(
        context: dg.OpExecutionContext,
        dataloader: DataloaderConfigResource,
        encoders: EncodersResource,
        aspect_buckets: pa.Table,
        plan: dict,
        reports: list,
    ):
        """Merge the shards into the cache's manifest atomically, then run the blocking checks."""
        from hf_assets.cache import verify
        from hf_assets.cache.latents import open_latents
        from hf_assets.encode.engine_types import LatentPlan, ShardReport
        from hf_assets.encode.latents_commit import commit_latents
        from hf_assets.encode.vae import vae_factors_from_config

        backend = dataloader.backend(context.partition_key)
        if plan.get("video"):
            from hf_assets.assets.video_latents import video_latents_result

            return video_latents_result(context, backend, encoders, aspect_buckets, reports[0]["video"])
        loaded = encoders.loaded
        factors = vae_factors_from_config(loaded.vae_config())
        meta = {
            **factors,
            "vae": loaded.vae_identity(),
            "model_dtype": str(loaded.dtype),
            "latent_dtype": str(encoders.resolved_latent_dtype),
            "backend": backend.id,
        }
        shard_reports = [ShardReport.from_dict(r) for r in reports]
        progress = ProgressLog(context.log.info)
        report = commit_latents(
            LatentPlan.from_dict(plan), shard_reports, meta, log=context.log.info, progress=progress
        )
        log_drops(context, backend.id, report, backend.vae_dir)

        def checks(manifest: pa.Table) -> tuple[dict, dict]:
            return {
                "latents_complete": verify.missing(aspect_buckets, manifest, ["filename"], excused=set(report.dropped)),
                "latent_shapes": verify.latent_shape_mismatches(
                    manifest, factors["latent_channels"], factors["downscale"]
                ),
                "latents_finite": verify.nonfinite_tensors(backend.vae_dir),
            }, {}

        return cache_result(
            context,
            backend.id,
            backend.vae_dir,
            open_latents(backend.vae_dir),
            checks,
            {
                "encoded": report.encoded,
                "reused": report.reused,
                "dropped": len(report.dropped),
                "dropped_by_reason": counts_table(reason_counts(report.dropped)),
                "throughput_img_per_s": round(report.throughput, 2),
                **plan.get("progress", {}),
                "encode_images": report.encoded,
                "encode_seconds": round(report.encode_seconds, 2),
                "encode_images_per_s": round(report.throughput, 2),
                **progress.metadata(),
                "shards": len(reports),
                "cache_bytes": report.size_bytes,
                "vae": meta["vae"],
                "scaling_factor": factors["scaling_factor"],
                "shift_factor": factors["shift_factor"],
            },
        )

    check_specs = partition_check_specs("vae_latents", CHECKS, partitions)

    @dg.graph_asset(
        name="vae_latents",
        partitions_def=partitions,
        group_name="encoders",
        kinds={"pytorch", "safetensors"},
        check_specs=check_specs,
        description="The VAE latent distribution (mean, std) of every bucketed sample, cached by content and settings.",
    )
    def vae_latents(aspect_buckets: pa.Table, raw_split: RawSplit):
        plan = plan_vae_latents(aspect_buckets, raw_split)
        reports = [encode_vae_shard.alias(shard_op(k))(raw_split, plan) for k in range(shards)]
        result, *checks = commit_vae_latents(aspect_buckets, plan, reports)
        return {"result": result, **{check_output(name): out for name, out in zip(CHECKS, checks)}}

    return vae_latents


def log_drops(context: dg.OpExecutionContext, backend_id: str, report, directory) -> None:
    """One warning per newly failed image; images an earlier run already reported get one info line, not a warning."""
    new = {name: reason for name, reason in report.dropped.items() if name not in report.dropped_before}
    if new:
        context.log.warning(f"{backend_id}: {len(new)} image(s) could not be encoded: {dict(list(new.items())[:5])}")
    if report.dropped_before:
        context.log.info(
            f"{backend_id}: {len(report.dropped_before)} image(s) still dropped as an earlier run "
            f"reported (see {directory}/dropped.parquet); they are retried when their bytes change"
        )


@contextlib.contextmanager
def shard_device(context: dg.OpExecutionContext, encoders: EncodersResource, shard: int):
    """The encoders this shard step uses: on a machine whose GPUs several steps share at once (multiprocess, a Dask
    worker with many GPUs), a GPU of its own, preferring shard mod GPUs; elsewhere the resource's device."""
    from hf_assets.encode.devices import claim_device
    from hf_assets.encode.encoders import shared_encoders
    from hf_assets.executors import executor_name

    loaded = encoders.loaded
    if loaded.device.type == "cpu":
        with cpu_threads():
            yield loaded
        return
    if loaded.device.type != "cuda" or loaded.device.index is not None or executor_name() == "in_process":
        yield loaded
        return
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        yield loaded
        return
    with claim_device(count, shard, log=context.log.info) as index:
        context.log.info(f"shard {shard} encodes on cuda:{index} of {count}")
        yield shared_encoders(
            loaded.model, loaded.vae_path, torch.device("cuda", index), loaded.dtype, log=context.log.info
        )


@contextlib.contextmanager
def cpu_threads():
    """One torch thread count for every CPU shard step, whatever the executor set (Dask workers start with
    OMP_NUM_THREADS=1): a CPU convolution's float rounding follows the thread count, so the same count on every
    executor gives bitwise-equal latents."""
    import torch

    from hf_assets import env

    value = os.environ.get(env.CPU_THREADS, "").strip()
    if value and not value.isdigit():
        raise ValueError(f"{env.CPU_THREADS}={value!r}: give a number of threads, e.g. 4")
    before = torch.get_num_threads()
    torch.set_num_threads(int(value) if value else (os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)
