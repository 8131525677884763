"""The hf_assets code location: assets, resources, jobs and automation, wired from the dataloader config."""

import logging
from pathlib import Path

import dagster as dg

from hf_assets.assets.aspect_buckets import build_aspect_buckets_asset, conditioning_sources
from hf_assets.assets.asset_attributes import with_spec_attributes
from hf_assets.assets.bucket_previews import build_bucket_previews_asset
from hf_assets.assets.cache_checks import build_latent_checks, build_text_checks
from hf_assets.assets.filtered_index import build_filtered_index_asset
from hf_assets.assets.metadata_checks import build_metadata_checks
from hf_assets.assets.pair_checks import build_pair_checks
from hf_assets.assets.partitions import backend_partitions
from hf_assets.assets.raw_split import build_raw_split_asset
from hf_assets.assets.text_embeds import build_text_embeds_asset
from hf_assets.assets.vae_latents import build_vae_latents_asset
from hf_assets.automation.changes import default_hub_api
from hf_assets.automation.schedules import build_refresh_schedule
from hf_assets.automation.sensors import build_change_sensors
from hf_assets.config import config_path_from_env, load_config
from hf_assets.env import shard_count
from hf_assets.executors import executor_from_env
from hf_assets.resources.dataloader_config import DataloaderConfigResource
from hf_assets.resources.encoders import EncodersResource
from hf_assets.resources.io_manager import HFAssetsIOManager
from hf_assets.resources.step_values import StepValueIOManager


def encoder_resource() -> EncodersResource:
    """The encoder resource with each setting from its HF_ASSETS_* variable when set, so the launchpad shows it.

    Runs merge again field by field (EncodersResource.yield_for_execution): a setting in the run config wins and
    the environment fills the others.
    """
    return EncodersResource.from_environment()


def build_definitions(config_path: Path | str | None = None, hub_api=default_hub_api) -> dg.Definitions:
    """Definitions for one dataloader config (default: HF_ASSETS_DATALOADER_CONFIG or the demo).

    `hub_api` gives the Hub client the change sensors ask for dataset commits (tests pass a stand-in).
    """
    # One broken backend hides no other: it stays a partition whose first step fails listing its problems.
    config = load_config(config_path or config_path_from_env(), strict=False)
    log = logging.getLogger(__name__)
    for warning in config.warnings:  # keys accepted but not used: say so wherever the code location loads
        log.warning("%s: %s", config.path, warning)
    for problem in config.problems:
        log.error(
            "%s: %s (this backend's runs fail at once; check with python -m hf_assets.config.check)",
            config.path,
            problem,
        )
    partitions = backend_partitions(config)
    encoders = encoder_resource()
    assets = [
        build_raw_split_asset(partitions),
        build_filtered_index_asset(partitions),
        build_aspect_buckets_asset(partitions, conditioning_sources(config)),
        build_bucket_previews_asset(partitions),
        build_vae_latents_asset(partitions, shard_count()),
        build_text_embeds_asset(partitions),
    ]
    # Owners (HF_ASSETS_OWNERS), links to each asset's source, and code versions of code + settings.
    assets = with_spec_attributes(assets, config, encoders.result_settings())
    prepare = dg.define_asset_job(
        "prepare_datasets",
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Scan, filter, bucket and encode one backend.",
    )
    scan = dg.define_asset_job(
        "scan_datasets",
        selection=dg.AssetSelection.assets("raw_split", "filtered_index", "aspect_buckets", "bucket_previews"),
        partitions_def=partitions,
        description="Scan, filter and bucket one backend, and draw its previews (no model needed).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[
            *build_metadata_checks(partitions),
            build_latent_checks(partitions),
            build_text_checks(partitions),
            build_pair_checks(partitions),
        ],
        jobs=[prepare, scan],
        schedules=[build_refresh_schedule(prepare, config.backend_ids)],
        sensors=build_change_sensors(prepare, config.backend_ids, config.path, hub_api),
        resources={
            "dataloader_config": DataloaderConfigResource(path=str(config.path)),
            "io_manager": HFAssetsIOManager(config_path=str(config.path)),
            "step_io_manager": StepValueIOManager(config_path=str(config.path)),
            "encoders": encoders,
        },
        # HF_ASSETS_EXECUTOR: in_process (default: one process per run, models loaded once, no step start-up),
        # multiprocess (one step per GPU at a time), dask or k8s (see docs/cluster/README.md).
        executor=executor_from_env(),
    )


defs = build_definitions()
