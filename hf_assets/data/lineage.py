"""Which split a table's rows number, and how its rows are named, stamped into the table's own schema metadata.

Parquet keeps schema metadata, so the stamp travels with the table through any store and any loader.
"""

from pathlib import Path

import pyarrow as pa

from hf_assets.cache.tables import load_manifest

FINGERPRINT_KEY = b"hf_assets.source_fingerprint"
NAMES_KEY = b"hf_assets.row_names"  # "path": file names are stable paths; "row": "{row}.jpg" from the row number


def stamp(table: pa.Table, fingerprint: str | None, names: str | None = None) -> pa.Table:
    """`table` stamped with the fingerprint of the split it was built from (and how its rows are named)."""
    meta = dict(table.schema.metadata or {})
    if fingerprint is not None:
        meta[FINGERPRINT_KEY] = fingerprint.encode()
    if names is not None:
        meta[NAMES_KEY] = names.encode()
    return table.replace_schema_metadata(meta)


def carry(source: pa.Table, target: pa.Table) -> pa.Table:
    """`target` stamped like `source` (a table derived from it numbers the same rows)."""
    return stamp(target, source_fingerprint(source), row_names(source))


def source_fingerprint(table: pa.Table) -> str | None:
    """The fingerprint of the split whose rows this table numbers; None when it was never stamped."""
    value = (table.schema.metadata or {}).get(FINGERPRINT_KEY)
    return value.decode() if value is not None else None


def row_names(table: pa.Table) -> str | None:
    """ "path" when rows are named by stable file paths, "row" when by row number, None when unknown."""
    value = (table.schema.metadata or {}).get(NAMES_KEY)
    return value.decode() if value is not None else None


class StaleTable(ValueError):
    """A table built from another version of the split than the one read now: its rows would name other samples."""


def stale_split_message(backend_id: str, since: str, stored: str | None, current: str) -> str:
    """Says that the split changed since `since` (e.g. "aspect_buckets was built") and how to rebuild the metadata."""
    change = f"fingerprint {stored} -> {current}" if stored else f"no source fingerprint recorded -> {current}"
    return (
        f"backend '{backend_id}': the dataset changed since {since} ({change}); "
        "materialize raw_split, filtered_index and aspect_buckets for this partition first (job scan_datasets)"
    )


def require_built_from(metadata_dir: Path, backend_id: str, name: str, fingerprint: str) -> None:
    """Raise `StaleTable` unless table `name` (its manifest in `metadata_dir`) was built from the split with this
    fingerprint."""
    built_from = load_manifest(Path(metadata_dir), name).get("source_fingerprint")
    if built_from != fingerprint:
        raise StaleTable(stale_split_message(backend_id, f"{name} was built", built_from, fingerprint))
