"""Open a backend's split through one source interface: Parquet read by columns, else `datasets`, else a folder."""

from hf_assets.config.schema import BackendConfig
from hf_assets.data.columns import MissingColumn, available_columns, resolve_column
from hf_assets.data.datasets_source import open_datasets_split
from hf_assets.data.local_folder import scan_image_folder
from hf_assets.data.parquet_source import open_parquet_split
from hf_assets.data.s3_folder import scan_s3_folder
from hf_assets.data.split import IMAGE_EXTENSIONS, IMAGE_STRUCT, DatasetNotFound, RawSplit

__all__ = ["IMAGE_EXTENSIONS", "IMAGE_STRUCT", "DatasetNotFound", "RawSplit", "open_split", "require_columns"]


def open_split(backend: BackendConfig) -> RawSplit:
    """The backend's split, its rows unread: Parquet files (local, Hub, any fsspec URL), a `datasets` layout, or
    an image folder (local, or in an S3 bucket). `split.kind` says which path was taken."""
    if backend.type == "local":
        split = scan_image_folder(backend)
    elif backend.type == "aws":
        split = scan_s3_folder(backend)
    else:
        split = open_parquet_split(backend) or open_datasets_split(backend)
    require_columns(split, backend)
    return split


def require_columns(split: RawSplit, backend: BackendConfig) -> None:
    """Fail early, listing what exists, when a configured column is absent."""
    captions = split.captions or backend.captions
    columns_read = captions.strategy == "huggingface" and not captions.uses_instance_prompt_only
    wanted = {
        "image_column": [split.image_column],
        "caption_column": list(captions.columns) if columns_read else [],
        "fallback_caption_column": [captions.fallback_column if columns_read else None],
        "description_column": [captions.description_column if columns_read else None],
        "width_column": [backend.width_column],
        "height_column": [backend.height_column],
        "num_frames_column": [backend.num_frames_column],
        "fps_column": [backend.fps_column],
        "filter_func.collection_column": [backend.filters.collection_column if backend.filters.collection else None],
        "filter_func.quality_column": [backend.filters.quality_column if backend.filters.quality_thresholds else None],
    }
    empty = split.schema.empty_table()
    for key, columns in wanted.items():
        for column in columns:
            if not column:
                continue
            try:
                resolve_column(empty, column)
            except MissingColumn:
                raise MissingColumn(
                    f"backend '{backend.id}': {key} '{column}' is not a column of {split.source}; "
                    f"available: {', '.join(sorted(available_columns(split.schema)))}"
                ) from None
