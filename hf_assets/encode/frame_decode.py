"""Decode the frames a clip is trained on with PyAV: streamed, seeking to the first wanted frame, each frame
resized and cropped as it arrives, so memory holds only the output clip, never the source."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hf_assets.data.video_header import UnreadableVideo, open_clip, video_stream

Box = tuple[int, int, int, int]


class CorruptVideo(ValueError):
    """A clip whose frames do not decode, or that holds fewer frames than its header or size columns promised."""


@dataclass(frozen=True)
class ClipSpec:
    """Which frames of a clip to take and how to shape each one (the same box for every frame)."""

    start: int  # first frame (0: the clip's beginning, as SimpleTuner trains)
    count: int  # frames to return
    resize: tuple[int, int]  # (width, height) of the cover resize
    crop: Box  # (left, top, right, bottom) in the resized frame
    source: tuple[int, int] | None = None  # expected (width, height) of a decoded frame, when known


def _decoded_frames(container, stream, start: int) -> Iterator:
    """Frames from index `start` on; seeks to the keyframe at or before it instead of decoding from the top."""
    rate = stream.average_rate or stream.guessed_rate
    if start > 0 and rate and stream.time_base:
        target_pts = int(start / float(rate) / float(stream.time_base)) + (stream.start_time or 0)
        container.seek(target_pts, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            index = round((frame.pts - (stream.start_time or 0)) * float(stream.time_base) * float(rate))
            if index >= start:
                yield frame
        return
    yield from container.decode(stream)


def shaped(frame_image: Image.Image, spec: ClipSpec) -> np.ndarray:
    """One frame resized (LANCZOS, as images are) and cropped to the spec's box: uint8 (H, W, 3)."""
    if spec.source is not None and frame_image.size != tuple(spec.source):
        raise CorruptVideo(
            f"decoded frame is {frame_image.size[0]}x{frame_image.size[1]}, "
            f"the index says {spec.source[0]}x{spec.source[1]}"
        )
    img = frame_image.convert("RGB")
    if img.size != tuple(spec.resize):
        img = img.resize(tuple(int(v) for v in spec.resize), Image.Resampling.LANCZOS)
    return np.asarray(img.crop(tuple(int(v) for v in spec.crop)), dtype=np.uint8)


def load_clip(source: bytes | str | Path, spec: ClipSpec) -> np.ndarray:
    """uint8 (T, H, W, 3): frames [start, start + count) of the clip, each resized and cropped by the spec."""
    if spec.count < 1:
        raise ValueError(f"a clip needs at least one frame, the spec asks for {spec.count}")
    try:
        container = open_clip(source)
    except UnreadableVideo as exc:
        raise CorruptVideo(str(exc)) from exc
    width, height = spec.crop[2] - spec.crop[0], spec.crop[3] - spec.crop[1]
    out = np.empty((spec.count, height, width, 3), dtype=np.uint8)
    got = 0
    try:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        for frame in _decoded_frames(container, stream, spec.start):
            out[got] = shaped(frame.to_image(), spec)
            got += 1
            if got == spec.count:
                break
    except UnreadableVideo as exc:
        raise CorruptVideo(str(exc)) from exc
    except CorruptVideo:
        raise
    except Exception as exc:  # PyAV raises FFmpeg errors of many types for damaged streams
        message = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise CorruptVideo(f"{type(exc).__name__} after {got} frame(s): {message}") from exc
    finally:
        container.close()
    if got < spec.count:
        raise CorruptVideo(f"decoded {got} frame(s) from frame {spec.start}, expected {spec.count}")
    return out
