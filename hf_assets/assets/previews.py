"""The pictures of `aspect_buckets` as Dagster metadata: an inline histogram, a preview grid, PNGs beside the cache."""

import dagster as dg
import pyarrow as pa

from hf_assets.cache.atomic import atomic_write_bytes
from hf_assets.cache.tables import load_manifest
from hf_assets.config import BackendConfig
from hf_assets.data.buckets import bucket_histogram_png
from hf_assets.data.sources import RawSplit
from hf_assets.encode import previews

HISTOGRAM_FILE = "aspect_buckets.png"
GRID_FILE = "previews.png"


def histogram_metadata(backend: BackendConfig, table: pa.Table, histogram: list[tuple[str, int]]) -> dict:
    """The histogram inline when it is small enough for the UI to draw in place (else behind a click), and its PNG."""
    labels = previews.bucket_labels(table)
    labelled = [(labels.get(bucket, bucket).replace(" · ", "\n"), count) for bucket, count in histogram]
    png = bucket_histogram_png(labelled, f"{backend.id}: samples per aspect bucket (aspect, target size)")
    backend.metadata_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(backend.metadata_dir / HISTOGRAM_FILE, png)
    inline = previews.svg_markdown(previews.histogram_svg(histogram, labels), "samples per bucket")
    if len(inline) >= previews.INLINE_LIMIT:
        inline = previews.png_data_markdown(png, "samples per bucket")
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
        "histogram": dg.MetadataValue.md(inline),
        "histogram_png": dg.MetadataValue.md(previews.png_data_markdown(png, "samples per bucket")),
        "histogram_file": dg.MetadataValue.path(str(backend.metadata_dir / HISTOGRAM_FILE)),
        "samples_per_bucket": dg.MetadataValue.table(counts, schema) if counts else dg.MetadataValue.text("none"),
    }


def grid_metadata(
    context: dg.AssetExecutionContext,
    backend: BackendConfig,
    table: pa.Table,
    filtered_index: pa.Table,
    split: RawSplit,
) -> dict:
    """A grid of kept samples as they will be encoded and of dropped rows with their reasons (PNG beside the cache)."""
    if backend.dataset_type != "image":
        return {}
    built_from = load_manifest(backend.metadata_dir, "filtered_index").get("source_fingerprint")
    if built_from != split.fingerprint:  # its row numbers index another version of the split: no honest picture
        return {
            "preview_grid": dg.MetadataValue.text(
                "not drawn: the dataset changed since filtered_index was built; run scan_datasets for this partition"
            )
        }
    try:
        kept = list(previews.kept_samples(table, split, backend.image_column))
        dropped = list(previews.dropped_samples(split, backend, previews.kept_rows_of(filtered_index)))
        title = f"{backend.id}: kept samples as they will be encoded; dropped rows with their reason"
        png = previews.preview_grid_png(kept, dropped, title)
        jpeg = previews.preview_grid_png(kept, dropped, title, image_format="jpeg")  # a lighter copy for the event log
    except Exception as exc:  # noqa: BLE001 - a preview must never fail the bucket table
        context.log.warning(f"{backend.id}: no preview grid ({type(exc).__name__}: {exc})")
        return {}
    atomic_write_bytes(backend.metadata_dir / GRID_FILE, png)
    return {
        "preview_grid": dg.MetadataValue.md(previews.jpeg_data_markdown(jpeg, "preview grid")),
        "preview_grid_file": dg.MetadataValue.path(str(backend.metadata_dir / GRID_FILE)),
    }
