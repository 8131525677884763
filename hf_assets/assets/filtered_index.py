import dagster as dg

from hf_assets.assets.metadata import column_schema, counts_table, preview
from hf_assets.assets.retries import retry_only_transient, transient_retry
from hf_assets.data.columns import ColumnTypeError, MissingColumn
from hf_assets.data.index_writer import discard, publish, write_filtered_index
from hf_assets.data.scan_cache import scan_cache_for
from hf_assets.data.split import RawSplit
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource


def build_filtered_index_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `filtered_index` asset over the given backend partitions."""

    @dg.asset(
        name="filtered_index",
        partitions_def=partitions,
        group_name="metadata",
        kinds={"arrow", "parquet"},
        retry_policy=transient_retry(),
    )
    @retry_only_transient
    def filtered_index(
        context: dg.AssetExecutionContext, dataloader_config: DataloaderConfigResource, raw_split: RawSplit
    ) -> dg.Output:
        """Kept samples with their file name, captions and effective size; dropped rows counted by reason (written
        piece by piece: memory holds one scanned batch)."""
        backend = dataloader_config.backend(context.partition_key)
        if raw_split.num_rows == 0:
            raise dg.Failure(
                f"backend '{backend.id}': the split is empty (0 rows in {raw_split.source}); "
                "check dataset_name, split and instance_data_dir"
            )
        progress = ProgressLog(context.log.info)
        cache = scan_cache_for(raw_split, backend)
        directory = backend.metadata_dir
        try:
            written = write_filtered_index(raw_split, backend, directory, cache, progress)
        except MissingColumn as exc:
            raise MissingColumn(f"backend '{backend.id}': {exc}", exc.path) from None
        except ColumnTypeError as exc:
            raise exc.in_backend(backend.id, getattr(backend, exc.setting, None) if exc.setting else None) from None
        cache.prune()
        dropped = written.counts
        kept = written.staged.num_rows
        context.log.info(f"{backend.id}: scanned {cache.read} piece(s), reused {cache.reused} from {cache.directory}")
        context.log.info(f"{backend.id}: kept {kept} of {raw_split.num_rows}; dropped {dropped}")
        if kept == 0:
            # Never hand an empty index downstream: the encoders would prune their caches to nothing.
            discard(directory)
            by_reason = ", ".join(f"{reason} {count}" for reason, count in dropped.items() if count)
            raise dg.Failure(
                f"backend '{backend.id}': all {raw_split.num_rows} rows were dropped: {by_reason}; "
                "check filter_func / minimum_image_size",
                metadata={"dropped_by_reason": counts_table(dropped)},
            )
        index = publish(directory)
        head = next(index.batches(["filename", "caption", "width", "height"], rows=5))
        return dg.Output(
            index,
            metadata={
                "kept": kept,
                "pieces_scanned": cache.read,
                "pieces_reused": cache.reused,
                "dropped": written.dropped.num_rows,
                "dropped_by_reason": counts_table(dropped),
                **progress.metadata(),
                "dropped_rows": dg.MetadataValue.path(str(written.dropped.path)),
                "dagster/row_count": kept,
                "dagster/column_schema": column_schema(index.schema),
                "preview": preview(head, ["filename", "caption", "width", "height"]),
                "path": dg.MetadataValue.path(str(index.path)),
                # The split these row numbers index, also in filtered_index.json and the table's schema metadata.
                "source_fingerprint": raw_split.fingerprint,
            },
        )

    return filtered_index
