"""Random inpainting masks: coverage, shapes, soft edges, output modes."""

import numpy as np
import pytest

from hf_assets.config.conditioning_generators import parse_conditioning_entry
from hf_assets.encode.generators import generate, sample_rng
from hf_assets.encode.masks import feather
from hf_assets_tests.imagegen import photo

HARD = {"edge_blur": False, "edge_feather": False}


def masks(image, sample="3.jpg", **params):
    entry, problems = parse_conditioning_entry({"type": "random_masks", **params}, "test")
    assert problems == []
    return generate(entry.generator, image, sample_rng("photos", sample, entry.generator))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.asarray(photo(np.random.default_rng(2), 192, 128).convert("RGB"))


@pytest.mark.parametrize("shape", ["rectangle", "circle", "brush", "irregular"])
def test_each_shape_masks_part_of_the_image(image, shape):
    out = masks(image, mask_types=[shape], **HARD)
    covered = (out[:, :, 0] > 0).mean()
    assert 0 < covered < 1
    assert set(np.unique(out)) <= {0, 255}  # hard edges: the shape is filled with mask_value


def test_coverage_stops_growing_once_the_drawn_target_is_reached(image):
    for sample in range(12):
        out = masks(image, sample=f"{sample}.jpg", mask_types=["rectangle"], min_masks=8, max_masks=8, **HARD)
        covered = (out[:, :, 0] > 0).mean()
        # no region is added once the coverage reaches the target (at most max_coverage = 0.5); one rectangle
        # covers at most 0.4 * 0.4 of the image, so the mask ends below the target plus one rectangle
        assert covered < 0.5 + 0.16 + 0.01


def test_soft_edges_ramp_from_the_mask_to_the_background(image):
    out = masks(image, mask_types=["rectangle"], edge_blur=False)
    values = np.unique(out[:, :, 0])
    assert 0 in values and 255 in values and len(values) > 10


def test_feather_is_half_on_the_edge_and_reaches_both_ends():
    inside = np.zeros((64, 64), bool)
    inside[16:48, 16:48] = True
    soft = feather(inside, half_width=4)
    assert soft[32, 32] == 1.0 and soft[0, 0] == 0.0
    assert 0.4 < soft[32, 16] <= 0.6 and 0.4 <= soft[32, 15] < 0.6  # the two pixels around the edge
    assert np.all(np.diff(soft[32, :32]) >= 0)  # rises monotonically into the mask


def test_a_masked_image_dataset_shares_the_masks_of_a_mask_dataset_of_one_source(image):
    mask = masks(image, **HARD)[:, :, 0] > 0
    filled = masks(image, output_mode="masked_image", **HARD)
    assert np.all(filled[mask] == 255)
    assert np.array_equal(filled[~mask], image[~mask])


def test_invert_and_mask_value(image):
    plain = masks(image, **HARD)[:, :, 0].astype(int)
    inverted = masks(image, invert_mask=True, **HARD)[:, :, 0].astype(int)
    assert np.array_equal(plain + inverted, np.full_like(plain, 255))
    half = masks(image, mask_value=128, **HARD)[:, :, 0]
    assert set(np.unique(half)) == {0, 128}


def test_weights_pick_only_weighted_shapes(image):
    for sample in range(6):
        out = masks(
            image,
            sample=f"{sample}.jpg",
            mask_types=["rectangle", "circle"],
            mask_type_weights=[0, 1],
            min_masks=1,
            max_masks=1,
            **HARD,
        )
        rows, cols = np.nonzero(out[:, :, 0])
        box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        assert 0.7 < len(rows) / box < 0.85  # a disc fills pi/4 of its box; a rectangle would fill all of it
