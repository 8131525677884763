"""Build the filtered index of a split: one row per kept sample with captions and effective size."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BackendConfig, CaptionConfig
from hf_assets.data.captions import extract_captions, first_caption
from hf_assets.data.columns import resolve_column
from hf_assets.data.composite import tile_boxes
from hf_assets.data.dropped import DropCounts, dropped_rows
from hf_assets.data.filters import count_reasons, drop_reasons
from hf_assets.data.sizes import image_sizes
from hf_assets.data.sources import RawSplit
from hf_assets.data.video_index import video_columns, video_drop_reasons
from hf_assets.progress import ProgressLog

INDEX_SCHEMA = pa.schema(
    [
        ("filename", pa.string()),
        ("row", pa.int64()),
        ("caption", pa.string()),
        ("captions", pa.list_(pa.string())),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("source_width", pa.int32()),
        ("source_height", pa.int32()),
        ("tile_left", pa.int32()),
        ("tile_top", pa.int32()),
        ("tile_right", pa.int32()),
        ("tile_bottom", pa.int32()),
    ]
)


def virtual_filenames(rows: pa.Array, extension: str) -> pa.Array:
    """The reference's virtual names: row i of the loaded split is "{i}.jpg" (or .mp4)."""
    return pc.binary_join_element_wise(pc.cast(rows, pa.string()), pa.scalar("." + extension), pa.scalar(""))


def source_sizes(split: RawSplit, backend: BackendConfig,
                 progress: ProgressLog | None = None) -> tuple[pa.Array, pa.Array]:
    """Displayed (EXIF-oriented) width and height of every row: from size columns, else image headers."""
    table = split.table
    if backend.width_column and backend.height_column:
        widths = pc.cast(resolve_column(table, backend.width_column), pa.int32())
        heights = pc.cast(resolve_column(table, backend.height_column), pa.int32())
        return widths.combine_chunks(), heights.combine_chunks()
    return image_sizes(table.column(backend.image_column), base_dir=split.base_dir, progress=progress)


def build_filtered_index(split: RawSplit, backend: BackendConfig,
                         progress: ProgressLog | None = None) -> tuple[pa.Table, dict[str, int]]:
    """The kept rows with filename, captions, effective size and tile box; plus drop counts by reason."""
    table = split.table
    video = video_columns(split, backend) if backend.dataset_type == "video" else None
    src_w, src_h = (video.width, video.height) if video else source_sizes(split, backend, progress)
    readable = pc.and_(pc.is_valid(src_w), pc.is_valid(src_h))
    boxes = tile_boxes(
        np.asarray(src_w.fill_null(0), dtype=np.int64), np.asarray(src_h.fill_null(0), dtype=np.int64), backend.composite
    )
    box = {name: pa.array(boxes[:, i].astype(np.int32)) for i, name in enumerate(("left", "top", "right", "bottom"))}
    unreadable = pa.scalar(None, pa.int32())
    width = pc.if_else(readable, pc.subtract(box["right"], box["left"]), unreadable)
    height = pc.if_else(readable, pc.subtract(box["bottom"], box["top"]), unreadable)

    caption_cfg = backend.captions
    if backend.type == "local":
        caption_cfg = CaptionConfig(columns=("caption",), strategy="huggingface")
    captions = extract_captions(table, caption_cfg)
    num_frames = video.frames if video else None
    reasons = drop_reasons(
        table,
        widths=width,
        heights=height,
        captions=captions,
        filters=backend.filters,
        buckets=backend.buckets,
        num_frames=num_frames,
    )
    if video:
        reasons = video_drop_reasons(reasons, video, backend)
    keep = pc.is_null(reasons)
    kept_rows = np.flatnonzero(np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)).astype(np.int64)
    take = pa.array(kept_rows)
    kept_captions = captions.take(take)
    if backend.type == "local":
        filenames = table.column("filename").take(take)
    else:
        filenames = virtual_filenames(take, backend.file_extension)
    columns = {
        "filename": filenames,
        "row": take,
        "caption": first_caption(kept_captions),
        "captions": kept_captions,
        "width": width.take(take),
        "height": height.take(take),
        "source_width": src_w.take(take),
        "source_height": src_h.take(take),
        **{f"tile_{side}": box[side].take(take) for side in ("left", "top", "right", "bottom")},
    }
    schema = INDEX_SCHEMA
    if num_frames is not None:
        columns["num_frames"] = pc.cast(num_frames.take(take), pa.int32())
        schema = schema.append(pa.field("num_frames", pa.int32()))
    if video:
        columns["fps"] = video.fps.take(take)
        schema = schema.append(pa.field("fps", pa.float32()))
    dropped = np.flatnonzero(~np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)).astype(np.int64)
    names = table.column("filename").take(pa.array(dropped)) if backend.type == "local" else (
        virtual_filenames(pa.array(dropped), backend.file_extension))
    details = table.column("caption_problem") if "caption_problem" in table.column_names else None
    rows = dropped_rows(reasons, names, details.combine_chunks() if details is not None else None)
    return pa.Table.from_pydict(columns, schema=schema), DropCounts(count_reasons(reasons), rows)
