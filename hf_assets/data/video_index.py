"""The filtered index's video columns: sizes, frame counts and frame rates from columns, else stream headers."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BackendConfig
from hf_assets.data.columns import resolve_column
from hf_assets.data.frame_selection import TOO_MANY_FRAMES, too_many_frames_mask
from hf_assets.data.sources import RawSplit
from hf_assets.data.video_header import video_headers


@dataclass(frozen=True)
class VideoColumns:
    """Per row of the split: frame size, frame count, frame rate, and why its header is unusable (null if it is)."""

    width: pa.Array
    height: pa.Array
    frames: pa.Array
    fps: pa.Array
    problem: pa.Array


def _column(split: RawSplit, name: str, kind: pa.DataType) -> pa.Array:
    return pc.cast(resolve_column(split.table, name), kind).combine_chunks()


def video_columns(split: RawSplit, backend: BackendConfig) -> VideoColumns:
    """Configured columns win; clip headers (PyAV, no frame decoded) fill in the rest, read only when needed."""
    given = {
        "width": backend.width_column,
        "height": backend.height_column,
        "frames": backend.num_frames_column,
        "fps": backend.fps_column,
    }
    kinds = {"width": pa.int32(), "height": pa.int32(), "frames": pa.int32(), "fps": pa.float32()}
    values = {key: _column(split, name, kinds[key]) for key, name in given.items() if name}
    problem = pa.nulls(split.num_rows, pa.string())
    if any(not given[key] for key in ("width", "height", "frames")):
        headers = video_headers(split.table.column(backend.image_column), base_dir=split.base_dir)
        problem = headers.column("problem").combine_chunks()
        for key in kinds:
            values.setdefault(key, headers.column(key).combine_chunks())
    return VideoColumns(
        values["width"],
        values["height"],
        values["frames"],
        values.get("fps", pa.nulls(split.num_rows, pa.float32())),
        problem,
    )


def video_drop_reasons(reasons: pa.Array, video: VideoColumns, backend: BackendConfig) -> pa.Array:
    """The index's drop reasons with a clip's header problem (unreadable_video, no_video_stream, unsupported_codec)
    first, then too_many_frames (above video.max_frames) for clips kept so far."""
    frames = np.asarray(pc.fill_null(video.frames, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    kept = ~pc.is_valid(reasons).to_numpy(zero_copy_only=False)
    too_long = pa.array(too_many_frames_mask(frames, backend.video) & kept)
    reasons = pc.if_else(too_long, pa.scalar(TOO_MANY_FRAMES), reasons)
    return pc.coalesce(video.problem, reasons)
