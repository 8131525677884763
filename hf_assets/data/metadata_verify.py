"""Checks on what the metadata assets stored for one backend, read from their files (nothing rebuilt): the split
raw_split stored still matches its source, filtered_index dropped no more of the split than the backend allows, and
aspect_buckets' table holds a bucket. Each returns a `cache.findings.Finding` (failures with examples) and the figures
it measured."""

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hf_assets.cache.findings import Finding
from hf_assets.cache.tables import load_manifest, load_table, table_paths
from hf_assets.config.schema import BackendConfig
from hf_assets.data.dropped import DROPPED_TABLE
from hf_assets.data.index_writer import INDEX_TABLE
from hf_assets.data.split import RawSplit
from hf_assets.data.subset import REASON as SUBSET_REASON

SPLIT_TABLE = "raw_split"  # what raw_split stores (its files table and manifest); the IO manager's name for it
LISTING_TABLE = "raw_split_listing"  # an image folder's stored listing
BUCKET_TABLE = "aspect_buckets"


def stored_rows(directory: Path, name: str) -> int | None:
    """The row count of stored table `name` from its Parquet footer (no row read); None when it was never written."""
    parquet, manifest = table_paths(directory, name)
    if not manifest.is_file() or not parquet.is_file():
        return None
    return pq.ParquetFile(parquet).metadata.num_rows


def never_stored(asset: str, directory: Path, backend_id: str) -> Finding:
    """The failure of a check whose asset has nothing stored for this backend."""
    finding = Finding()
    finding.add(f"nothing stored at {directory}: materialize {asset} for partition {backend_id} first")
    return finding


def _batches(directory: Path, name: str, column: str):
    """Stored table `name`'s `column`, dictionary-encoded, batch by batch (memory holds one batch); none when the
    table was never written."""
    parquet, manifest = table_paths(directory, name)
    if not manifest.is_file() or not parquet.is_file():
        return
    yield from pq.ParquetFile(parquet, read_dictionary=[column]).iter_batches(columns=[column])


def reason_kind_counts(directory: Path) -> dict[str, int]:
    """Dropped rows per reason kind (a reason's text before ":", as in "corrupt_image: <detail>"), counted on the
    stored drop record's dictionary batch by batch: no string per row is made."""
    counts: dict[str, int] = {}
    for batch in _batches(directory, DROPPED_TABLE, "reason"):
        found = pc.value_counts(batch.column(0).cast(pa.dictionary(pa.int32(), pa.string())))
        values, numbers = found.field("values"), found.field("counts")
        kinds = pc.list_element(pc.split_pattern(values.dictionary.take(values.indices), ":", max_splits=1), 0)
        for kind, n in zip(kinds.to_pylist(), numbers.to_pylist()):
            counts[kind] = counts.get(kind, 0) + n
    return counts


def drop_rate(directory: Path, backend: BackendConfig) -> tuple[Finding, dict]:
    """Fails when filtered_index dropped more than `backend.max_drop_rate` of the split's rows (filters, size,
    corrupt or unreadable rows; rows left out by max_num_samples are a subset asked for, not counted). The examples
    name the rate, the bound and the largest reasons."""
    kept = stored_rows(directory, INDEX_TABLE)
    if kept is None:
        return never_stored("filtered_index", directory, backend.id), {}
    counts = reason_kind_counts(directory)
    subset = counts.pop(SUBSET_REASON, 0)
    dropped = sum(counts.values())
    rows = kept + dropped + subset
    rate = dropped / rows if rows else 0.0
    finding = Finding()
    if rate > backend.max_drop_rate:
        largest = sorted(counts.items(), key=lambda kv: -kv[1])
        finding.add(
            f"dropped {dropped} of {rows} rows ({rate:.1%}), above max_drop_rate {backend.max_drop_rate:g}: "
            "check the filters (filter_func, minimum_image_size) or raise max_drop_rate in this entry"
        )
        for reason, count in largest[:4]:
            finding.add(f"{reason}: {count} rows")
        finding.count = dropped
    figures = {"drop_rate": round(rate, 6), "max_drop_rate": backend.max_drop_rate, "dropped": dropped, "rows": rows}
    return finding, figures


def buckets_not_empty(directory: Path, backend: BackendConfig) -> tuple[Finding, dict]:
    """Fails when aspect_buckets' stored table has no row: every kept sample fell outside the bucket aspects or into
    a bucket dropped as too small (drop_small_buckets with train_batch_size)."""
    rows = stored_rows(directory, BUCKET_TABLE)
    if rows is None:
        return never_stored("aspect_buckets", directory, backend.id), {}
    names: set[str] = set()
    for batch in _batches(directory, BUCKET_TABLE, "bucket"):
        column = batch.column(0)
        names.update(column.dictionary.take(pc.unique(column.indices)).to_pylist())
    buckets = len(names)
    finding = Finding()
    if rows == 0:
        finding.add(
            f"backend '{backend.id}': the bucket table is empty: no kept sample fits a bucket "
            "(check aspect_bucket_rounding / crop settings, or drop_small_buckets with train_batch_size)"
        )
    return finding, {"samples": rows, "buckets": buckets}


def split_current(
    directory: Path,
    backend: BackendConfig,
    open_split: Callable[[BackendConfig], RawSplit],
    run_id: str | None = None,
):
    """Fails when the split raw_split stored no longer matches its source (opened again with `open_split`: the same
    listing the asset makes, no row read): the examples name the files added, removed or changed where the stored
    record tells them, else the two fingerprints. In the run that listed the source (`run_id`) the record is current
    by construction and the source is not listed again: a run lists its source once."""
    stored = load_manifest(directory, SPLIT_TABLE)
    if not stored.get("fingerprint"):
        return never_stored("raw_split", directory, backend.id), {}
    finding = Finding()
    if run_id is not None and stored.get("listed_by_run") == run_id:
        return finding, {"stored_fingerprint": stored["fingerprint"], "listed_in_this_run": True}
    try:
        current = open_split(backend)
    except Exception as exc:  # noqa: BLE001 - a source that cannot be opened is not current; the check says why
        finding.add(f"backend '{backend.id}': the source could not be opened again: {exc}")
        return finding, {"stored_fingerprint": stored["fingerprint"]}
    figures = {"stored_fingerprint": stored["fingerprint"], "current_fingerprint": current.fingerprint}
    if current.fingerprint == stored["fingerprint"]:
        return finding, figures
    changes = _changed_files(directory, stored, current)
    differ = f"{len(changes)} file(s) differ; " if changes else ""
    finding.add(
        f"backend '{backend.id}': the source changed since raw_split was materialized "
        f"({differ}fingerprint {stored['fingerprint']} -> {current.fingerprint}): "
        "materialize raw_split, filtered_index and aspect_buckets for this partition again (job scan_datasets)"
    )
    for change in changes[:4]:
        finding.add(change)
    finding.count = max(1, len(changes))
    return finding, figures


def _changed_files(directory: Path, stored: dict, current: RawSplit) -> list[str]:
    """What differs between the stored record and the source now: an image folder's names added or removed, or the
    Parquet files added, removed or rewritten (another size or identity)."""
    if stored.get("kind") == "image_folder" and current.kind == "image_folder":
        name = current.name_column or "filename"
        try:
            before = set(load_table(directory, LISTING_TABLE).column(name).to_pylist())
        except (FileNotFoundError, KeyError):
            return []
        now = set(current.read([name]).column(name).to_pylist())
        return [f"added {n}" for n in sorted(now - before)] + [f"removed {n}" for n in sorted(before - now)]
    try:
        files = load_table(directory, SPLIT_TABLE).select(["path", "size", "identity"]).to_pylist()
    except (FileNotFoundError, KeyError):
        return []
    before = {f["path"]: (f["size"], f["identity"]) for f in files}
    now = {f.get("path"): (f.get("size"), f.get("identity")) for f in current.files}
    added = [f"added {p}" for p in sorted(set(now) - set(before))]
    removed = [f"removed {p}" for p in sorted(set(before) - set(now))]
    changed = [f"changed {p}" for p in sorted(set(now) & set(before)) if now[p] != before[p]]
    return changed + added + removed
