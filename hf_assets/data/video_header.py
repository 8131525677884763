"""Clip sizes, frame counts and frame rates from container and stream headers (PyAV), never by decoding a frame."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from hf_assets.data.header_sizes import _binary_views, _image_columns, resolve_image_path

# Why a clip's header cannot be used; each becomes the row's drop reason.
UNREADABLE = "unreadable_video"  # empty, truncated or not a container at all
NO_VIDEO = "no_video_stream"  # a container without a video stream (e.g. audio only)
UNSUPPORTED_CODEC = "unsupported_codec"  # a video stream this FFmpeg build cannot decode
HEADER_REASONS = (UNREADABLE, NO_VIDEO, UNSUPPORTED_CODEC)


class UnreadableVideo(ValueError):
    """A clip whose header does not give a decodable video stream; `reason` is one of HEADER_REASONS."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class VideoHeader:
    """What the first video stream's header says: coded size, frame count, frame rate and codec name."""

    width: int
    height: int
    frames: int
    fps: float | None
    codec: str


class ViewReader(io.RawIOBase):
    """A seekable read-only file over a memoryview, so that PyAV reads clip bytes in place (no copy)."""

    def __init__(self, view: memoryview | bytes):
        self.view = memoryview(view)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.view[self.pos : self.pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.view)}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos


def open_clip(source: bytes | memoryview | str | Path):
    """An open PyAV input container over clip bytes or a file path; raises UnreadableVideo."""
    import av

    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise UnreadableVideo(UNREADABLE, "empty clip bytes")
        source = ViewReader(source)
    try:
        return av.open(source, mode="r")
    except Exception as exc:  # FFmpeg reports damaged input as many error types; each is one drop
        message = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise UnreadableVideo(UNREADABLE, f"{type(exc).__name__}: {message}".rstrip(": ")) from exc


def video_stream(container):
    """The container's first video stream with a decoder; raises UnreadableVideo."""
    streams = list(container.streams.video)
    if not streams:
        raise UnreadableVideo(NO_VIDEO, "the container holds no video stream")
    stream = streams[0]
    context = stream.codec_context
    if context is None or context.codec is None or not context.codec.is_decoder:
        raise UnreadableVideo(UNSUPPORTED_CODEC, f"no decoder for codec {getattr(context, 'name', None)!r}")
    return stream


def stream_header(container) -> VideoHeader:
    """The header of an open container's first video stream (sizes from its codec parameters)."""
    stream = video_stream(container)
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise UnreadableVideo(UNREADABLE, f"the video stream has no frame size ({width}x{height})")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else None
    frames = int(stream.frames or 0)
    if frames <= 0 and fps:
        if stream.duration and stream.time_base:
            frames = int(round(float(stream.duration * stream.time_base) * fps))
        elif container.duration:
            frames = int(round(container.duration / 1_000_000 * fps))
    if frames <= 0:
        raise UnreadableVideo(UNREADABLE, "the header gives no frame count (zero-length clip)")
    return VideoHeader(width, height, frames, fps, stream.codec_context.name)


def read_header(source: bytes | memoryview | str | Path) -> VideoHeader:
    """The header of one clip's first video stream; raises UnreadableVideo with a reason."""
    container = open_clip(source)
    try:
        return stream_header(container)
    finally:
        container.close()


def video_headers(clips: pa.Array | pa.ChunkedArray, base_dir: Path | None = None) -> pa.Table:
    """width, height, frames (int32), fps (float32) and problem (a HEADER_REASONS value, null when readable)."""
    chunks = clips.chunks if isinstance(clips, pa.ChunkedArray) else [clips]
    sizes: list[tuple[int, int, int]] = []
    rates: list[float | None] = []
    problems: list[str | None] = []
    for chunk in chunks:
        if pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
            data, paths = None, chunk  # a column of clip paths
        else:
            data, paths = _image_columns(chunk)
        views = _binary_views(data) if data is not None and not pa.types.is_null(data.type) else [None] * len(chunk)
        path_values = paths.to_pylist() if paths is not None else [None] * len(chunk)
        for view, path in zip(views, path_values):
            try:
                if view is not None and len(view):
                    header = read_header(view)
                elif path:
                    header = read_header(str(resolve_image_path(path, base_dir)))
                else:
                    raise UnreadableVideo(UNREADABLE, "no clip bytes or path")
            except UnreadableVideo as exc:
                sizes.append((-1, -1, -1))
                rates.append(None)
                problems.append(exc.reason)
                continue
            sizes.append((header.width, header.height, header.frames))
            rates.append(header.fps)
            problems.append(None)
    array = np.asarray(sizes, dtype=np.int32).reshape(-1, 3)
    bad = array[:, 0] < 0
    return pa.table(
        {
            "width": pa.array(array[:, 0], pa.int32(), mask=bad),
            "height": pa.array(array[:, 1], pa.int32(), mask=bad),
            "frames": pa.array(array[:, 2], pa.int32(), mask=bad),
            "fps": pa.array(rates, pa.float32()),
            "problem": pa.array(problems, pa.string()),
        }
    )
