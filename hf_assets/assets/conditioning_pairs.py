"""The `aspect_buckets` of a conditioning partition: its samples paired with its source's, both sides' losses
recorded, and a preview of each source crop beside its conditioning image."""

import dagster as dg
import pyarrow as pa

from hf_assets.assets.bucket_previews import GRID_FILE, histogram_metadata
from hf_assets.assets.metadata import column_schema, counts_table
from hf_assets.cache.atomic import atomic_write_bytes
from hf_assets.cache.tables import load_table, save_table
from hf_assets.config import BackendConfig, DataloaderConfig
from hf_assets.data.buckets import bucket_histogram
from hf_assets.data.conditioning_buckets import pair_buckets, stale_source_rows
from hf_assets.data.split import RawSplit
from hf_assets.encode import bucket_drawing

DROPPED_PAIRS = "dropped_pairs"  # dropped_pairs.parquet beside the table: side, row, filename, reason


def paired_output(
    context: dg.AssetExecutionContext,
    config: DataloaderConfig,
    backend: BackendConfig,
    index: pa.Table,
    indexes: dict[str, pa.Table],
    split: RawSplit,
) -> dg.Output:
    """The conditioning partition's bucket table, with its pairing in the metadata."""
    pairing = backend.conditioning
    source = config.backend(pairing.source)
    paired = pair_buckets(
        index,
        backend,
        indexes[source.id],
        source,
        generated=pairing.generator is not None,
        strict=pairing.strict,
        captions=pairing.captions,
    )
    if (source.metadata_dir / "aspect_buckets.parquet").is_file():
        stale = stale_source_rows(paired.source_table, load_table(source.metadata_dir, "aspect_buckets"))
        if stale:
            raise dg.Failure(
                f"backend '{backend.id}': the stored aspect_buckets of its source '{source.id}' was built from "
                f"another config or index ({len(stale)} sample(s) differ, e.g. {stale[:3]}); materialize "
                f"aspect_buckets and vae_latents of '{source.id}' first, so the pairs stay aligned",
                allow_retries=False,
            )
    else:
        context.log.warning(
            f"{backend.id}: its source '{source.id}' has no aspect_buckets yet; the pairs use the table it will get "
            "from the same index and config"
        )
    lost = _dropped_pairs(paired.dropped, paired.source_dropped)
    save_table(backend.metadata_dir, DROPPED_PAIRS, lost, {"description": "samples of either side left unpaired"})
    table = paired.table
    if table.num_rows == 0:
        raise dg.Failure(
            f"backend '{backend.id}': no sample pairs with its source '{source.id}' "
            f"({lost.num_rows} unpaired, see {backend.metadata_dir / (DROPPED_PAIRS + '.parquet')}); conditioning "
            "images pair by file name (the same path relative to each dataset's root)",
            allow_retries=False,
        )
    reasons = {}
    for side, reason in zip(lost.column("side").to_pylist(), lost.column("reason").to_pylist()):
        key = f"{side}: {reason.split(':')[0]}"
        reasons[key] = reasons.get(key, 0) + 1
    context.log.info(f"{backend.id}: {table.num_rows} pairs with '{source.id}'; unpaired: {reasons or 'none'}")
    histogram = bucket_histogram(table)
    return dg.Output(
        table,
        metadata={
            "samples": table.num_rows,
            "source": source.id,
            "conditioning_type": pairing.type,
            "generator": pairing.generator.kind if pairing.generator else "given",
            "buckets": len(histogram),
            **histogram_metadata(bucket_drawing.bucket_labels(table), histogram),
            **_pair_grid(context, backend, source, table, paired.source_table, split),
            "unpaired_by_reason": counts_table(reasons),
            "unpaired_rows": dg.MetadataValue.path(str(backend.metadata_dir / (DROPPED_PAIRS + ".parquet"))),
            "dagster/row_count": table.num_rows,
            "dagster/column_schema": column_schema(table.schema),
        },
    )


def _dropped_pairs(dropped: pa.Table, source_dropped: pa.Table) -> pa.Table:
    sides = ["conditioning"] * dropped.num_rows + ["source"] * source_dropped.num_rows
    both = pa.concat_tables([dropped, source_dropped])
    return both.add_column(0, "side", pa.array(sides, pa.string()))


def _pair_grid(context, backend: BackendConfig, source: BackendConfig, table, source_table, split) -> dict:
    """Each source crop beside its conditioning image (PNG beside the cache); never fails the table."""
    from hf_assets.data.sources import open_split
    from hf_assets.encode.conditioning_pixels import ConditioningPixels
    from hf_assets.encode.pair_previews import paired_samples

    pairing = backend.conditioning
    try:
        pixels = ConditioningPixels(pairing.type, pairing.generator, source.id)
        generated = pairing.generator is not None
        source_split = split if generated else open_split(source)
        tiles = list(
            paired_samples(
                table,
                source_table,
                source_split,
                source.image_column,
                pixels,
                None if generated else split,
                None if generated else backend.image_column,
            )
        )
        title = f"{backend.id}: each sample of '{source.id}' as encoded, beside its {pairing.type} image"
        png = bucket_drawing.preview_grid_png(tiles, [], title)
        jpeg = bucket_drawing.preview_grid_png(tiles, [], title, image_format="jpeg")
    except Exception as exc:  # noqa: BLE001 - a preview must never fail the bucket table
        context.log.warning(f"{backend.id}: no preview grid ({type(exc).__name__}: {exc})")
        return {}
    atomic_write_bytes(backend.metadata_dir / GRID_FILE, png)
    return {
        "preview_grid": dg.MetadataValue.md(bucket_drawing.jpeg_data_markdown(jpeg, "source and conditioning")),
        "preview_grid_file": dg.MetadataValue.path(str(backend.metadata_dir / GRID_FILE)),
    }
