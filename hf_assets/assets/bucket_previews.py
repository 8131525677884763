"""The pictures of a backend's buckets: the inline histogram aspect_buckets shows, and the `bucket_previews` asset
(a grid of kept and dropped samples and the histogram as PNGs beside the cache), off aspect_buckets' path."""

import hashlib
import json

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hf_assets.assets.metadata import human_size
from hf_assets.assets.retries import retry_only_transient, transient_retry
from hf_assets.cache.atomic import atomic_write_bytes
from hf_assets.cache.tables import TableFile, load_manifest, open_table_file
from hf_assets.config import BackendConfig
from hf_assets.data.buckets import bucket_histogram, bucket_histogram_png
from hf_assets.data.dropped import DROPPED_SCHEMA, DROPPED_TABLE
from hf_assets.data.preview_rows import choose_preview_rows, preview_budget, preview_sources
from hf_assets.data.sources import RawSplit
from hf_assets.encode import bucket_drawing
from hf_assets.progress import ProgressLog, quiet
from hf_assets.resources.dataloader_config import DataloaderConfigResource
from hf_assets.resources.io_manager import AS_FILE

HISTOGRAM_FILE = "aspect_buckets.png"
GRID_FILE = "previews.png"
GRID_JPEG = "previews.jpg"  # the same grid, lighter, for the event log
GRID_KEY = "previews.key"  # what the grid shows (rows, records, split version): a rerun showing the same reuses it


def histogram_metadata(labels: dict[str, str], histogram: list[tuple[str, int]]) -> dict:
    """The histogram as a small inline SVG (drawn in place by the UI) and a table of samples per bucket; `labels`:
    each bucket's "aspect · WxH" (`bucket_drawing.bucket_labels`)."""
    counts = [
        dg.TableRecord({"bucket": bucket, "target": labels.get(bucket, bucket).split(" · ", 1)[-1], "samples": count})
        for bucket, count in histogram
    ]
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("bucket", "string"),
            dg.TableColumn("target", "string"),
            dg.TableColumn("samples", "int"),
        ]
    )
    return {
        "histogram": dg.MetadataValue.md(
            bucket_drawing.svg_markdown(bucket_drawing.histogram_svg(histogram, labels), "samples per bucket")
        ),
        "samples_per_bucket": dg.MetadataValue.table(counts, schema) if counts else dg.MetadataValue.text("none"),
    }


def histogram_png_metadata(backend: BackendConfig, table: pa.Table) -> dict:
    """The histogram drawn as a PNG, in the metadata and beside the cache (`table`: bucket and target size columns)."""
    labels = bucket_drawing.bucket_labels(table)
    labelled = [(labels.get(b, b).replace(" · ", "\n"), n) for b, n in bucket_histogram(table)]
    png = bucket_histogram_png(labelled, f"{backend.id}: samples per aspect bucket (aspect, target size)")
    backend.metadata_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(backend.metadata_dir / HISTOGRAM_FILE, png)
    return {
        "histogram_png": dg.MetadataValue.md(bucket_drawing.png_data_markdown(png, "samples per bucket")),
        "histogram_file": dg.MetadataValue.path(str(backend.metadata_dir / HISTOGRAM_FILE)),
    }


def grid_metadata(
    context,
    backend: BackendConfig,
    buckets: TableFile,
    table: pa.Table,
    split: RawSplit,
    progress: ProgressLog | None = None,
) -> dict:
    """A grid of kept samples as they will be encoded and of dropped rows with their reasons (PNG beside the cache);
    their images are fetched within `preview_budget` bytes, only the pages that hold them. `table`: the bucket
    table's row, bucket and target size columns; the chosen rows' other columns are read from `buckets`;
    `progress` logs the fetch and the drawing while they run."""
    progress = progress or quiet()
    if backend.dataset_type != "image":
        return {}
    if backend.conditioning.is_conditioning:  # aspect_buckets draws its source and conditioning pairs
        return {"preview_grid": dg.MetadataValue.text("source and conditioning pairs: see aspect_buckets")}
    built_from = load_manifest(backend.metadata_dir, "filtered_index").get("source_fingerprint")
    if built_from != split.fingerprint:  # its row numbers index another version of the split: no honest picture
        return {
            "preview_grid": dg.MetadataValue.text(
                "not drawn: the dataset changed since filtered_index was built; run scan_datasets for this partition"
            )
        }
    dropped = open_table_file(backend.metadata_dir, DROPPED_TABLE)
    lost_rows = pq.read_table(dropped.path, columns=["row", "reason"], read_dictionary=["reason"])
    reasons = lost_rows.column("reason").combine_chunks()  # a reason's kind is its text before ":"
    kinds = pc.dictionary_encode(pc.list_element(pc.split_pattern(reasons.dictionary, ":", max_splits=1), 0))
    kinds = pa.DictionaryArray.from_arrays(kinds.indices.take(reasons.indices), kinds.dictionary)
    budget = preview_budget(split, backend.image_column, table.column("row").to_numpy())
    choice = choose_preview_rows(
        split,
        backend.image_column,
        (table.column("row").to_numpy(), table.column("bucket").combine_chunks()),
        (lost_rows.column("row").to_numpy(), kinds),
        budget=budget,
    )
    rows = [row for row, _ in choice.kept + choice.dropped]
    kept_rows = [row for row, _ in choice.kept]
    found = (
        pq.read_table(buckets.path, filters=[("row", "in", kept_rows)]) if kept_rows else buckets.schema.empty_table()
    )
    chosen = _rows_of(found, kept_rows)
    lost_chosen = [row for row, _ in choice.dropped]
    found = (
        pq.read_table(dropped.path, filters=[("row", "in", lost_chosen)])
        if lost_chosen
        else DROPPED_SCHEMA.empty_table()
    )
    lost = _rows_of(found, lost_chosen)
    labels = bucket_drawing.bucket_labels(table)
    key = _grid_key(split.fingerprint, chosen, lost, labels)
    reused = _reused_grid(backend, key)
    if reused is not None:  # the same rows of the same files, drawn the same way: no image fetched again
        png, jpeg = reused
        return _grid_result(backend, png, jpeg, choice, 0, budget, reused=True)
    with progress.waiting(f"{backend.id}: fetching {len(rows)} preview images"):  # remote pages can be slow
        sources, fetched = preview_sources(split, backend.image_column, rows)
    try:
        with progress.waiting(f"{backend.id}: drawing the preview grid"):
            kept = list(bucket_drawing.kept_samples(chosen, sources[: chosen.num_rows], labels))
            filenames, reasons = lost.column("filename").to_pylist(), lost.column("reason").to_pylist()
            gone = list(bucket_drawing.dropped_samples(filenames, reasons, sources[chosen.num_rows :]))
            title = f"{backend.id}: kept samples as they will be encoded; dropped rows with their reason"
            png = bucket_drawing.preview_grid_png(kept, gone, title)
            jpeg = bucket_drawing.preview_grid_png(kept, gone, title, image_format="jpeg")  # lighter, for the event log
    except Exception as exc:  # noqa: BLE001 - a picture must never fail the step
        context.log.warning(f"{backend.id}: no preview grid ({type(exc).__name__}: {exc})")
        return {}
    atomic_write_bytes(backend.metadata_dir / GRID_FILE, png)
    atomic_write_bytes(backend.metadata_dir / GRID_JPEG, jpeg)
    atomic_write_bytes(backend.metadata_dir / GRID_KEY, key.encode())  # last: it vouches for the two pictures
    return _grid_result(backend, png, jpeg, choice, fetched, budget, reused=False)


def _grid_key(fingerprint: str, chosen: pa.Table, lost: pa.Table, labels: dict) -> str:
    """What a grid shows: the split's version, the chosen rows' records (bucket, crop, reason) and the labels."""
    described = json.dumps([fingerprint, chosen.to_pylist(), lost.to_pylist(), labels], sort_keys=True, default=str)
    return hashlib.sha256(described.encode()).hexdigest()


def _reused_grid(backend: BackendConfig, key: str) -> tuple[bytes, bytes] | None:
    """The pictures of the last grid when it showed exactly this (same key), else None."""
    folder = backend.metadata_dir
    try:
        if (folder / GRID_KEY).read_text() == key:
            return (folder / GRID_FILE).read_bytes(), (folder / GRID_JPEG).read_bytes()
    except OSError:
        pass
    return None


def _grid_result(backend: BackendConfig, png: bytes, jpeg: bytes, choice, fetched: int, budget: int, reused: bool):
    skipped = ", ".join(sorted(set(choice.skipped))) or "none"
    note = " (unchanged since the last run: the grid is reused)" if reused else ""
    return {
        "preview_grid": dg.MetadataValue.md(bucket_drawing.jpeg_data_markdown(jpeg, "preview grid")),
        "preview_grid_file": dg.MetadataValue.path(str(backend.metadata_dir / GRID_FILE)),
        "preview_bytes_fetched": fetched,
        "preview_budget_bytes": budget,
        "preview_fetched": f"{human_size(fetched)} of {human_size(budget)}{note}",
        "preview_not_shown": dg.MetadataValue.text(f"no row within the budget for: {skipped}"),
    }


def read_bucket_columns(path) -> pa.Table:
    """The bucket table's row, bucket and target size columns, `bucket` dictionary-encoded with one dictionary: a
    table written in pieces has a dictionary per row group, which Arrow's group_by cannot combine."""
    columns = ["row", "bucket", "target_width", "target_height"]
    return pq.read_table(path, columns=columns, read_dictionary=["bucket"]).unify_dictionaries()


def _rows_of(table: pa.Table, rows: list[int]) -> pa.Table:
    """The records of `table` whose `row` is each of `rows`, in that order."""
    positions = pc.index_in(pa.array(rows, pa.int64()), value_set=table.column("row").combine_chunks())
    return table.take(positions)


def build_bucket_previews_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `bucket_previews` asset over the given backend partitions."""

    @dg.asset(
        name="bucket_previews",
        partitions_def=partitions,
        group_name="metadata",
        kinds={"png"},
        retry_policy=transient_retry(),
        ins={"aspect_buckets": dg.AssetIn("aspect_buckets", metadata=AS_FILE)},
    )
    @retry_only_transient
    def bucket_previews(
        context: dg.AssetExecutionContext,
        dataloader_config: DataloaderConfigResource,
        aspect_buckets: TableFile,
        raw_split: RawSplit,
    ) -> dg.MaterializeResult:
        """A grid of kept samples as encoded and dropped rows with their reason, and the bucket histogram, as PNGs;
        fetches at most 8 MB of images per partition, only the pages that hold the rows shown."""
        backend, progress = dataloader_config.backend(context.partition_key), ProgressLog(context.log.info)
        table = read_bucket_columns(aspect_buckets.path)
        with progress.waiting(f"{backend.id}: drawing the bucket histogram"):
            histogram = histogram_png_metadata(backend, table)
        grid = grid_metadata(context, backend, aspect_buckets, table, raw_split, progress)
        return dg.MaterializeResult(metadata={**histogram, **grid})

    return bucket_previews
