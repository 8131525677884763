"""A conditioning sample's pixels for the encoder, what is stored beside its latents, and what keys its cache."""

import numpy as np
import pytest
import torch

from hf_assets.config.conditioning_generators import parse_conditioning_entry
from hf_assets.encode.conditioning_pixels import ConditioningPixels
from hf_assets.encode.depth import load_depth_model
from hf_assets.encode.generators import generate, sample_rng
from hf_assets.testing.tiny_pipelines import build_tiny_dpt
from hf_assets_tests.imagegen import photo


def generator(name: str, **params):
    entry, problems = parse_conditioning_entry({"type": name, **params}, "test")
    assert problems == []
    return entry.generator


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [np.asarray(photo(np.random.default_rng(seed), 96, 64).convert("RGB")) for seed in range(3)]


def test_a_generated_sample_is_its_source_pixels_through_the_generator_seeded_by_the_source(images):
    masks = generator("random_masks")
    pixels = ConditioningPixels("mask", masks, source_id="photos")
    out = pixels.sample("4.jpg", images[0])
    assert np.array_equal(out, generate(masks, images[0], sample_rng("photos", "4.jpg", masks)))
    assert np.array_equal(out, pixels.sample("4.jpg", images[0].copy()))
    assert pixels.batch([out]) == [out]  # pixel generators run per sample


def test_a_given_image_passes_through(images):
    pixels = ConditioningPixels("controlnet")
    assert pixels.sample("4.jpg", images[1]) is images[1]


def test_depth_maps_are_made_per_batch_by_a_model_loaded_once(tmp_path, images):
    folder = build_tiny_dpt(tmp_path / "dpt")
    loads = []

    def loader():
        loads.append(1)
        return load_depth_model(str(folder))

    pixels = ConditioningPixels("controlnet", generator("depth"), "photos", depth_loader=loader)
    assert pixels.batched and pixels.sample("0.jpg", images[0]) is images[0]
    first = pixels.batch(images)
    again = pixels.batch(images)
    assert len(loads) == 1
    assert all(d.shape == (64, 96, 3) and np.array_equal(d, e) for d, e in zip(first, again))
    with pytest.raises(ValueError, match="HF_ASSETS_DEPTH_MODEL"):
        ConditioningPixels("controlnet", generator("depth"), "photos").batch(images)


def test_controlnet_stores_the_control_image_and_mask_datasets_the_mask(images):
    control = ConditioningPixels("controlnet").stored(images[:2])
    assert [set(s) for s in control] == [{"pixels"}, {"pixels"}]
    assert control[0]["pixels"].dtype == torch.uint8 and control[0]["pixels"].shape == (3, 64, 96)
    assert torch.equal(control[0]["pixels"].permute(1, 2, 0), torch.from_numpy(images[0].copy()))
    mask = ConditioningPixels("mask").stored(images[:1])[0]["mask"]
    assert mask.shape == (1, 64, 96) and torch.equal(mask[0], torch.from_numpy(images[0][:, :, 0].copy()))
    assert ConditioningPixels("reference_strict").stored(images[:1]) == [{}]


def test_the_cache_key_settings_follow_the_parameters_and_only_their_own():
    canny = ConditioningPixels("controlnet", generator("canny"), "photos").cache_settings()
    assert canny == ConditioningPixels("controlnet", generator("edges"), "photos").cache_settings()
    assert canny != ConditioningPixels("controlnet", generator("canny", low_threshold=60), "photos").cache_settings()
    assert canny != ConditioningPixels("reference_strict", generator("canny"), "photos").cache_settings()
    given = ConditioningPixels("controlnet").cache_settings()
    assert "generator" not in given  # a given dataset's latents are keyed by its own images' bytes
    depth = ConditioningPixels("controlnet", generator("depth"), "photos")
    assert depth.cache_settings("local:a") != depth.cache_settings("local:b")
