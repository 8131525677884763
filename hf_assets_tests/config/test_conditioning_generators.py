"""The `conditioning` list of a dataloader entry: generator names, parameters, captions and their problems."""

import pytest

from hf_assets.config.conditioning_generators import (
    PARAMETERS,
    generated_id,
    parse_captions,
    parse_conditioning,
)


def one(value):
    entries, problems = parse_conditioning(value, "backend 'photos'")
    assert problems == []
    (entry,) = entries
    return entry


def problems_of(value) -> list[str]:
    return parse_conditioning(value, "backend 'photos'")[1]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("canny", "canny"),
        ("edges", "canny"),
        ("superresolution", "superresolution"),
        ("lowres", "superresolution"),
        ("jpeg_artifacts", "jpeg_artifacts"),
        ("compression", "jpeg_artifacts"),
        ("random_masks", "random_masks"),
        ("inpainting", "random_masks"),
        ("sdr", "sdr"),
        ("logc3_sdr", "sdr"),
        ("depth", "depth"),
        ("depth_midas", "depth"),
    ],
)
def test_each_simpletuner_name_runs_its_generator_with_simpletuner_defaults(name, kind):
    entry = one({"type": name})
    assert entry.name == name and entry.generator.kind == kind
    assert set(entry.generator.params) == set(PARAMETERS[kind])
    assert entry.conditioning_type == "reference_strict"  # SimpleTuner's default for generated datasets
    assert entry.captions is None  # inherited from the source


def test_defaults_are_simpletuners():
    assert one({"type": "canny"}).generator.params == {"low_threshold": 50, "high_threshold": 100}
    assert one({"type": "superresolution"}).generator.params["blur_radius"] == 2.0
    assert one({"type": "jpeg_artifacts"}).generator.params["quality"] == 25
    assert one({"type": "random_masks"}).generator.params["max_coverage"] == 0.5
    assert one({"type": "logc3_sdr"}).generator.params["transform"] == "logc3"
    assert one({"type": "sdr"}).generator.params["transform"] == "rec709"
    assert one({"type": "sdr", "transform": "identity"}).generator.params["transform"] == "rec709"


def test_parameters_may_sit_in_the_object_or_in_params():
    flat = one({"type": "canny", "low_threshold": 100, "high_threshold": 200})
    block = one({"type": "canny", "params": {"low_threshold": 100, "high_threshold": 200}})
    assert flat.generator == block.generator
    assert flat.generator.params["high_threshold"] == 200


def test_one_parameter_in_both_places_with_different_values_is_a_problem():
    (problem,) = problems_of({"type": "canny", "low_threshold": 10, "params": {"low_threshold": 20}})
    assert "low_threshold" in problem and "keep one" in problem


def test_unknown_parameters_are_refused_with_the_closest_name():
    (problem,) = problems_of({"type": "canny", "params": {"low_treshold": 10}})
    assert "unknown canny parameter 'low_treshold'" in problem and "did you mean 'low_threshold'" in problem


def test_wrong_values_name_the_key_and_what_it_takes():
    problems = problems_of(
        [
            {"type": "jpeg_artifacts", "quality": 0, "quality_mode": "best"},
            {"type": "random_masks", "mask_types": ["star"], "min_coverage": 0.6, "max_coverage": 0.2},
        ]
    )
    text = "\n".join(problems)
    assert "conditioning[0]: quality 0 must be a whole number from 1 to 100" in text
    assert 'quality_mode the string "best" must be one of "fixed", "range", "random"' in text
    assert "conditioning[1]: mask_types" in text
    assert "min_coverage (0.6) is above max_coverage (0.2)" in text


def test_unsupported_and_unknown_types_say_why():
    assert "not supported" in problems_of({"type": "segmentation"})[0]
    assert "did you mean 'canny'" in problems_of({"type": "cany"})[0]
    assert "no 'type'" in problems_of({"low_threshold": 1})[0]


def test_conditioning_type_is_one_of_simpletuners_four():
    assert one({"type": "canny", "conditioning_type": "controlnet"}).conditioning_type == "controlnet"
    assert "must be one of" in problems_of({"type": "canny", "conditioning_type": "strict"})[0]


def test_captions_false_a_string_a_list_or_inherited():
    assert parse_captions(False, True, "w") == ((), [])
    assert parse_captions(" minecraft ", True, "w") == (("minecraft",), [])
    assert parse_captions(["a", "b"], True, "w") == (("a", "b"), [])
    assert parse_captions(None, False, "w") == (None, [])
    assert parse_captions([], True, "w")[1] and parse_captions(3, True, "w")[1]


def test_a_type_listed_twice_would_give_two_datasets_one_id():
    assert "listed twice" in problems_of([{"type": "canny"}, {"type": "canny", "low_threshold": 1}])[-1]


def test_generated_ids_are_simpletuners():
    assert generated_id("controlnet-512", "canny") == "controlnet-512_conditioning_canny"


def test_cache_settings_change_with_every_parameter_and_only_their_own():
    base = one({"type": "canny"}).generator
    changed = one({"type": "canny", "low_threshold": 51}).generator
    other = one({"type": "superresolution"}).generator
    assert base.cache_settings() != changed.cache_settings()
    assert base.cache_settings() == one({"type": "edges"}).generator.cache_settings()  # an alias is the same
    assert other.cache_settings() == one({"type": "superresolution"}).generator.cache_settings()
