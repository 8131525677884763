import dagster as dg

from hf_assets.assets.metadata import column_schema, counts_table, preview
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import RawSplit
from hf_assets.resources.dataloader import DataloaderConfigResource


def build_filtered_index_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `filtered_index` asset over the given backend partitions."""

    @dg.asset(name="filtered_index", partitions_def=partitions, group_name="metadata", kinds={"arrow", "parquet"})
    def filtered_index(
        context: dg.AssetExecutionContext, dataloader: DataloaderConfigResource, raw_split: RawSplit
    ) -> dg.Output:
        """Kept samples with their file name, captions and effective size; dropped rows counted by reason."""
        backend = dataloader.backend(context.partition_key)
        index, dropped = build_filtered_index(raw_split, backend)
        total_dropped = sum(dropped.values())
        context.log.info(f"{backend.id}: kept {index.num_rows} of {raw_split.num_rows}; dropped {dropped}")
        return dg.Output(
            index,
            metadata={
                "kept": index.num_rows,
                "dropped": total_dropped,
                "dropped_by_reason": counts_table(dropped),
                "dagster/row_count": index.num_rows,
                "dagster/column_schema": column_schema(index.schema),
                "preview": preview(index, ["filename", "caption", "width", "height"]),
                "path": dg.MetadataValue.path(str(backend.metadata_dir / "filtered_index.parquet")),
            },
        )

    return filtered_index
