"""Realistic test clips (PyAV-encoded H.264/MPEG-4) and the bad kinds a video dataset holds."""

from examples.demo_clips import clip_frames, damaged_payload_clip, encode_clip, truncated_clip, unsupported_codec_clip

__all__ = [
    "audio_only_clip",
    "clip_frames",
    "damaged_payload_clip",
    "encode_clip",
    "truncated_clip",
    "unsupported_codec_clip",
]


def audio_only_clip() -> bytes:
    """An MP4 with one AAC audio stream and no video stream."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()
