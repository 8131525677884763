"""Conditioning datasets when a config loads: generated ones become partitions, given ones find their source."""

import pytest

from hf_assets.config import ConfigError, load_config
from hf_assets_tests.conftest import PHOTOS_ENTRY, write_config

CONTROL = {"id": "control", "type": "local", "dataset_type": "conditioning", "instance_data_dir": "control"}


def load(tmp_path, *entries, strict=True):
    return load_config(write_config(tmp_path / "dataloader.json", list(entries)), strict=strict)


def test_each_generator_adds_a_partition_with_simpletuners_id_after_its_source(tmp_path):
    source = {**PHOTOS_ENTRY, "conditioning": [{"type": "canny"}, {"type": "jpeg_artifacts", "quality": 10}]}
    other = {**PHOTOS_ENTRY, "id": "other"}
    config = load(tmp_path, source, other)
    assert config.partition_ids == [
        "photos",
        "photos_conditioning_canny",
        "photos_conditioning_jpeg_artifacts",
        "other",
    ]
    canny = config.backend("photos_conditioning_canny")
    assert canny.dataset_type == "conditioning" and not canny.trains
    assert canny.conditioning.source == "photos" and canny.conditioning.type == "reference_strict"
    assert canny.conditioning.generator.kind == "canny" and canny.conditioning.strict
    assert canny.conditioning.captions == "source"  # no captions key: the source's
    assert (
        canny.buckets == config.backend("photos").buckets
        and canny.dataset_name == config.backend("photos").dataset_name
    )
    assert config.backend("photos_conditioning_jpeg_artifacts").conditioning.generator.params["quality"] == 10
    assert config.conditioning_of("photos") == ("photos_conditioning_canny", "photos_conditioning_jpeg_artifacts")


def test_a_generated_datasets_latents_go_under_its_sources_cache_dir_vae(tmp_path):
    source = {**PHOTOS_ENTRY, "cache_dir_vae": "vae/photos", "conditioning": {"type": "canny"}}
    config = load(tmp_path, source)
    assert config.backend("photos_conditioning_canny").vae_dir == tmp_path / "vae/photos/photos_conditioning_canny"


def test_a_generators_instance_data_dir_is_where_its_images_go_and_warns_nothing(tmp_path):
    edges = {"type": "canny", "instance_data_dir": "out/edges"}
    config = load(tmp_path, {**PHOTOS_ENTRY, "conditioning": [edges, {"type": "jpeg"}]})
    assert config.backend("photos_conditioning_canny").conditioning.output_dir == tmp_path / "out" / "edges"
    assert config.backend("photos_conditioning_jpeg").conditioning.output_dir is None  # unset: no files
    assert not [w for w in config.warnings if "instance_data_dir" in w]  # honoured: the encoder writes there


@pytest.mark.parametrize(("captions", "policy"), [(False, ()), ("minecraft", ("minecraft",)), (["a", "b"], ("a", "b"))])
def test_generated_captions_are_none_one_or_a_list(tmp_path, captions, policy):
    config = load(tmp_path, {**PHOTOS_ENTRY, "conditioning": {"type": "canny", "captions": captions}})
    assert config.backend("photos_conditioning_canny").conditioning.captions == policy


def test_a_given_dataset_pairs_with_the_backend_whose_conditioning_data_lists_it(tmp_path):
    config = load(tmp_path, CONTROL, {**PHOTOS_ENTRY, "conditioning_data": "control"})
    assert config.partition_ids == ["photos", "control"]  # after its source, whatever the file order
    control = config.backend("control")
    assert control.conditioning.source == "photos" and control.conditioning.type == "controlnet"
    assert control.conditioning.captions == "source"  # it sets no caption key: its source's, as SimpleTuner
    assert config.conditioning_of("photos") == ("control",)


def test_a_given_dataset_with_source_dataset_id_and_its_own_captions(tmp_path):
    control = {
        **CONTROL,
        "source_dataset_id": "photos",
        "conditioning_type": "reference_loose",
        "caption_strategy": "instanceprompt",
        "instance_prompt": "edit it",
    }
    config = load(tmp_path, PHOTOS_ENTRY, control)
    given = config.backend("control").conditioning
    assert given.source == "photos" and given.captions == "own" and not given.strict


def test_pairing_problems_name_the_backend_and_the_fix(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(
            tmp_path,
            {**PHOTOS_ENTRY, "conditioning_data": ["control", "missing"], "conditioning": {"type": "cany"}},
            {**PHOTOS_ENTRY, "id": "second", "conditioning_data": "control"},
            CONTROL,
            {**CONTROL, "id": "orphan"},
        )
    text = str(error.value)
    assert "backend 'photos': conditioning[0]: type the string \"cany\"" in text and "did you mean 'canny'" in text
    assert "conditioning_data names 'missing'" in text and "conditioning_data names 'control'" not in text
    assert "backend 'control': the conditioning_data of photos, second all list it" in text
    assert "backend 'orphan': a conditioning dataset needs its source" in text


def test_a_broken_conditioning_list_breaks_its_source_only(tmp_path):
    config = load(
        tmp_path,
        {**PHOTOS_ENTRY, "conditioning": {"type": "canny", "low_threshold": -1}},
        {**PHOTOS_ENTRY, "id": "other"},
        strict=False,
    )
    assert config.backend_ids == ["other"]
    assert "low_threshold -1 must be a number >= 0" in config.broken["photos"][0]


def test_video_backends_generate_nothing(tmp_path):
    clips = {**PHOTOS_ENTRY, "dataset_type": "video", "conditioning": {"type": "canny"}}
    with pytest.raises(ConfigError, match="generates from images, and this backend holds video"):
        load(tmp_path, clips)


def test_a_generated_id_may_not_shadow_a_backend(tmp_path):
    with pytest.raises(ConfigError, match="generated id 'photos_conditioning_canny' is taken"):
        load(
            tmp_path,
            {**PHOTOS_ENTRY, "conditioning": {"type": "canny"}},
            {**PHOTOS_ENTRY, "id": "photos_conditioning_canny"},
        )


def test_a_conditioning_dataset_without_a_model_of_its_own_is_encoded_by_its_sources(tmp_path):
    source = {**PHOTOS_ENTRY, "pretrained_model_name_or_path": "org/sdxl", "conditioning": {"type": "canny"}}
    own = {**CONTROL, "pretrained_model_name_or_path": "org/other"}
    config = load(tmp_path, source, {**own, "source_dataset_id": "photos"})
    assert config.backend("photos_conditioning_canny").model == "org/sdxl"  # generated: the source's
    assert config.backend("control").model == "org/other"  # given with its own: its own


def test_a_dataset_with_a_conditioning_type_is_a_conditioning_dataset_as_in_simpletuner(tmp_path):
    source = {**PHOTOS_ENTRY, "conditioning_data": ["refs"]}
    refs = {"id": "refs", "type": "local", "instance_data_dir": "refs", "conditioning_type": "reference_strict"}
    config = load(tmp_path, source, refs)
    assert config.backend("refs").dataset_type == "conditioning" and not config.backend("refs").trains
    assert config.backend("refs").conditioning.source == "photos"
    assert not any("refs" in w and "dataset_type" in w for w in config.warnings)  # no dataset_type given: silent
    labelled = load(tmp_path, source, {**refs, "dataset_type": "image"})
    assert labelled.backend("refs").dataset_type == "conditioning"
    assert any("key 'conditioning_type' makes it a conditioning dataset" in w for w in labelled.warnings)


def test_an_image_dataset_named_in_conditioning_data_becomes_its_conditioning_set_with_a_warning(tmp_path):
    source = {**PHOTOS_ENTRY, "conditioning_data": "refs"}
    refs = {"id": "refs", "type": "local", "instance_data_dir": "refs"}
    config = load(tmp_path, source, refs)
    assert config.backend("refs").dataset_type == "conditioning" and not config.backend("refs").trains
    assert config.backend("refs").conditioning.source == "photos"
    assert any("backend 'photos' names it in conditioning_data" in w for w in config.warnings)
    video = {**refs, "dataset_type": "video"}  # only image datasets are taken as conditioning sets
    with pytest.raises(ConfigError, match="no conditioning dataset of this config"):
        load(tmp_path, source, video)
