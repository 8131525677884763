"""The hf_assets code location: assets, resources, jobs and automation, wired from the dataloader config."""

from pathlib import Path

import dagster as dg

from hf_assets.assets.aspect_buckets import build_aspect_buckets
from hf_assets.assets.filtered_index import build_filtered_index_asset
from hf_assets.assets.partitions import backend_partitions
from hf_assets.assets.raw_split import build_raw_split
from hf_assets.automation.schedules import build_refresh_schedule
from hf_assets.config import config_path_from_env, load_config
from hf_assets.resources.dataloader import DataloaderConfigResource
from hf_assets.resources.io_manager import HFAssetsIOManager


def build_definitions(config_path: Path | str | None = None) -> dg.Definitions:
    """Definitions for one dataloader config (default: HF_ASSETS_DATALOADER_CONFIG or the demo)."""
    config = load_config(config_path or config_path_from_env())
    partitions = backend_partitions(config)
    assets = [
        build_raw_split(partitions),
        build_filtered_index_asset(partitions),
        build_aspect_buckets(partitions),
        dg.AssetSpec(
            "vae_latents",
            deps=["aspect_buckets"],
            partitions_def=partitions,
            group_name="encoders",
            description="VAE latent distribution per sample (not implemented yet).",
        ),
        dg.AssetSpec(
            "text_embeds",
            deps=["aspect_buckets"],
            partitions_def=partitions,
            group_name="encoders",
            description="Text-encoder embeddings per caption variant (not implemented yet).",
        ),
    ]
    prepare = dg.define_asset_job(
        "prepare_datasets",
        selection=dg.AssetSelection.assets("raw_split", "filtered_index", "aspect_buckets"),
        partitions_def=partitions,
        description="Scan, filter and bucket one backend.",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[prepare],
        schedules=[build_refresh_schedule(prepare, config.backend_ids)],
        resources={
            "dataloader": DataloaderConfigResource(path=str(config.path)),
            "io_manager": HFAssetsIOManager(config_path=str(config.path)),
        },
        # Each partition is a chain; one process per run keeps models loaded once and avoids step start-up.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
