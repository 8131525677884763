"""Short generated clips encoded by PyAV (H.264 in MP4 by default): moving gradients, so codecs do real work."""

import io

import numpy as np


def clip_frames(width: int, height: int, frames: int, seed: int = 0):
    """Yield `frames` RGB uint8 frames: gradients drifting over time, with a little seeded noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for t in range(frames):
        r = 127 + 120 * np.sin((x + 3 * t) / (7.0 + seed % 5))
        g = 255 * y / max(height - 1, 1)
        b = 127 + 100 * np.cos((x - y + 5 * t) / 13.0 + seed)
        img = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
        yield np.clip(img, 0, 255).astype(np.uint8)


def encode_clip(
    width: int, height: int, frames: int, fps: int = 24, seed: int = 0, codec: str = "libx264", container: str = "mp4"
) -> bytes:
    """Encoded bytes of a width x height clip of `frames` frames (even sizes for yuv420p)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "20"}
        for img in clip_frames(width, height, frames, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def unsupported_codec_clip(width: int = 64, height: int = 48, frames: int = 9) -> bytes:
    """An MP4 whose video sample entry names a codec FFmpeg does not know (fourcc "zzzz")."""
    return encode_clip(width, height, frames).replace(b"avc1", b"zzzz")


def truncated_clip(data: bytes) -> bytes:
    """The first half of a clip's bytes: the MP4 index (written last) is missing."""
    return data[: len(data) // 2]


def damaged_payload_clip(data: bytes) -> bytes:
    """A clip whose header is intact but whose coded frames are zeroed: it scans fine and fails to decode."""
    start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
    return data[:start] + bytes(end - start) + data[end:]
