import dagster as dg
import pyarrow as pa

from hf_assets.assets.metadata import column_schema, counts_table, png_markdown
from hf_assets.assets.retries import TRANSIENT_RETRY, retry_only_transient
from hf_assets.cache.atomic import atomic_write_bytes
from hf_assets.data.buckets import assign_buckets, bucket_histogram, bucket_histogram_png, drop_small_buckets, small_buckets
from hf_assets.data.video_frames import assign_frames
from hf_assets.resources.dataloader import DataloaderConfigResource


def build_aspect_buckets(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `aspect_buckets` asset over the given backend partitions."""

    @dg.asset(name="aspect_buckets", partitions_def=partitions, group_name="metadata", kinds={"arrow", "parquet"},
              retry_policy=TRANSIENT_RETRY)
    @retry_only_transient
    def aspect_buckets(
        context: dg.AssetExecutionContext, dataloader: DataloaderConfigResource, filtered_index: pa.Table
    ) -> dg.Output:
        """Each sample's aspect bucket, target size, resize size and crop box (deterministic per backend and file)."""
        backend = dataloader.backend(context.partition_key)
        cfg = backend.buckets
        table = assign_buckets(filtered_index, cfg, backend.id, seed_by_filename=backend.type == "local")
        if backend.dataset_type == "video":
            table = assign_frames(table, backend.video)
        undersized = small_buckets(table, cfg.train_batch_size) if cfg.train_batch_size else {}
        if undersized:
            action = "dropped (drop_small_buckets: true)" if cfg.drop_small_buckets else "kept; set drop_small_buckets to drop"
            context.log.warning(
                f"{backend.id}: {len(undersized)} bucket(s) hold fewer than train_batch_size="
                f"{cfg.train_batch_size} samples: {undersized}; {action}"
            )
            if cfg.drop_small_buckets:
                table = drop_small_buckets(table, cfg.train_batch_size)
        histogram = bucket_histogram(table)
        png = bucket_histogram_png(histogram, f"{backend.id}: samples per aspect bucket")
        backend.metadata_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(backend.metadata_dir / "aspect_buckets.png", png)
        return dg.Output(
            table,
            metadata={
                "samples": table.num_rows,
                "buckets": len(histogram),
                "histogram": png_markdown(png, "bucket histogram"),
                "samples_per_bucket": counts_table(dict(histogram), "bucket", "samples"),
                "small_buckets": counts_table(undersized, "bucket", "samples"),
                "dagster/row_count": table.num_rows,
                "dagster/column_schema": column_schema(table.schema),
            },
        )

    return aspect_buckets
