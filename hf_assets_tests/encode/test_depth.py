"""Depth maps from a real transformers DPTForDepthEstimation (tiny, random weights, loaded with from_pretrained)."""

import numpy as np
import pytest

from hf_assets.encode.depth import DepthPreprocessing, load_depth_model
from hf_assets.encode.model_files import ModelNotFound
from hf_assets.testing.tiny_pipelines import build_tiny_dpt
from hf_assets_tests.imagegen import photo


@pytest.fixture(scope="module")
def depth_folder(tmp_path_factory):
    return build_tiny_dpt(tmp_path_factory.mktemp("tiny-dpt"))


@pytest.fixture(scope="module")
def estimator(depth_folder):
    return load_depth_model(str(depth_folder))


def images(count: int, width: int = 72, height: int = 48) -> list[np.ndarray]:
    return [np.asarray(photo(np.random.default_rng(seed), width, height).convert("RGB")) for seed in range(count)]


def test_the_model_is_transformers_dpt_loaded_from_the_folder(estimator, depth_folder):
    from transformers import DPTForDepthEstimation

    assert type(estimator.model) is DPTForDepthEstimation
    assert not estimator.model.training
    assert estimator.preprocessing.size == (32, 32)  # from the folder's preprocessor_config.json
    assert estimator.identity.startswith("local:")


def test_each_map_has_the_input_size_and_spans_the_full_range(estimator):
    maps = estimator(images(3))
    for depth in maps:
        assert depth.shape == (48, 72, 3) and depth.dtype == np.uint8
        assert np.array_equal(depth[:, :, 0], depth[:, :, 2])
        assert depth.min() == 0 and depth.max() == 255


def test_maps_are_deterministic_and_differ_between_images(estimator):
    batch = images(2)
    first, again = estimator(batch), estimator([b.copy() for b in batch])
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    alone = estimator(batch[:1])[0].astype(int)
    assert np.abs(alone - first[0].astype(int)).max() <= 1  # batching changes float rounding at most


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("shape", [(480, 640), (777, 333), (96, 96)])
def test_input_sizes_follow_transformers_dpt_rule(keep, shape):
    try:  # transformers 5 keeps it in the Pillow processor's module, 4.x in image_processing_dpt
        from transformers.models.dpt.image_processing_pil_dpt import get_resize_output_image_size
    except ImportError:
        from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size

    rule = DepthPreprocessing(size=(384, 384), keep_aspect_ratio=keep, multiple=32)
    expected = get_resize_output_image_size(np.zeros((3, *shape)), (384, 384), keep, 32)
    expected = (expected.height, expected.width) if hasattr(expected, "height") else tuple(expected)
    assert rule.input_size(*shape) == expected


def test_a_folder_without_a_dpt_model_is_refused_naming_the_setting(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"], "model_type": "bert"}')
    with pytest.raises(ModelNotFound, match="HF_ASSETS_DEPTH_MODEL=.*DPTForDepthEstimation"):
        load_depth_model(str(tmp_path))
