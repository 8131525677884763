"""The encoder caches' blocking checks, as their own step: each reads one partition's stored cache (manifest, drop
record, shards) and encodes nothing, so a check runs after its asset in a run, and alone from the UI ("Execute")
or a job selecting only it, without encoding again."""

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa

from hf_assets.assets.cache_repairs import last_repairs
from hf_assets.assets.metadata import check_result
from hf_assets.assets.partitions import partition_check_specs
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource

LATENT_CHECKS = {
    "latents_complete": "Every bucketed sample has a latent, or was dropped with a reason (corrupt image).",
    "latent_shapes": "Every latent has shape (C, target_height / f, target_width / f); clips (C, T', H / f, W / f).",
    "latents_finite": "No latent holds NaN or inf (fp16 SDXL VAE: use bf16/fp32 or an fp16-fix VAE).",
}
TEXT_CHECKS = {
    "text_embeds_complete": "Every caption variant of every encoded sample has embeddings.",
    "text_embed_shapes": "Each stored tensor name has one shape across the cache.",
    "text_embeds_finite": "No embedding holds NaN or inf.",
}


def selected(context: dg.AssetCheckExecutionContext, asset: str, checks: dict) -> list[str]:
    """The checks of `asset` this step runs (all of them after a materialization, one when executed alone)."""
    keys = context.selected_asset_check_keys
    return [name for name in checks if dg.AssetCheckKey(dg.AssetKey(asset), name) in keys]


def evaluate(
    context: dg.AssetCheckExecutionContext,
    asset: str,
    names: list[str],
    directory: Path,
    findings: dict[str, Callable[[pa.Table], object]],
) -> Iterator[dg.AssetCheckResult]:
    """Each selected check's result for this partition, from the manifest as stored and what the cache's last triage
    repaired; a cache that was never written fails every check, naming its folder."""
    from hf_assets.cache.manifest import MANIFEST_FILE, read_manifest
    from hf_assets.cache.verify import Finding

    repaired = last_repairs(directory)
    if not (directory / MANIFEST_FILE).is_file():
        absent = Finding()
        absent.add(f"no cache at {directory}: materialize {asset} for partition {context.partition_key} first")
        for name in names:
            yield check_result(context, name, absent, repaired, asset=asset)
        return
    manifest = read_manifest(directory).table
    progress = ProgressLog(context.log.info)  # a first read of a large cache's shards takes minutes
    for name in names:
        with progress.waiting(f"{name}: reading {manifest.num_rows:,} entries of {directory}"):
            finding = findings[name](manifest)
        yield check_result(context, name, finding, repaired, asset=asset)


def dropped_files(directory: Path) -> set[str]:
    """The file names the cache's drop record lists (samples that could not be encoded, each with its reason)."""
    from hf_assets.cache.tables import load_table
    from hf_assets.encode.drop_records import DROPPED

    try:
        return set(load_table(directory, DROPPED).column("filename").to_pylist())
    except FileNotFoundError:
        return set()


def build_latent_checks(partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """vae_latents' three checks, one step reading the stored latent cache."""

    @dg.multi_asset_check(
        specs=partition_check_specs("vae_latents", LATENT_CHECKS, partitions, ["aspect_buckets"]),
        can_subset=True,
        name="check_vae_latents",
    )
    def check_vae_latents(
        context: dg.AssetCheckExecutionContext, dataloader_config: DataloaderConfigResource, aspect_buckets: pa.Table
    ):
        """Read vae_latents' stored cache: complete against the bucket table, shaped by the VAE, finite."""
        from hf_assets.cache import verify
        from hf_assets.cache.manifest import read_manifest

        directory = dataloader_config.backend(context.partition_key).vae_dir
        meta = read_manifest(directory).meta
        yield from evaluate(
            context,
            "vae_latents",
            selected(context, "vae_latents", LATENT_CHECKS),
            directory,
            {
                "latents_complete": lambda m: verify.missing(
                    aspect_buckets, m, ["filename"], excused=dropped_files(directory)
                ),
                "latent_shapes": lambda m: verify.latent_shape_mismatches(
                    m, meta.get("latent_channels", 4), meta.get("downscale", 8)
                ),
                "latents_finite": lambda m: verify.nonfinite_tensors(directory),
            },
        )

    return check_vae_latents


def build_text_checks(partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """text_embeds' three checks, one step reading the stored embedding cache."""

    @dg.multi_asset_check(
        specs=partition_check_specs("text_embeds", TEXT_CHECKS, partitions, ["aspect_buckets"]),
        can_subset=True,
        name="check_text_embeds",
    )
    def check_text_embeds(
        context: dg.AssetCheckExecutionContext, dataloader_config: DataloaderConfigResource, aspect_buckets: pa.Table
    ):
        """Read text_embeds' stored cache: every caption variant of every sample with a latent, one shape per
        tensor name, finite."""
        from hf_assets.cache import verify
        from hf_assets.cache.manifest import read_manifest
        from hf_assets.encode.text_update import wanted_captions

        backend = dataloader_config.backend(context.partition_key)
        names = selected(context, "text_embeds", TEXT_CHECKS)

        def complete(manifest: pa.Table):
            encoded = read_manifest(backend.vae_dir).table.column("filename").unique()
            return verify.missing(wanted_captions(aspect_buckets, {}, only=encoded), manifest, ["filename", "variant"])

        yield from evaluate(
            context,
            "text_embeds",
            names,
            backend.text_dir,
            {
                "text_embeds_complete": complete,
                "text_embed_shapes": lambda m: verify.inconsistent_shapes(m)[0],
                "text_embeds_finite": lambda m: verify.nonfinite_tensors(backend.text_dir),
            },
        )

    return check_text_embeds
