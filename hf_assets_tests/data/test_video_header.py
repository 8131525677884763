"""Clip headers: size, frame count, rate and codec without decoding a frame; bad clips named by reason."""

import pyarrow as pa
import pytest

from hf_assets.data.video_header import UnreadableVideo, read_header, video_headers
from hf_assets_tests.videogen import audio_only_clip, encode_clip, truncated_clip, unsupported_codec_clip


def test_header_gives_size_frames_fps_and_codec_of_h264_and_mpeg4():
    h264 = read_header(encode_clip(64, 48, 17, fps=24))
    assert (h264.width, h264.height, h264.frames, h264.fps, h264.codec) == (64, 48, 17, 24.0, "h264")
    mpeg4 = read_header(encode_clip(80, 32, 12, fps=30, codec="mpeg4"))
    assert (mpeg4.width, mpeg4.height, mpeg4.frames, mpeg4.fps, mpeg4.codec) == (80, 32, 12, 30.0, "mpeg4")


def test_header_of_a_clip_file_path(tmp_path):
    path = tmp_path / "a.mp4"
    path.write_bytes(encode_clip(48, 32, 9))
    assert read_header(str(path)).frames == 9


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "unreadable_video"),
        (b"not a video at all" * 4, "unreadable_video"),
        (None, "unsupported_codec"),
        ("audio", "no_video_stream"),
        ("truncated", "unreadable_video"),
    ],
)
def test_bad_clips_raise_with_their_reason(data, reason):
    data = {
        None: unsupported_codec_clip,
        "audio": audio_only_clip,
        "truncated": lambda: truncated_clip(encode_clip(64, 48, 17)),
    }.get(data, lambda: data)()
    with pytest.raises(UnreadableVideo) as info:
        read_header(data)
    assert info.value.reason == reason


def test_column_of_hub_structs_and_paths_gives_nulls_and_reasons_for_bad_rows(tmp_path):
    (tmp_path / "b.mp4").write_bytes(encode_clip(32, 32, 5))
    column = pa.array(
        [
            {"bytes": encode_clip(64, 48, 9), "path": None},
            {"bytes": None, "path": "b.mp4"},
            {"bytes": b"junk", "path": None},
            None,
        ],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    table = video_headers(column, base_dir=tmp_path)
    assert table.column("width").to_pylist() == [64, 32, None, None]
    assert table.column("frames").to_pylist() == [9, 5, None, None]
    assert table.column("problem").to_pylist() == [None, None, "unreadable_video", "unreadable_video"]
