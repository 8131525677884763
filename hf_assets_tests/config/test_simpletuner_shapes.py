"""The shapes and keys of SimpleTuner's own configs, written fresh here: each loads with SimpleTuner's meaning, or is
accepted with a warning that says why it is not applied, or is refused naming the backend, the key and why."""

import json
from pathlib import Path

import pytest

from hf_assets.config import ConfigError, load_config

HUB = {"id": "hub", "type": "huggingface", "dataset_name": "user/pictures", "metadata_backend": "huggingface"}
TEXT = {"id": "text", "type": "local", "dataset_type": "text_embeds", "default": True, "cache_dir": "cache/text"}


def load(tmp_path: Path, *entries, strict: bool = True):
    path = tmp_path / "cfg" / "dataloader.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(entries)))
    return load_config(path, strict=strict)


def refused(tmp_path: Path, *entries) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, *entries)
    return str(info.value)


def test_instanceprompt_on_a_huggingface_backend_captions_every_row_with_the_prompt(tmp_path):
    b = load(tmp_path, {**HUB, "caption_strategy": "instanceprompt", "instance_prompt": "minecraft"}).backend("hub")
    assert b.captions.strategy == "instanceprompt" and b.captions.instance_prompts == ("minecraft",)
    several = {**HUB, "caption_strategy": "instanceprompt", "instance_prompt": ["a sks dog", "sks"]}
    assert load(tmp_path, several).backend("hub").captions.instance_prompts == ("a sks dog", "sks")


def test_instance_prompt_options_need_a_prompt_and_file_strategies_need_files(tmp_path):
    text = refused(
        tmp_path,
        {**HUB, "caption_strategy": "instanceprompt"},
        {**HUB, "id": "prepend", "prepend_instance_prompt": True},
        {**HUB, "id": "textfile", "caption_strategy": "textfile"},
    )
    assert "backend 'hub': caption_strategy \"instanceprompt\" needs key 'instance_prompt'" in text
    assert "backend 'prepend': key 'prepend_instance_prompt' needs key 'instance_prompt'" in text
    assert "backend 'textfile': caption_strategy \"textfile\" reads files beside the images" in text


def test_huggingface_block_keys_follow_simpletuners_precedence(tmp_path):
    entry = {
        **HUB,
        "dataset_type": "video",
        "video_column": "clip",
        "huggingface": {"video_column": "video", "file_extension": "webm", "image_column": "thumb"},
    }
    b = load(tmp_path, entry).backend("hub")
    assert b.image_column == "clip" and b.file_extension == "webm"  # top level first for the column
    assert any("'video_column'" in w and "top level first" in w for w in b.warnings)
    only_block = {
        **HUB,
        "dataset_name": None,
        "huggingface": {"dataset_name": "user/from-block", "image_column": "Image"},
    }
    b = load(tmp_path, only_block).backend("hub")
    assert (b.dataset_name, b.image_column, b.file_extension) == ("user/from-block", "Image", "jpg")


def test_a_video_backend_reads_its_video_column_else_its_image_column_else_video(tmp_path):
    video = {**HUB, "dataset_type": "video"}
    assert load(tmp_path, video).backend("hub").image_column == "video"
    assert load(tmp_path, {**video, "image_column": "clips"}).backend("hub").image_column == "clips"
    assert load(tmp_path, {**video, "file_extension": "mkv"}).backend("hub").file_extension == "mkv"
    assert load(tmp_path, video).backend("hub").file_extension == "mp4"
    image = load(tmp_path, {**HUB, "huggingface": {"video_column": "v"}}).backend("hub")
    assert image.image_column == "image" and any("names the clips of a video backend" in w for w in image.warnings)


def test_an_audio_block_on_a_video_backend_is_warned_and_the_video_loads(tmp_path):
    entry = {
        **HUB,
        "dataset_type": "video",
        "video": {"num_frames": 49, "min_frames": 49},
        "audio": {"auto_split": True, "sample_rate": 16000, "channels": 1},
    }
    b = load(tmp_path, entry).backend("hub")
    assert b.dataset_type == "video" and b.video.num_frames == 49
    assert any("key 'audio' is accepted but not used (audio is out of scope" in w for w in b.warnings)


def test_an_audio_dataset_is_refused_naming_backend_and_key(tmp_path):
    text = refused(tmp_path, {**HUB, "dataset_type": "audio", "audio": {"sample_rate": 44100}})
    assert "backend 'hub': dataset_type \"audio\" is not supported: audio is out of scope" in text


def test_schedule_keys_reach_the_typed_config(tmp_path):
    entry = {**HUB, "probability": 0.3, "repeats": 4, "ignore_epochs": True, "start_epoch": 2, "end_step": 300}
    b = load(tmp_path, entry).backend("hub")
    assert (b.probability, b.repeats) == (0.3, 4)
    s = b.schedule
    assert (s.ignore_epochs, s.start_epoch, s.start_step, s.end_epoch, s.end_step) == (True, 2, 0, None, 300)
    assert not s.active(epoch=1, step=0) and s.active(epoch=2, step=300) and not s.active(epoch=2, step=301)


def test_max_num_samples_and_cache_file_suffix(tmp_path):
    b = load(tmp_path, {**HUB, "max_num_samples": 4, "cache_file_suffix": "x"}).backend("hub")
    assert b.max_num_samples == 4
    assert any("'cache_file_suffix' is accepted but not used" in w for w in b.warnings)
    assert "'max_num_samples' must be a whole number >= 1" in refused(tmp_path, {**HUB, "max_num_samples": 0})


def test_trainer_settings_are_warned_and_kept_for_the_trainer(tmp_path):
    b = load(tmp_path, {**HUB, "timestep_sampling_offset": -0.5, "is_regularisation_data": True}).backend("hub")
    assert b.trainer_settings == {"timestep_sampling_offset": -0.5, "is_regularisation_data": True}
    assert any("keys 'timestep_sampling_offset', 'is_regularisation_data' are accepted" in w for w in b.warnings)


def test_conditioning_keys_are_known_and_typed(tmp_path):
    source = {
        **HUB,
        "caption_strategy": "instanceprompt",
        "instance_prompt": "minecraft",
        "conditioning": {"type": "canny", "conditioning_type": "controlnet", "captions": ["minecraft"]},
    }
    given = {
        "id": "masks",
        "type": "local",
        "dataset_type": "conditioning",
        "instance_data_dir": "masks",
        "conditioning_type": "mask",
        "source_dataset_id": "hub",
    }
    edges = {**given, "id": "edges", "conditioning_type": "controlnet"}
    del edges["source_dataset_id"]  # paired through the source's conditioning_data instead
    paired = {**HUB, "id": "paired", "conditioning_data": ["edges"]}
    cfg = load(tmp_path, source, given, paired, edges)
    hub = cfg.backend("hub").conditioning
    assert hub.generators[0]["type"] == "canny" and hub.generated_ids("hub") == ("hub_conditioning_canny",)
    masks = cfg.backend("masks")
    assert masks.dataset_type == "conditioning" and not masks.trains
    assert (masks.conditioning.type, masks.conditioning.source_dataset_id) == ("mask", "hub")
    assert cfg.backend("paired").conditioning.data == ("edges",)
    assert cfg.backend("edges").conditioning.source == "paired"
    text = refused(tmp_path, {**HUB, "conditioning": [{"captions": False}]}, {**given, "conditioning_type": "edge"})
    assert "each conditioning object needs a 'type'" in text and "'conditioning_type' must be one of" in text


def test_text_and_image_embeds_entries_name_where_caches_go(tmp_path):
    entries = [
        {**HUB, "text_embeds": "alt", "image_embeds": "vae"},
        {**HUB, "id": "plain"},
        {**HUB, "id": "own", "cache_dir_vae": "vae/own", "image_embeds": "vae"},
        TEXT,
        {"id": "alt", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/alt"},
        {"id": "vae", "type": "local", "dataset_type": "image_embeds", "cache_dir": "cache/latents"},
    ]
    cfg = load(tmp_path, *entries)
    base = tmp_path / "cfg"
    assert cfg.backend("hub").text_dir == base / "cache/alt/hub"
    assert cfg.backend("hub").vae_dir == base / "cache/latents/hub"
    assert cfg.backend("plain").text_dir == base / "cache/text/plain"
    assert cfg.backend("plain").vae_dir == base / "cache/plain/vae/plain"
    assert cfg.backend("own").vae_dir == base / "vae/own"
    text = refused(tmp_path, {**HUB, "image_embeds": "nope"}, {**HUB, "id": "t", "text_embeds": "vae"}, entries[-1])
    assert "'image_embeds' names 'nope', which is not an image_embeds entry (vae)" in text
    assert "'text_embeds' names 'vae', which is not a text_embeds entry" in text


def test_placeholders_expand_as_simpletuner_does(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL_FAMILY", "flux")
    monkeypatch.setenv("MY_BUCKET_PROMPT", "sks person")
    entry = {
        **HUB,
        "caption_strategy": "instanceprompt",
        "instance_prompt": "{env:MY_BUCKET_PROMPT}",
        "cache_dir_vae": "cache/vae/{model_family}/{id}",
        "cache_dir": "{output_dir}/cache/{id}",
    }
    b = load(tmp_path, entry, {**TEXT, "cache_dir": "cache/text/{model_family}"}).backend("hub")
    base = tmp_path / "cfg"
    assert b.captions.instance_prompts == ("sks person",)
    assert b.vae_dir == base / "cache/vae/flux/hub" and b.text_dir == base / "cache/text/flux/hub"
    assert b.cache_dir == base / "output/cache/hub"  # {output_dir} unset: a stand-in, and a warning that says where
    assert any(
        "{output_dir} (HF_ASSETS_OUTPUT_DIR is not set): it resolves to " + str(b.cache_dir) in w for w in b.warnings
    )


def test_an_unknown_model_family_is_a_stand_in_and_the_warning_says_where_caches_go(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_ASSETS_MODEL_FAMILY", raising=False)
    b = load(tmp_path, {**HUB, "cache_dir_vae": "cache/vae/{model_family}/hub"}).backend("hub")
    where = tmp_path / "cfg" / "cache/vae/default/hub"
    assert b.vae_dir == where
    assert any(f"{{model_family}} (HF_ASSETS_MODEL_FAMILY is not set): it resolves to {where}" in w for w in b.warnings)


def test_type_aws_reads_its_bucket_keys_and_never_shows_credentials(tmp_path):
    entry = {
        "id": "bucket",
        "type": "aws",
        "aws_bucket_name": "pictures",
        "aws_data_prefix": "train/",
        "aws_endpoint_url": "http://127.0.0.1:9000",
        "aws_region_name": None,
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI-secret",
        "caption_strategy": "textfile",
    }
    b = load(tmp_path, entry).backend("bucket")
    assert (b.s3.bucket, b.s3.prefix, b.s3.url) == ("pictures", "train/", "s3://pictures/train")
    options = b.s3.storage_options()
    assert options["key"] == "AKIDEXAMPLE" and options["endpoint_url"] == "http://127.0.0.1:9000"
    assert "client_kwargs" not in options  # a null region is unset, as in SimpleTuner
    assert "wJalrXUtnFEMI" not in repr(b) and "AKIDEXAMPLE" not in repr(b)
    assert "missing key 'aws_bucket_name'" in refused(tmp_path, {"id": "b", "type": "aws"})
    wrong = refused(tmp_path, {**entry, "aws_secret_access_key": ["wJalrXUtnFEMI-secret"]})
    assert "key 'aws_secret_access_key' must be a string, got a list (hidden)" in wrong and "wJalr" not in wrong


def test_cache_entries_of_other_storage_are_kept_on_local_disk_with_a_warning(tmp_path):
    cache = {
        "id": "an example backend for text embeds.",
        "dataset_type": "text_embeds",
        "default": True,
        "type": "aws",
        "aws_bucket_name": "embeds",
        "aws_secret_access_key": "secret-value",
        "cache_dir": "",
        "write_batch_size": 128,
    }
    b = load(tmp_path, HUB, cache).backend("hub")
    folder = tmp_path / "cfg" / "cache" / cache["id"]
    assert b.text_dir == folder / "hub"
    assert any(f"its caches are kept on local disk, in {folder}" in w for w in b.warnings)
    assert any("'type', 'aws_bucket_name', 'aws_secret_access_key' are accepted" in w for w in b.warnings)
    assert not any("secret-value" in w for w in b.warnings)


def test_refused_storage_types_say_why(tmp_path):
    text = refused(tmp_path, {"id": "c", "type": "csv", "csv_file": "x.csv"}, {**HUB, "id": "w", "type": "webshart"})
    assert "backend 'c': type \"csv\" is not supported: CSV URL lists are not read" in text
    assert "missing key 'type'" not in text
    assert "backend 'w': type \"webshart\" is not supported" in text


def test_the_choices_of_an_example_config_load_as_the_first_choice_with_a_warning(tmp_path):
    config = load(tmp_path, {**HUB, "crop_style": "random|center|corner", "crop_aspect": "square|preserve"})
    backend = config.backend("hub")
    assert backend.buckets.crop_style == "random" and backend.buckets.crop_aspect == "square"
    warned = " ".join(backend.warnings)
    assert "key 'crop_style' lists the choices of an example config" in warned and '"random"' in warned
    assert "key 'crop_aspect' lists the choices" in warned


def test_a_choice_list_with_a_bad_choice_is_refused_with_a_pick_one_hint(tmp_path):
    text = refused(tmp_path, {**HUB, "crop_style": "random|diagonal"})
    assert "key 'crop_style' must be one of" in text and 'pick one, e.g. "random"' in text


def test_nulls_mean_unset_and_zero_minimum_image_size_means_no_minimum(tmp_path):
    b = load(tmp_path, {**HUB, "instance_prompt": None, "minimum_image_size": 0, "crop": None}).backend("hub")
    assert b.buckets.minimum_image_size is None and b.buckets.crop is False and b.captions.instance_prompt is None


def test_a_misspelled_key_is_still_refused_with_its_did_you_mean(tmp_path):
    text = refused(tmp_path, {**HUB, "max_num_sample": 4}, {**HUB, "id": "b", "huggingface": {"video_colum": "v"}})
    assert "backend 'hub': unknown key 'max_num_sample'; did you mean 'max_num_samples'?" in text
    assert "unknown key 'video_colum'; did you mean 'video_column'?" in text


def test_an_eval_dataset_is_prepared_but_not_trained_on(tmp_path):
    b = load(tmp_path, {**HUB, "dataset_type": "eval"}).backend("hub")
    assert b.dataset_type == "eval" and not b.trains


def test_the_parquet_caption_strategy_needs_its_table_and_files(tmp_path):
    folder = {"id": "f", "type": "local", "instance_data_dir": "d", "caption_strategy": "parquet"}
    block = {"path": "meta/captions.jsonl", "width_column": "w", "height_column": "h"}
    b = load(tmp_path, {**folder, "parquet": block}).backend("f")
    table = b.captions.table
    assert table.path == str(tmp_path / "cfg/meta/captions.jsonl") and table.filename_column == "id"
    assert (table.caption_column, table.identifier_includes_extension) == ("description", False)
    assert any("keys 'width_column', 'height_column' are accepted but not used" in w for w in b.warnings)
    text = refused(tmp_path, folder, {**HUB, "caption_strategy": "parquet", "parquet": block})
    assert "backend 'f': caption_strategy \"parquet\" needs a \"parquet\" block with its 'path'" in text
    assert "backend 'hub': caption_strategy \"parquet\" reads files beside the images" in text


def test_a_known_key_in_the_wrong_place_says_where_it_belongs_not_did_you_mean_itself(tmp_path):
    text = refused(tmp_path, {**HUB, "lyrics_column": "lyrics"})
    assert "unknown key 'lyrics_column'; it belongs in the \"huggingface\" block" in text and "did you mean" not in text
