"""The conditioning pairs' check, as its own step: for one partition, read what it and its partners stored (bucket
tables, `dropped_pairs`, latent manifests and drop records) and confirm that every kept source sample has its
partner's latent in each conditioning dataset, or a recorded reason on both sides (`cache.pair_verify`).

- On a conditioning partition it checks that dataset against its source; its own cache must exist.
- On a source partition it checks each conditioning dataset already encoded and names the others as pending (they
  are checked when they are materialized, which comes after their source).
- Other partitions pass with nothing to check.

Not blocking: a conditioning dataset's state never holds back its source's caption embeddings, and a source rebuilt
before its partners fails here until they are materialized again. Executable alone from the UI, like the cache
checks (`assets.cache_checks`)."""

import dagster as dg

from hf_assets.assets.partitions import partition_check_specs
from hf_assets.resources.dataloader_config import DataloaderConfigResource

PAIR_CHECKS = {
    "conditioning_pairs_complete": "Every kept source sample has its partner's latent in each of its conditioning "
    "datasets (strict partners with its crop), or both sides record why not.",
}
NAME = "conditioning_pairs_complete"


class NotStored(Exception):
    """A table or cache the check reads was never written."""


def build_pair_checks(partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """vae_latents' conditioning-pairs check, one step reading the stored caches of a partition and its partners."""

    @dg.multi_asset_check(
        specs=partition_check_specs("vae_latents", PAIR_CHECKS, partitions, ["aspect_buckets"], blocking=False),
        can_subset=True,
        name="check_conditioning_pairs",
    )
    def check_conditioning_pairs(context: dg.AssetCheckExecutionContext, dataloader_config: DataloaderConfigResource):
        """Read the stored pairs of this partition with its source or its conditioning datasets."""
        config = dataloader_config.config()
        backend = config.backend(context.partition_key)
        findings, pending, missing = [], [], []
        if backend.conditioning.is_conditioning:
            try:
                findings.append(_finding(config, backend.conditioning.source, backend.id))
            except NotStored as exc:
                missing.append(str(exc))
        for partner in config.conditioning_of(backend.id):
            try:
                findings.append(_finding(config, backend.id, partner))
            except NotStored as exc:
                pending.append(f"{partner} ({exc})")
        broken = [f for f in findings if not f.passed]
        if missing:
            description = "; ".join(missing)
        elif broken:
            description = " | ".join(f.describe() for f in broken)
        elif not findings and not pending:
            description = "no conditioning datasets: nothing to pair"
        else:
            description = f"{len(findings)} conditioning dataset(s) pair completely"
            if pending:
                description += f"; not encoded yet, checked when they are: {', '.join(pending)}"
        yield dg.AssetCheckResult(
            asset_key="vae_latents",
            check_name=NAME,
            passed=not missing and not broken,
            description=description,
            metadata={
                "partition": context.partition_key,
                "failures": sum(f.count for f in findings) + len(missing),
                "checked": dg.MetadataValue.json({f.conditioning_id: f.counts for f in findings}),
                "examples": dg.MetadataValue.json([e for f in broken for e in f.examples]),
                "pending": dg.MetadataValue.json(pending),
            },
        )

    return check_conditioning_pairs


def _finding(config, source_id: str, conditioning_id: str):
    """The broken pairs of `conditioning_id` with `source_id`, from their stored tables and caches."""
    from hf_assets.assets.cache_checks import dropped_files
    from hf_assets.assets.conditioning_pairs import DROPPED_PAIRS
    from hf_assets.cache.manifest import MANIFEST_FILE, read_manifest
    from hf_assets.cache.pair_verify import PairTables, broken_pairs

    source, conditioning = config.backend(source_id), config.backend(conditioning_id)
    if not (conditioning.vae_dir / MANIFEST_FILE).is_file():
        raise NotStored(f"no latent cache at {conditioning.vae_dir}: materialize vae_latents of '{conditioning_id}'")
    tables = PairTables(
        source=_table(source.metadata_dir, "aspect_buckets", source_id),
        pairs=_table(conditioning.metadata_dir, "aspect_buckets", conditioning_id),
        unpaired=_table(conditioning.metadata_dir, DROPPED_PAIRS, conditioning_id),
        encoded=read_manifest(conditioning.vae_dir).table.column("filename"),
        dropped=frozenset(dropped_files(conditioning.vae_dir)),
        source_dropped=frozenset(dropped_files(source.vae_dir)),
        strict=conditioning.conditioning.strict,
    )
    return broken_pairs(conditioning_id, source_id, tables)


def _table(folder, name: str, backend_id: str):
    from hf_assets.cache.tables import load_table

    try:
        return load_table(folder, name)
    except FileNotFoundError:
        raise NotStored(f"no {name} of '{backend_id}' in {folder}: materialize its aspect_buckets") from None
