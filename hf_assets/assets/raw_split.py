import dagster as dg

from hf_assets.assets.metadata import column_schema, human_size
from hf_assets.assets.retries import retry_only_transient, transient_retry
from hf_assets.data.sources import open_split
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource


def column_roles(backend) -> dict[str, str]:
    """The split's columns the backend's config names: top-level column -> the config key naming it."""
    captions = backend.captions
    named = {
        "image_column": [backend.image_column],
        "caption_column": list(captions.columns),
        "fallback_caption_column": [captions.fallback_column],
        "description_column": [captions.description_column],
        "width_column": [backend.width_column],
        "height_column": [backend.height_column],
    }
    return {column.split(".")[0]: key for key, columns in named.items() for column in columns if column}


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
    def raw_split(context: dg.AssetExecutionContext, dataloader_config: DataloaderConfigResource) -> dg.Output:
        """The backend's split as a list of files (identity, row count); no row is read, no image decoded."""
        backend = dataloader_config.backend(context.partition_key)
        with ProgressLog(context.log.info).waiting(f"{backend.id}: listing the split"):  # remote listings take long
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
                "file_size": human_size(sum(sizes) if sizes else None),
                "dagster/row_count": split.num_rows,
                "dagster/column_schema": column_schema(split.schema, column_roles(backend)),
                # The record the IO manager stores: the files table, its manifest beside it.
                "path": dg.MetadataValue.path(str(backend.metadata_dir / "raw_split.parquet")),
                "config_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in backend.warnings) or "none"),
            },
        )

    return raw_split
