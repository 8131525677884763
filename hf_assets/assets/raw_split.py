import dagster as dg

from hf_assets.assets.metadata import column_schema
from hf_assets.assets.retries import retry_only_transient, transient_retry
from hf_assets.data.sources import open_split
from hf_assets.resources.dataloader import DataloaderConfigResource


def build_raw_split_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The `raw_split` asset over the given backend partitions."""

    @dg.asset(
        name="raw_split",
        partitions_def=partitions,
        group_name="metadata",
        kinds={"huggingface", "parquet"},
        retry_policy=transient_retry(),
    )
    @retry_only_transient
    def raw_split(context: dg.AssetExecutionContext, dataloader: DataloaderConfigResource) -> dg.Output:
        """The backend's split as a list of files (identity, row count); no row is read, no image decoded."""
        backend = dataloader.backend(context.partition_key)
        split = open_split(backend)
        files = split.files
        context.log.info(
            f"{backend.id}: {split.num_rows} rows in {len(files)} piece(s) from {split.source} via {split.kind}"
        )
        sizes = [f["size"] for f in files if f.get("size") is not None]
        for warning in backend.warnings:  # config keys accepted but not used
            context.log.warning(f"{backend.id}: {warning}")
        return dg.Output(
            split,
            metadata={
                "dataset": split.source,
                "split": backend.split,
                "read_as": split.kind,
                "revision": split.revision or "(default)",
                "fingerprint": split.fingerprint,
                "rows": split.num_rows,
                "files": len(files),
                "file_bytes": sum(sizes) if sizes else dg.MetadataValue.null(),
                "dagster/row_count": split.num_rows,
                "dagster/column_schema": column_schema(split.schema),
                "config_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in backend.warnings) or "none"),
            },
        )

    return raw_split
