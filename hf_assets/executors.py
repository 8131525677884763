"""Which Dagster executor runs the steps, chosen by HF_ASSETS_EXECUTOR when the definitions load.

The assets are the same on every executor; each executor takes its own run config, as its integration defines it.
"""

import os
import re
from pathlib import Path

import dagster as dg

from hf_assets import env

EXECUTORS = {
    "in_process": "every step in the run's process (default; the demo)",
    "multiprocess": "each step in its own process on this machine; at most one step per GPU at a time",
    "dask": "dagster-dask's dask_executor: a Dask cluster (LocalCluster, dask-jobqueue on SLURM, or an address)",
    "k8s": "dagster-k8s's k8s_job_executor: each step in its own Kubernetes pod (a shard's pod gets one GPU)",
}
EXTRAS = {"dask": ("dagster_dask", "dask"), "k8s": ("dagster_k8s", "k8s")}


def executor_name() -> str:
    """The executor HF_ASSETS_EXECUTOR names (default in_process), checked."""
    name = os.environ.get(env.EXECUTOR, "").strip() or "in_process"
    if name not in EXECUTORS:
        raise ValueError(f"{env.EXECUTOR}={name!r}: choose one of {', '.join(EXECUTORS)}")
    return name


def visible_gpus() -> int:
    """GPUs this machine gives its steps, without importing torch: HF_ASSETS_GPUS, else CUDA_VISIBLE_DEVICES,
    else the NVIDIA device files."""
    if os.environ.get(env.GPUS, "").strip():
        value = os.environ[env.GPUS].strip()
        if not value.isdigit():
            raise ValueError(f"{env.GPUS}={value!r}: give the number of GPUs, e.g. 8")
        return int(value)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return sum(1 for p in Path("/dev").glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name))


def multiprocess_executor(gpus: int) -> dg.ExecutorDefinition:
    """Dagster's multiprocess executor, running at most `gpus` steps at once unless the run config says otherwise."""
    base = dg.multiprocess_executor
    if gpus < 1:
        return base  # no GPU: one process per CPU core, Dagster's default

    def with_gpu_limit(config: dict) -> dict:
        return {**config, "max_concurrent": config.get("max_concurrent") or gpus}

    return base.configured(
        with_gpu_limit,
        config_schema=base.config_schema.as_field().config_type,
        description=f"Each step in its own process; at most {gpus} at once (one per GPU).",
    )


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor HF_ASSETS_EXECUTOR selects; the Dask and Kubernetes integrations are imported only when chosen."""
    name = executor_name()
    if name == "in_process":
        from hf_assets.dagster_internals import sleep_while_steps_wait_for_pools

        sleep_while_steps_wait_for_pools()  # a step waiting for the `gpu` pool would otherwise spin a core
        return dg.in_process_executor
    if name == "multiprocess":
        return multiprocess_executor(visible_gpus())
    module, extra = EXTRAS[name]
    try:
        integration = __import__(module)
    except ImportError as error:
        raise ImportError(
            f"{env.EXECUTOR}={name} needs {module.replace('_', '-')}: pip install 'hf_assets[{extra}]'"
        ) from error
    return dask_executor() if name == "dask" else integration.k8s_job_executor


def dask_executor() -> dg.ExecutorDefinition:
    """dagster-dask's executor, with its config schema as it defines it, for runs whose steps use pools.

    dagster-dask 0.29.27 hands the run record to `Client.submit`, and current Dask walks the arguments' tuples; a run
    with pool information (our encoders are in the `gpu` pool) then fails before any step starts. The steps a Dask
    worker runs never take pool slots (dagster-dask does not enforce pools: the cluster's workers bound concurrency),
    so the run given to the workers leaves that information out.
    """
    from dagster_dask import dask_executor as stock

    from hf_assets.dagster_internals import dask_executor_class, drop_pool_information

    class PoolSafeDaskExecutor(dask_executor_class()):
        def execute(self, plan_context, execution_plan):
            drop_pool_information(plan_context)
            yield from super().execute(plan_context, execution_plan)

    @dg.executor(
        name="dask", config_schema=stock.config_schema, requirements=dg.multiple_process_executor_requirements()
    )
    def pool_safe_dask_executor(init_context):
        ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
        return PoolSafeDaskExecutor(cluster_type, cluster_configuration)

    return pool_safe_dask_executor
