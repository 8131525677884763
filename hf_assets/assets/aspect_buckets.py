from collections.abc import Mapping

import dagster as dg

from hf_assets.assets.bucket_previews import histogram_metadata
from hf_assets.assets.conditioning_pairs import paired_output
from hf_assets.assets.metadata import column_schema, counts_table
from hf_assets.assets.retries import retry_only_transient, transient_retry
from hf_assets.data.backend_buckets import write_backend_buckets
from hf_assets.data.split import RawSplit
from hf_assets.encode.bucket_drawing import bucket_labels_of
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource
from hf_assets.resources.io_manager import AS_FILE


def conditioning_sources(config) -> dict[str, str]:
    """Each conditioning partition's source partition (a `DataloaderConfig`'s resolved pairs)."""
    return {b.id: b.conditioning.source for b in config.backends if b.conditioning.is_conditioning}


def build_aspect_buckets_asset(
    partitions: dg.PartitionsDefinition, sources: Mapping[str, str] | None = None
) -> dg.AssetsDefinition:
    """The `aspect_buckets` asset over the given backend partitions; a conditioning partition (a key of `sources`)
    also reads its source partition's filtered index, to pair with the source's bucket table."""
    # The index arrives unread (a TableFile): it is bucketed batch by batch, never held whole.
    ins = {"filtered_index": dg.AssetIn("filtered_index", metadata=AS_FILE)}
    if sources:  # Dagster refuses an asset that reads other partitions of itself: the source's index, rebuilt
        mapping = {u: {u} | {d for d, s in sources.items() if s == u} for u in partitions.get_partition_keys()}
        partition_mapping = dg.StaticPartitionMapping(mapping)
        ins["filtered_index"] = dg.AssetIn("filtered_index", partition_mapping=partition_mapping, metadata=AS_FILE)

    @dg.asset(
        name="aspect_buckets",
        partitions_def=partitions,
        group_name="metadata",
        kinds={"arrow", "parquet"},
        retry_policy=transient_retry(),
        ins=ins,
    )
    @retry_only_transient
    def aspect_buckets(
        context: dg.AssetExecutionContext,
        dataloader_config: DataloaderConfigResource,
        filtered_index,
        raw_split: RawSplit,
    ) -> dg.Output:
        """Each sample's aspect bucket, target size, resize size and crop box (deterministic per backend and file);
        a conditioning dataset's are its source sample's (strict) or its own (loose), paired by sample."""
        backend = dataloader_config.backend(context.partition_key)
        if isinstance(filtered_index, dict):  # this partition's index and its source's
            indexes, filtered_index = filtered_index, filtered_index[backend.id]
        else:
            indexes = {backend.id: filtered_index}
        progress = ProgressLog(context.log.info)
        if backend.conditioning.is_conditioning:
            with progress.waiting(f"{backend.id}: pairing with its source's buckets"):
                tables = {key: index.read() for key, index in indexes.items()}
                return paired_output(
                    context, dataloader_config.config(), backend, tables[backend.id], tables, raw_split
                )
        cfg = backend.buckets
        written = write_backend_buckets(filtered_index, backend, backend.metadata_dir, "aspect_buckets", progress)
        aspect_dropped, undersized = written.counts.aspect_dropped, written.undersized
        if any(aspect_dropped.values()):
            context.log.info(f"{backend.id}: dropped by bucket aspect ratio: {aspect_dropped}")
        if undersized:
            action = (
                "dropped (drop_small_buckets: true)"
                if written.small_dropped
                else "kept; set drop_small_buckets to drop"
            )
            context.log.warning(
                f"{backend.id}: {len(undersized)} bucket(s) hold fewer than train_batch_size="
                f"{cfg.train_batch_size} samples: {undersized}; {action}"
            )
        histogram = written.histogram
        return dg.Output(
            written.file,
            metadata={
                "samples": written.file.num_rows,
                "buckets": len(histogram),
                **histogram_metadata(bucket_labels_of(written.sizes), histogram),
                "small_buckets": counts_table(undersized, "bucket", "samples"),
                "dropped_by_reason": counts_table(aspect_dropped),
                **progress.metadata(),
                "dagster/row_count": written.file.num_rows,
                "dagster/column_schema": column_schema(written.file.schema),
                "path": dg.MetadataValue.path(str(written.file.path)),
            },
        )

    return aspect_buckets
