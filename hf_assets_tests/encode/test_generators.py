"""Conditioning generators over decoded pixels: deterministic per (backend, sample, parameters), parameters matter."""

import cv2
import numpy as np
import pytest

from hf_assets.config.conditioning_generators import parse_conditioning_entry
from hf_assets.encode.generators import generate, jpeg_round_trip, sample_rng
from hf_assets_tests.imagegen import photo as demo_photo

PIXEL_GENERATORS = ["canny", "superresolution", "jpeg_artifacts", "random_masks", "sdr"]
# a parameter change that must change each generator's output on a photo
CHANGED = {
    "canny": {"low_threshold": 20, "high_threshold": 60},
    "superresolution": {"blur_radius": 4.0},
    "jpeg_artifacts": {"quality": 5},
    "random_masks": {"min_coverage": 0.6, "max_coverage": 0.9},
    "sdr": {"exposure": 1.0},
}
RANDOM = ["superresolution", "jpeg_artifacts", "random_masks"]  # draw noise, qualities or shapes per sample


def config(name: str, **params):
    entry, problems = parse_conditioning_entry({"type": name, **params}, "test")
    assert problems == []
    return entry.generator


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A crop of a real photograph (edges, textures, smooth areas)."""
    return np.asarray(demo_photo(np.random.default_rng(4), 160, 120).convert("RGB"))


def run(generator, image, backend="photos", sample="7.jpg"):
    return generate(generator, image, sample_rng(backend, sample, generator))


@pytest.mark.parametrize("name", PIXEL_GENERATORS)
def test_output_is_an_rgb_image_of_the_input_size(name, photo):
    out = run(config(name), photo)
    assert out.shape == photo.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", PIXEL_GENERATORS)
def test_a_rerun_reproduces_the_output_bit_for_bit(name, photo):
    generator = config(name)
    assert np.array_equal(run(generator, photo), run(config(name), photo.copy()))


@pytest.mark.parametrize("name", RANDOM)
def test_random_draws_differ_per_sample_and_per_source_backend(name, photo):
    kwargs = {"add_noise": True} if name == "jpeg_artifacts" else {}
    generator = config(name, **kwargs)
    base = run(generator, photo)
    assert not np.array_equal(base, run(generator, photo, sample="8.jpg"))
    assert not np.array_equal(base, run(generator, photo, backend="other"))


@pytest.mark.parametrize("name", PIXEL_GENERATORS)
def test_a_changed_parameter_changes_the_output(name, photo):
    assert not np.array_equal(run(config(name), photo), run(config(name, **CHANGED[name]), photo))


def test_canny_is_opencvs_detector_on_the_luma_with_the_given_thresholds(photo):
    out = run(config("canny", low_threshold=100, high_threshold=200), photo)
    expected = cv2.Canny(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 100, 200)
    assert np.array_equal(out[:, :, 0], expected) and np.array_equal(out[:, :, 0], out[:, :, 2])
    assert set(np.unique(out)) <= {0, 255}
    low = run(config("canny", low_threshold=10, high_threshold=30), photo)
    assert (low > 0).sum() > (out > 0).sum() > 0  # lower thresholds keep more edges


def test_superresolution_blurs_away_detail(photo):
    out = run(config("superresolution", add_noise=False), photo).astype(float)
    detail = np.abs(np.diff(photo.astype(float), axis=1)).mean()
    assert np.abs(np.diff(out, axis=1)).mean() < 0.8 * detail
    assert abs(out.mean() - photo.mean()) < 3  # a blur keeps the brightness


def test_superresolution_noise_has_the_configured_level(photo):
    smooth = np.full_like(photo, 128)
    out = run(config("superresolution", blur_radius=0, noise_level=0.05), smooth).astype(float)
    assert abs((out - 128).std() / 255 - 0.05) < 0.005


def test_jpeg_quality_range_draws_one_quality_per_sample_within_the_range(photo):
    generator = config("jpeg_artifacts", quality_mode="range", quality_range=[10, 12])
    out = run(generator, photo)
    assert any(np.array_equal(out, jpeg_round_trip(photo, q)) for q in (10, 11, 12))


def test_lower_jpeg_quality_loses_more(photo):
    error = {q: np.abs(run(config("jpeg_artifacts", quality=q), photo).astype(int) - photo).mean() for q in (5, 60)}
    assert error[5] > error[60] > 0


def test_jpeg_block_enhancement_touches_only_block_boundaries(photo):
    plain = run(config("jpeg_artifacts"), photo).astype(int)
    blocky = run(config("jpeg_artifacts", enhance_blocks=True, block_noise_level=0.2), photo).astype(int)
    changed = np.any(plain != blocky, axis=2)
    rows, cols = np.nonzero(changed)
    assert changed.any() and np.all((rows % 8 == 0) | (cols % 8 == 0))


def test_sdr_rec709_at_unit_scale_is_the_identity_and_logc3_compresses(photo):
    assert np.array_equal(run(config("sdr"), photo), photo)
    logc3 = run(config("logc3_sdr"), photo).astype(int)
    order = np.argsort(photo[:, :, 0].ravel(), kind="stable")
    assert np.all(np.diff(logc3[:, :, 0].ravel()[order]) >= 0)  # monotone in the input
    assert logc3.std() < photo.astype(int).std()  # a log curve flattens the range
    brighter = run(config("sdr", exposure=1.0), photo).astype(int)
    assert np.all(brighter >= photo) and brighter.mean() > photo.mean()


def test_depth_is_not_a_pixel_generator(photo):
    with pytest.raises(ValueError, match="encode.depth"):
        run(config("depth"), photo)
