"""The dataloader config: every accepted field, and every error naming backend, key and fix."""

import json
from pathlib import Path

import pytest

from hf_assets.config import ConfigError, load_config

HF = {
    "id": "photos",
    "type": "huggingface",
    "dataset_name": "user/photos",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
}


def write(tmp_path: Path, entries) -> Path:
    path = tmp_path / "sub" / "dataloader.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


def load(tmp_path, *entries):
    return load_config(write(tmp_path, list(entries)))


def problems(tmp_path, *entries) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, *entries)
    return str(info.value)


def test_minimal_huggingface_backend_gets_documented_defaults(tmp_path):
    b = load(tmp_path, HF).backend("photos")
    assert b.type == "huggingface" and b.dataset_name == "user/photos"
    assert b.split == "train" and b.image_column == "image" and b.revision is None
    assert b.cache_dir == (tmp_path / "sub" / "cache" / "photos").resolve()
    assert b.metadata_dir == b.cache_dir / "huggingface_metadata" / "photos"
    assert b.buckets.alignment == 64 and b.buckets.crop is False
    assert b.file_extension == "jpg"


def test_every_spec_field_is_read_from_the_top_level(tmp_path):
    entry = {
        **HF,
        "split": "train[:1000]",
        "revision": "abc123",
        "image_column": "img",
        "caption_column": ["title", "description", "tags"],
        "fallback_caption_column": "filename",
        "description_column": "details",
        "width_column": "w",
        "height_column": "h",
        "num_proc": 4,
        "filter_func": {
            "quality_thresholds": {"aesthetic_score": 6.0, "technical_quality": 0.8},
            "quality_column": "qa",
            "collection": ["photo", "artwork"],
            "min_width": 768,
            "min_height": 512,
        },
        "composite_image_config": {"enabled": True, "image_count": 4, "select_index": 2, "layout": "grid"},
        "resolution": 1024,
        "resolution_type": "pixel_area",
        "minimum_image_size": 512,
        "crop": True,
        "crop_aspect": "closest",
        "crop_aspect_buckets": [0.75, 1, 1.33],
        "crop_style": "center",
        "aspect_bucket_alignment": 32,
        "train_batch_size": 4,
        "probability": 0.7,
        "repeats": 2,
        "cache_dir": "/tmp/abs-cache",
    }
    b = load(tmp_path, entry).backend("photos")
    assert b.split == "train[:1000]" and b.revision == "abc123" and b.image_column == "img"
    assert b.captions.columns == ("title", "description", "tags")
    assert b.captions.fallback_column == "filename" and b.captions.description_column == "details"
    assert (b.width_column, b.height_column, b.num_proc) == ("w", "h", 4)
    assert b.filters.quality_thresholds == {"aesthetic_score": 6.0, "technical_quality": 0.8}
    assert b.filters.quality_column == "qa" and b.filters.collection == ("photo", "artwork")
    assert (b.filters.min_width, b.filters.min_height) == (768, 512)
    assert b.composite.enabled and b.composite.image_count == 4 and b.composite.select_index == 2
    assert b.composite.layout == "grid"
    assert b.buckets.resolution == 1024 and b.buckets.resolution_type == "pixel_area"
    assert b.buckets.minimum_image_size == 512 and b.buckets.crop is True
    assert b.buckets.crop_aspect_buckets == (0.75, 1.0, 1.33) and b.buckets.crop_style == "center"
    assert b.buckets.alignment == 32 and b.buckets.train_batch_size == 4
    assert b.probability == 0.7 and b.repeats == 2 and b.cache_dir == Path("/tmp/abs-cache")


def test_huggingface_block_fields_mean_the_same_as_top_level(tmp_path):
    block = {
        "caption_column": "metadata.caption",
        "fallback_caption_column": "basic",
        "width_column": "original_width",
        "height_column": "original_height",
        "filter_func": {"collection": "photo"},
        "composite_image_config": {"enabled": True, "image_count": 2, "select_index": 1},
    }
    top = load(tmp_path, {**HF, **block}).backend("photos")
    nested = load(tmp_path, {**HF, "huggingface": block}).backend("photos")
    assert top == nested
    assert nested.captions.columns == ("metadata.caption",) and nested.filters.collection == ("photo",)


def test_same_field_in_both_places_with_equal_values_is_fine(tmp_path):
    b = load(tmp_path, {**HF, "caption_column": "text", "huggingface": {"caption_column": "text"}})
    assert b.backend("photos").captions.columns == ("text",)


def test_same_field_in_both_places_follows_simpletuners_order_with_a_warning(tmp_path):
    # SimpleTuner reads caption columns from the huggingface block, and the dataset name top level first
    entry = {**HF, "caption_column": "text", "huggingface": {"caption_column": "caption", "dataset_name": "user/other"}}
    b = load(tmp_path, entry).backend("photos")
    assert b.captions.columns == ("caption",) and b.dataset_name == "user/photos"
    assert any("'caption_column'" in w and '"caption"' in w and '"text"' in w for w in b.warnings)
    assert any("'dataset_name'" in w and "top level first" in w for w in b.warnings)


def test_unknown_key_suggests_the_closest_valid_one(tmp_path):
    msg = problems(tmp_path, {**HF, "captoin_column": "text"})
    assert "backend 'photos'" in msg and "unknown key 'captoin_column'" in msg and "'caption_column'" in msg


def test_unknown_key_inside_filter_func_is_named_with_its_block(tmp_path):
    msg = problems(tmp_path, {**HF, "huggingface": {"filter_func": {"min_widht": 5}}})
    assert "filter_func" in msg and "unknown key 'min_widht'" in msg and "'min_width'" in msg


def test_string_false_for_crop_is_an_error_not_true(tmp_path):
    msg = problems(tmp_path, {**HF, "crop": "False"})
    assert "key 'crop' must be true or false" in msg and 'the string "False"' in msg


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("resolution", "1024", "a number > 0"),
        ("repeats", 1.5, "a whole number >= 0"),
        ("train_batch_size", 0, "a whole number >= 1"),
        ("resolution_type", "pixels", '"pixel"'),
        ("crop_style", "middle", '"center"'),
        ("caption_column", [], "column name"),
        ("aspect_bucket_alignment", 60, "multiple of 8"),
        ("probability", -1, ">= 0"),
    ],
)
def test_wrong_types_name_key_and_expected_type(tmp_path, key, value, expected):
    msg = problems(tmp_path, {**HF, key: value})
    assert f"key '{key}' must be" in msg and expected in msg and "backend 'photos'" in msg


@pytest.mark.parametrize("missing", ["dataset_name", "type"])
def test_missing_required_field_is_named(tmp_path, missing):
    entry = {k: v for k, v in HF.items() if k != missing}
    assert f"missing key '{missing}'" in problems(tmp_path, entry)


def test_local_backend_requires_instance_data_dir(tmp_path):
    msg = problems(tmp_path, {"id": "loc", "type": "local", "caption_strategy": "textfile"})
    assert "backend 'loc'" in msg and "missing key 'instance_data_dir'" in msg


def test_duplicate_ids_are_an_error(tmp_path):
    assert "duplicate id" in problems(tmp_path, HF, dict(HF))


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", ".hidden", "with space"])
def test_ids_that_are_not_safe_paths_are_rejected(tmp_path, bad_id):
    msg = problems(tmp_path, {**HF, "id": bad_id})
    assert "partition keys" in msg


def test_all_problems_are_reported_at_once(tmp_path):
    err = None
    try:
        load(tmp_path, {**HF, "crop": "yes", "repeats": -1}, {**HF, "id": "b", "bogus": 1})
    except ConfigError as exc:
        err = exc
    assert err is not None and len(err.problems) == 3


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "sub" / "data" / "photos").mkdir(parents=True)
    monkeypatch.chdir("/")
    cfg = load(
        tmp_path,
        {**HF, "dataset_name": "data/photos", "cache_dir": "cache/x"},
        {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "textfile"},
    )
    assert cfg.backend("photos").dataset_name == str((tmp_path / "sub" / "data" / "photos").resolve())
    assert cfg.backend("photos").cache_dir == (tmp_path / "sub" / "cache" / "x").resolve()
    assert cfg.backend("loc").instance_data_dir == (tmp_path / "sub" / "imgs").resolve()


def test_hub_ids_are_kept_as_given(tmp_path):
    assert load(tmp_path, {**HF, "dataset_name": "laion/laion-art"}).backend("photos").dataset_name == "laion/laion-art"


def test_text_embeds_entry_is_not_a_partition_but_sets_the_text_cache(tmp_path):
    cfg = load(tmp_path, HF, {"id": "te", "type": "local", "dataset_type": "text_embeds", "cache_dir": "te-cache"})
    assert cfg.backend_ids == ["photos"]
    assert cfg.backend("photos").text_dir == (tmp_path / "sub" / "te-cache").resolve() / "photos"


def test_without_text_embeds_entry_text_cache_is_under_cache_dir(tmp_path):
    b = load(tmp_path, HF).backend("photos")
    assert b.text_dir == b.cache_dir / "text_embeds" / "photos"


def test_disabled_entries_are_skipped(tmp_path):
    cfg = load(tmp_path, HF, {"id": "off", "disabled": True, "type": "bogus"})
    assert cfg.backend_ids == ["photos"]


def test_string_true_for_disabled_is_an_error(tmp_path):
    assert "key 'disabled' must be true or false" in problems(tmp_path, {**HF, "disabled": "true"})


def test_streaming_true_is_refused_with_the_alternative(tmp_path):
    assert "split slice" in problems(tmp_path, {**HF, "streaming": True})


def test_area_resolution_given_in_pixels_is_caught(tmp_path):
    assert "megapixels" in problems(tmp_path, {**HF, "resolution": 1024, "resolution_type": "area"})


def test_crop_aspect_closest_needs_buckets(tmp_path):
    msg = problems(tmp_path, {**HF, "crop": True, "crop_aspect": "closest"})
    assert "crop_aspect_buckets" in msg


def test_composite_select_index_outside_the_tiles_is_an_error(tmp_path):
    msg = problems(tmp_path, {**HF, "composite_image_config": {"enabled": True, "image_count": 4, "select_index": 4}})
    assert "select_index" in msg


def test_known_simpletuner_keys_are_accepted_with_a_warning(tmp_path):
    cfg = load(tmp_path, {**HF, "vae_cache_clear_each_epoch": True})
    assert any("vae_cache_clear_each_epoch" in w for w in cfg.warnings)


def test_video_backend_uses_mp4_names_and_frame_filters(tmp_path):
    entry = {
        **HF,
        "dataset_type": "video",
        "huggingface": {"num_frames_column": "frame_count", "fps_column": "fps"},
        "video": {"num_frames": 125, "min_frames": 100},
    }
    b = load(tmp_path, entry).backend("photos")
    assert b.file_extension == "mp4" and b.num_frames_column == "frame_count" and b.filters.min_frames == 100
    assert b.video.num_frames == 125 and b.video.min_frames == 100 and b.video.bucket_strategy == "aspect_ratio"


def test_video_resolution_frames_bucketing_takes_a_frame_interval(tmp_path):
    entry = {
        **HF,
        "dataset_type": "video",
        "video": {"bucket_strategy": "resolution_frames", "frame_interval": 25, "min_frames": 25, "max_frames": 250},
    }
    v = load(tmp_path, entry).backend("photos").video
    assert (v.bucket_strategy, v.frame_interval, v.min_frames, v.max_frames) == ("resolution_frames", 25, 25, 250)


def test_video_block_errors_name_the_key_and_fix(tmp_path):
    text = problems(
        tmp_path,
        {**HF, "video": {"num_frames": 9}},
        {**HF, "id": "b", "dataset_type": "video", "video": {"bucket_strategy": "frames", "min_frames": 0}},
        {**HF, "id": "c", "dataset_type": "video", "video": {"min_frames": 50, "max_frames": 10, "frame_intervall": 4}},
        {**HF, "id": "d", "dataset_type": "video", "video": {"frame_interval": 8}},
    )
    assert "backend 'photos'" in text and 'needs "dataset_type": "video"' in text
    assert '\'bucket_strategy\' must be one of "aspect_ratio", "resolution_frames"' in text
    assert "'min_frames' must be a whole number >= 1" in text
    assert "min_frames (50) is above video.max_frames (10)" in text and "did you mean 'frame_interval'?" in text
    assert "backend 'd'" in text and "frame_interval only applies with" in text


def test_not_a_list_is_a_clear_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"id": "x"}))
    with pytest.raises(ConfigError, match="JSON list"):
        load_config(path)


def test_invalid_json_reports_line_and_column(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[{"id": "x",}]')
    with pytest.raises(ConfigError, match="line 1"):
        load_config(path)


def test_missing_file_names_the_environment_variable(tmp_path):
    with pytest.raises(ConfigError, match="HF_ASSETS_DATALOADER_CONFIG"):
        load_config(tmp_path / "nope.json")


def test_unknown_backend_lookup_lists_known_ids(tmp_path):
    with pytest.raises(KeyError, match="photos"):
        load(tmp_path, HF).backend("nope")


def test_area_minimum_image_size_given_in_pixels_is_caught(tmp_path):
    entry = {**HF, "resolution": 1.0, "resolution_type": "area", "minimum_image_size": 512}
    msg = problems(tmp_path, entry)
    assert "'minimum_image_size' is 512" in msg and "megapixels" in msg


def test_values_that_used_to_crash_are_config_errors_listed_together(tmp_path):
    (tmp_path / "sub").mkdir(parents=True, exist_ok=True)
    (tmp_path / "sub" / "a_file").write_text("not a folder")
    entries = [
        {**HF, "id": "res", "resolution": "abc"},
        {**HF, "id": "prob", "probability": "x"},
        {**HF, "id": "buckets", "crop": True, "crop_aspect": "closest", "crop_aspect_buckets": ["a"]},
        {**HF, "id": "tile", "composite_image_config": {"enabled": True, "image_count": 2, "select_index": "1"}},
        {**HF, "id": "cache", "cache_dir": "a_file"},
        {**HF, "id": "under", "cache_dir": "a_file/deeper"},
    ]
    msg = problems(tmp_path, *entries)
    assert "backend 'res': key 'resolution' must be a number > 0" in msg
    assert "backend 'prob': key 'probability' must be a number >= 0" in msg
    assert "backend 'buckets': key 'crop_aspect_buckets'" in msg and "[0.75, 1.0, 1.33]" in msg
    assert "backend 'tile', \"composite_image_config\": key 'select_index' must be a whole number >= 0" in msg
    assert "backend 'cache': key 'cache_dir'" in msg and "is a file, not a folder" in msg
    assert "backend 'under': key 'cache_dir'" in msg


def test_values_that_were_silently_accepted_are_config_errors(tmp_path):
    entries = [
        {**HF, "id": "block", "huggingface": "caption"},
        {**HF, "id": "width", "width_column": "w"},
        {**HF, "id": "video", "video": {"num_frames": 16}},
        {**HF, "id": "huge", "resolution": 1e308},
        {**HF, "id": "pixel", "resolution": 1000.5, "resolution_type": "pixel"},
    ]
    msg = problems(tmp_path, *entries)
    assert "backend 'block': key 'huggingface' must be a JSON object" in msg
    assert "backend 'width': key 'width_column' needs key 'height_column' too" in msg
    assert 'backend \'video\': a "video" block needs "dataset_type": "video"' in msg
    assert "backend 'huge': key 'resolution' is 1e+308" in msg and "between 8 and 32768" in msg
    assert "backend 'pixel': key 'resolution' must be a whole number of pixels" in msg


def test_crop_style_face_is_refused_naming_the_supported_styles(tmp_path):
    msg = problems(tmp_path, {**HF, "crop": True, "crop_style": "face"})
    assert "backend 'photos': crop_style \"face\" is not supported" in msg and '"center", "corner" or "random"' in msg


def test_simpletuner_bucket_options_are_read(tmp_path):
    entry = {
        **HF,
        "resolution": 1024,
        "resolution_type": "pixel_area",
        "crop": True,
        "crop_aspect": "random",
        "crop_aspect_buckets": [
            {"aspect": 0.75, "weight": 0.25},
            {"aspect": 1.0, "weight": 0.5},
            {"aspect": 1.33, "weight": 0.25},
        ],
        "maximum_image_size": 1536,
        "target_downsample_size": 1280,
        "max_upscale_threshold": 0.2,
        "minimum_aspect_ratio": 0.5,
        "maximum_aspect_ratio": 2.0,
        "aspect_bucket_rounding": 3,
        "aspect_bucket_alignment": 32,
    }
    b = load(tmp_path, entry).backend("photos").buckets
    assert b.crop_aspect_buckets == (0.75, 1.0, 1.33) and b.crop_aspect_weights == (0.25, 0.5, 0.25)
    assert (b.maximum_image_size, b.target_downsample_size, b.max_upscale_threshold) == (1536, 1280, 0.2)
    assert (b.minimum_aspect_ratio, b.maximum_aspect_ratio, b.rounding, b.alignment) == (0.5, 2.0, 3, 32)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"maximum_image_size": 1536}, "key 'maximum_image_size' needs key 'target_downsample_size' too"),
        ({"target_downsample_size": 1280}, "key 'target_downsample_size' needs key 'maximum_image_size' too"),
        ({"crop_aspect_buckets": [{"aspect": 1.0, "weight": 0.5}, {"aspect": 1.5, "weight": 0.4}]}, "add up to 0.9"),
        ({"crop_aspect_buckets": [1.0, {"aspect": 1.5, "weight": 1.0}]}, "(not a mix)"),
        ({"crop_aspect_buckets": [{"aspect_bucket": 1.0, "weight": 1.0}]}, "crop_aspect_buckets[0] must be"),
        ({"minimum_aspect_ratio": 2.0, "maximum_aspect_ratio": 0.5}, "is above maximum_aspect_ratio"),
        ({"aspect_bucket_rounding": 7}, "key 'aspect_bucket_rounding' must be a whole number of decimals"),
        ({"max_upscale_threshold": -1}, "key 'max_upscale_threshold' must be a number >= 0"),
    ],
)
def test_bucket_option_mistakes_name_the_key_and_the_fix(tmp_path, extra, expected):
    entry = {**HF, "crop": True, "crop_aspect": "random", "crop_aspect_buckets": [0.75, 1.0], **extra}
    assert expected in problems(tmp_path, entry)


def test_accepted_but_unused_keys_are_warnings_of_their_backend(tmp_path):
    config = load(
        tmp_path,
        {
            **HF,
            "vae_cache_clear_each_epoch": True,
            "maximum_image_size": 1536,
            "target_downsample_size": 1280,
            "crop_aspect_buckets": [1.0, 1.5],
        },
        {**HF, "id": "clean"},
    )
    warned = config.backend("photos").warnings
    assert any("'vae_cache_clear_each_epoch' is accepted but not used" in w for w in warned)
    assert any("'maximum_image_size' and 'target_downsample_size' are accepted but not used" in w for w in warned)
    assert any("'crop_aspect_buckets' is accepted but not used" in w for w in warned)
    assert config.backend("clean").warnings == ()
    assert all(w.startswith("backend 'photos': ") for w in config.warnings) and len(config.warnings) == len(warned)


JUNK = ["abc", "", -1, 0, 1e308, [], {}, None, True, ["a"], [{"x": 1}], {"a": [1, {"b": None}]}, [[1]]]


def test_any_junk_value_for_any_key_gives_a_config_error_or_a_config(tmp_path):
    from hf_assets.config import registry as R

    keys = [k for k in {**R.keys_in(R.DATASET), **R.keys_in(R.HUGGINGFACE)} if k not in ("id",)]
    for key in keys:
        for junk in JUNK:
            for entry in ({**HF, key: junk}, {**HF, "huggingface": {key: junk}}):
                try:
                    load(tmp_path, entry)
                except ConfigError as exc:
                    assert "could not be read" not in str(exc)  # a named rule caught it, not the safety net
    for block in ("filter_func", "composite_image_config", "video", "conditioning"):
        fields = R.keys_in(block)
        for key in fields:
            for junk in JUNK:
                try:
                    load(tmp_path, {**HF, "dataset_type": "video", block: {"type": "canny", key: junk}})
                except ConfigError as exc:
                    assert "could not be read" not in str(exc)


def test_video_min_frames_defaults_to_num_frames_with_a_warning(tmp_path):
    cfg = load(tmp_path, {**HF, "dataset_type": "video", "video": {"num_frames": 49}})
    b = cfg.backend("photos")
    assert b.video.min_frames == 49 and b.filters.min_frames == 49
    assert any("video.min_frames is not set" in w for w in cfg.warnings)
    unset = load(tmp_path, {**HF, "dataset_type": "video"})
    assert unset.backend("photos").video.min_frames is None


def test_bucket_weights_that_add_up_to_one_in_decimal_are_accepted(tmp_path):
    # 0.7 + 0.2 + 0.1 is 0.9999999999999999 in floating point (SimpleTuner raises on it).
    buckets = [{"aspect": 0.75, "weight": 0.7}, {"aspect": 1.0, "weight": 0.2}, {"aspect": 1.5, "weight": 0.1}]
    b = load(tmp_path, {**HF, "crop": True, "crop_aspect": "random", "crop_aspect_buckets": buckets})
    assert b.backend("photos").buckets.crop_aspect_weights == (0.7, 0.2, 0.1)


def test_a_file_that_is_not_utf8_json_is_a_config_error(tmp_path):
    path = tmp_path / "dataloader.json"
    path.write_bytes(b"\xff\xfe[\x00{\x00}\x00]\x00")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError):
        load_config(path)


def test_the_unreadable_value_message_points_to_a_page_and_section_that_exist():
    import re

    from hf_assets.config import loader

    message = loader._unreadable(TypeError("boom"))
    found = re.search(r"in (\S+\.md) \(section \"([^\"]+)\"\)", message)
    assert found, message
    page = Path(loader.__file__).resolve().parents[2] / found.group(1)
    headings = [line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("#")]
    assert found.group(2) in headings
