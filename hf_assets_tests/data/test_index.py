"""The filtered index of a whole split: names, sizes, captions and drop reasons together."""

import pyarrow.compute as pc

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets_tests.conftest import photo_rows


def index_for(tmp_path, entry):
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    return build_filtered_index(open_split(backend), backend)


def test_filenames_are_the_row_index_and_survive_filter_changes(tmp_path, hub_dataset, photos_entry):
    loose, _ = index_for(tmp_path, photos_entry)
    strict, _ = index_for(tmp_path, {**photos_entry, "filter_func": {"collection": ["photo"]}})
    assert loose.column("filename").to_pylist() == [f"{r}.jpg" for r in loose.column("row").to_pylist()]
    loose_names = dict(zip(loose.column("row").to_pylist(), loose.column("filename").to_pylist()))
    for row, name in zip(strict.column("row").to_pylist(), strict.column("filename").to_pylist()):
        assert loose_names[row] == name


def test_header_sizes_equal_the_size_columns_including_exif_rotation(tmp_path, hub_dataset, photos_entry):
    from_headers, _ = index_for(tmp_path, photos_entry)
    from_columns, _ = index_for(tmp_path, {**photos_entry, "width_column": "width", "height_column": "height"})
    by_row = {r["row"]: (r["width"], r["height"]) for r in from_columns.to_pylist()}
    for record in from_headers.to_pylist():
        assert by_row[record["row"]] == (record["width"], record["height"])
    rotated = [r for r in from_headers.to_pylist() if r["row"] % 8 == 5]
    assert rotated and all((r["width"], r["height"]) == (400, 600) for r in rotated)


def test_unreadable_image_is_dropped_counted_and_the_rest_kept(tmp_path, hub_dataset, photos_entry):
    index, dropped = index_for(tmp_path, photos_entry)
    assert dropped["unreadable_image"] == 1
    assert 5 not in index.column("row").to_pylist()
    assert index.num_rows + sum(dropped.values()) == 24


def test_caption_variants_come_from_each_column_and_fallback(tmp_path, hub_dataset, photos_entry):
    index, dropped = index_for(tmp_path, photos_entry)
    rows = {r["row"]: r for r in index.to_pylist()}
    assert rows[0]["captions"] == ["a photo of item 0", "outdoor", "sunny"]
    assert rows[0]["caption"] == "a photo of item 0"
    # row 1: caption is whitespace and tags empty -> the nested fallback is used
    assert rows[1]["captions"] == ["nested caption 1"]
    assert dropped["no_caption"] == 0


def test_row_without_any_caption_is_dropped_as_no_caption(tmp_path, hub_dataset, photos_entry):
    entry = {**photos_entry, "caption_column": "caption"}
    entry.pop("fallback_caption_column")
    index, dropped = index_for(tmp_path, entry)
    assert dropped["no_caption"] > 0
    assert pc.all(pc.greater(pc.list_value_length(index.column("captions")), 0)).as_py()


def test_minimum_image_size_drops_small_images_as_too_small(tmp_path, hub_dataset, photos_entry):
    index, dropped = index_for(tmp_path, {**photos_entry, "resolution_type": "pixel", "minimum_image_size": 300})
    assert dropped["too_small"] == 3  # the three 120x90 images
    assert pc.min(index.column("width")).as_py() >= 300 and pc.min(index.column("height")).as_py() >= 300


def test_quality_and_collection_filters_apply_together(tmp_path, hub_dataset, photos_entry):
    entry = {
        **photos_entry,
        "filter_func": {"quality_thresholds": {"aesthetic_score": 5.0}, "collection": ["photo", "artwork"]},
    }
    index, dropped = index_for(tmp_path, entry)
    assert dropped["quality"] > 0 and dropped["collection"] > 0
    source = {i: r for i, r in enumerate(photo_rows())}
    for row in index.column("row").to_pylist():
        assert source[row]["collection"] in ("photo", "artwork")
        assert source[row]["quality_assessment"]["aesthetic_score"] >= 5.0


def test_composite_tile_is_the_effective_size_and_its_box_is_recorded(tmp_path, hub_dataset, photos_entry):
    entry = {
        **photos_entry,
        "width_column": "width",
        "height_column": "height",
        "composite_image_config": {"enabled": True, "image_count": 4, "select_index": 1},
    }
    index, _ = index_for(tmp_path, entry)
    first = index.to_pylist()[0]  # row 0 is 640x480
    assert (first["width"], first["height"]) == (160, 480)
    assert (first["tile_left"], first["tile_top"], first["tile_right"], first["tile_bottom"]) == (160, 0, 320, 480)
    assert (first["source_width"], first["source_height"]) == (640, 480)


def test_local_folder_index_uses_relative_paths_and_sidecar_captions(tmp_path):
    from hf_assets_tests.imagegen import encode_image

    root = tmp_path / "imgs"
    root.mkdir()
    (root / "a.jpg").write_bytes(encode_image(300, 200))
    (root / "a.txt").write_text(" a cat \n")
    (root / "b.png").write_bytes(encode_image(200, 300, "PNG"))  # no sidecar
    entry = {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "textfile"}
    index, dropped = index_for(tmp_path, entry)
    assert index.to_pylist()[0]["filename"] == "a.jpg" and index.to_pylist()[0]["captions"] == ["a cat"]
    assert dropped["no_caption"] == 1 and index.num_rows == 1


def test_video_backend_uses_mp4_names_and_frame_filters(tmp_path):
    import datasets

    rows = {
        "video": [b"\x00\x00\x00\x18ftypmp42" + bytes([i]) * 64 for i in range(6)],
        "width": [640, 1280, 480, 720, 640, 320],
        "height": [360, 720, 480, 1280, 360, 240],
        "frame_count": [150, 90, 125, 200, 30, 300],
        "fps": [24.0, 30.0, 25.0, 24.0, 30.0, 60.0],
        "description": [f"clip {i}" for i in range(6)],
    }
    folder = tmp_path / "data" / "clips"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    entry = {
        "id": "clips",
        "type": "huggingface",
        "dataset_type": "video",
        "dataset_name": "data/clips",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "image_column": "video",
        "huggingface": {
            "caption_column": "description",
            "num_frames_column": "frame_count",
            "fps_column": "fps",
            "width_column": "width",
            "height_column": "height",
        },
        "video": {"num_frames": 125, "min_frames": 100},
        "resolution": 480,
        "resolution_type": "pixel",
    }
    index, dropped = index_for(tmp_path, entry)
    assert index.column("filename").to_pylist() == ["0.mp4", "2.mp4", "3.mp4", "5.mp4"]
    assert index.column("num_frames").to_pylist() == [150, 125, 200, 300]
    assert index.column("fps").to_pylist() == [24.0, 25.0, 24.0, 60.0]
    assert dropped["too_few_frames"] == 2


def test_video_sizes_frames_and_fps_come_from_stream_headers_and_bad_clips_get_reasons(tmp_path):
    import datasets

    from hf_assets_tests.videogen import audio_only_clip, encode_clip, truncated_clip, unsupported_codec_clip

    good = [
        encode_clip(64, 48, 17, fps=24, seed=1),
        encode_clip(48, 64, 25, fps=30, seed=2),
        encode_clip(96, 48, 9, fps=12, seed=3, codec="mpeg4"),
    ]
    clips = good + [
        encode_clip(64, 48, 5, seed=4),
        truncated_clip(good[0]),
        b"",
        unsupported_codec_clip(),
        audio_only_clip(),
        encode_clip(64, 48, 40, seed=5),
    ]
    folder = tmp_path / "data" / "clips"
    (folder / "data").mkdir(parents=True)
    rows = {"video": clips, "text": [f"clip {i}" for i in range(len(clips))]}
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "data" / "train.parquet"))
    entry = {
        "id": "clips",
        "type": "huggingface",
        "dataset_type": "video",
        "dataset_name": "data/clips",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "image_column": "video",
        "caption_column": "text",
        "video": {"num_frames": 17, "min_frames": 9, "max_frames": 32},
        "resolution": 64,
        "resolution_type": "pixel",
    }
    index, dropped = index_for(tmp_path, entry)
    assert index.column("filename").to_pylist() == ["0.mp4", "1.mp4", "2.mp4"]
    assert list(zip(index.column("width").to_pylist(), index.column("height").to_pylist())) == [
        (64, 48),
        (48, 64),
        (96, 48),
    ]
    assert index.column("num_frames").to_pylist() == [17, 25, 9]
    assert index.column("fps").to_pylist() == [24.0, 30.0, 12.0]
    assert {k: v for k, v in dropped.items() if v} == {
        "too_few_frames": 1,
        "unreadable_video": 2,
        "unsupported_codec": 1,
        "no_video_stream": 1,
        "too_many_frames": 1,
    }
