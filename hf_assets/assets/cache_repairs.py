"""The end of every encoding asset: what the run repaired in its cache (log, metadata), and the materialization
that carries it."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from hf_assets.cache.health import forget_shards
from hf_assets.cache.repairs import read_repairs


def start_full_verification(context: dg.AssetExecutionContext, directory: Path) -> None:
    """Make this run's triage read every shard again, ignoring what verified.json remembers."""
    context.log.info(f"full verification: every shard under {directory} is read again")
    forget_shards(directory)


REPAIR_KEYS = (
    "manifest",
    "unreadable_shards",
    "unreadable_entries",
    "nonfinite_entries",
    "nonfinite_examples",
    "reencoded_nonfinite",
    "recovered_entries",
)


def last_repairs(directory: Path) -> dict:
    """What the cache's last triage repaired, the repairs it made only ({} when none)."""
    found = read_repairs(directory)
    return {key: found[key] for key in REPAIR_KEYS if found.get(key)}


def report_repairs(context: dg.AssetExecutionContext, backend_id: str, directory: Path) -> dict:
    """Warn about each repair this run's triage made and return them for the metadata ({} when none)."""
    found = repaired = last_repairs(directory)
    if found.get("manifest"):
        context.log.warning(f"{backend_id}: {found['manifest']}; rebuilt from the shards' headers")
    for shard, reason in (found.get("unreadable_shards") or {}).items():
        context.log.warning(f"{backend_id}: unreadable shard {shard} ({reason}); its entries were encoded again")
    if found.get("nonfinite_entries"):
        context.log.warning(
            f"{backend_id}: {found['nonfinite_entries']} cached entries held NaN or inf "
            f"(e.g. {found.get('nonfinite_examples')}); {found.get('reencoded_nonfinite', 0)} "
            "still wanted were encoded again"
        )
    if found.get("recovered_entries"):
        context.log.info(
            f"{backend_id}: {found['recovered_entries']} entries recovered from shards no manifest or journal recorded"
        )
    return repaired


def cache_result(
    context: dg.AssetExecutionContext,
    backend_id: str,
    directory: Path,
    value: Any,
    metadata: dict,
    describe: Callable[[pa.Table], dict] | None = None,
) -> dg.MaterializeResult:
    """The materialization of an encoded cache, its repairs reported: `metadata`, then what `describe(manifest)`
    finds in the manifest as it now is, then the cache's entry count, folder and repairs. Its checks are their own
    step (`assets.cache_checks`), which reads the stored cache."""
    from hf_assets.cache.manifest import read_manifest

    repaired = report_repairs(context, backend_id, directory)
    manifest = read_manifest(directory).table
    return dg.MaterializeResult(
        value=value,
        metadata={
            **metadata,
            **(describe(manifest) if describe else {}),
            "cache_entries": manifest.num_rows,
            "cache_dir": dg.MetadataValue.path(str(directory)),
            "repaired": dg.MetadataValue.json(repaired),
        },
    )
