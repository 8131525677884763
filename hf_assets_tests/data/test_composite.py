"""Composite tile boxes: each layout, edge indices, sizes that do not divide; the loader refuses bad settings."""

import io
import json

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from hf_assets.config import ConfigError, load_config
from hf_assets.config.schema import CompositeConfig
from hf_assets.data.composite import grid_shape, tile_boxes
from hf_assets.data.header_sizes import image_sizes, orientation_transpose
from hf_assets_tests.imagegen import pixels

WIDTHS = np.array([1024, 1001, 3, 640, 4096], dtype=np.int32)
HEIGHTS = np.array([512, 777, 5, 1280, 1000], dtype=np.int32)


def composite(count: int, index: int, layout: str = "horizontal") -> CompositeConfig:
    return CompositeConfig(enabled=True, image_count=count, select_index=index, layout=layout)


def test_disabled_config_keeps_the_whole_image():
    boxes = tile_boxes(WIDTHS, HEIGHTS, CompositeConfig(enabled=False, image_count=4, select_index=3))
    assert boxes.tolist() == [[0, 0, w, h] for w, h in zip(WIDTHS, HEIGHTS)]


def test_boxes_are_int32_with_one_row_per_image():
    boxes = tile_boxes(WIDTHS, HEIGHTS, composite(2, 1))
    assert boxes.dtype == np.int32 and boxes.shape == (len(WIDTHS), 4)


@pytest.mark.parametrize("index", [0, 3])
def test_horizontal_tile_is_width_over_count_at_full_height(index):
    boxes = tile_boxes(np.array([1024, 1001]), np.array([256, 300]), composite(4, index))
    assert boxes.tolist() == [[index * 256, 0, (index + 1) * 256, 256], [index * 250, 0, (index + 1) * 250, 300]]


@pytest.mark.parametrize("index", [0, 2])
def test_vertical_tile_is_height_over_count_at_full_width(index):
    boxes = tile_boxes(np.array([512, 640]), np.array([1536, 1000]), composite(3, index, "vertical"))
    assert boxes.tolist() == [[0, index * 512, 512, (index + 1) * 512], [0, index * 333, 640, (index + 1) * 333]]


@pytest.mark.parametrize(
    "count,shape",
    [
        (1, (1, 1)),
        (2, (2, 1)),
        (3, (2, 2)),
        (4, (2, 2)),
        (5, (3, 2)),
        (6, (3, 2)),
        (7, (3, 3)),
        (9, (3, 3)),
        (10, (4, 3)),
    ],
)
def test_grid_has_ceil_sqrt_columns_and_ceil_count_over_columns_rows(count, shape):
    assert grid_shape(count) == shape


@pytest.mark.parametrize(
    "index,box", [(0, [0, 0, 341, 500]), (2, [682, 0, 1023, 500]), (3, [0, 500, 341, 1000]), (4, [341, 500, 682, 1000])]
)
def test_grid_tiles_run_left_to_right_then_top_to_bottom(index, box):
    boxes = tile_boxes(np.array([1024]), np.array([1001]), composite(5, index, "grid"))  # 3 columns x 2 rows
    assert boxes.tolist() == [box]


def test_remainder_pixels_are_dropped_when_the_size_does_not_divide():
    boxes = tile_boxes(np.array([1001]), np.array([7]), composite(3, 2))
    assert boxes.tolist() == [[666, 0, 999, 7]]  # columns 999 and 1000 belong to no tile


@pytest.mark.parametrize("layout", ["horizontal", "vertical", "grid"])
def test_tiles_of_one_image_are_disjoint_equal_and_inside_it(layout):
    rng = np.random.default_rng(1)
    widths, heights = rng.integers(1, 5000, 200), rng.integers(1, 5000, 200)
    count = 6
    boxes = np.stack([tile_boxes(widths, heights, composite(count, i, layout)) for i in range(count)], axis=1)
    left, top, right, bottom = np.moveaxis(boxes, 2, 0)
    assert (left >= 0).all() and (top >= 0).all()
    assert (right <= widths[:, None]).all() and (bottom <= heights[:, None]).all()
    areas = (right - left) * (bottom - top)
    assert (areas == areas[:, :1]).all()
    assert (areas.sum(axis=1) <= widths * heights).all()
    for image in rng.choice(200, 10, replace=False):  # paint every tile: no pixel is claimed twice
        canvas = np.zeros((heights[image], widths[image]), dtype=np.int32)
        for left_, top_, right_, bottom_ in boxes[image]:
            canvas[top_:bottom_, left_:right_] += 1
        assert canvas.max() <= 1


def test_image_narrower_than_the_tile_count_gets_an_empty_box():
    boxes = tile_boxes(np.array([3]), np.array([5]), composite(4, 1))
    assert boxes.tolist() == [[0, 0, 0, 5]]


def test_box_crops_the_selected_tile_out_of_an_exif_rotated_strip():
    tiles = [pixels(40, 30, seed=s) for s in range(3)]
    displayed = Image.fromarray(np.concatenate(tiles, axis=1))  # a 120 x 30 horizontal strip
    stored = displayed.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back on display
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "PNG", exif=exif.tobytes())
    widths, heights = image_sizes(pa.array([buf.getvalue()], type=pa.binary()))
    box = tile_boxes(widths.to_numpy(), heights.to_numpy(), composite(3, 1))[0]
    decoded = Image.open(io.BytesIO(buf.getvalue())).transpose(orientation_transpose(6))
    assert np.array_equal(np.asarray(decoded.crop(tuple(box.tolist()))), tiles[1])


def test_mismatched_width_and_height_arrays_are_rejected():
    with pytest.raises(ValueError, match="equal length"):
        tile_boxes(np.array([1, 2]), np.array([1]), composite(1, 0))


def config_problems(tmp_path, composite_block: dict) -> str:
    """The loader's error for a backend with this composite_image_config (tile_boxes trusts what it lets through)."""
    path = tmp_path / "dataloader.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "tiles",
                    "type": "huggingface",
                    "dataset_name": "user/tiles",
                    "caption_strategy": "huggingface",
                    "metadata_backend": "huggingface",
                    "composite_image_config": composite_block,
                }
            ]
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


@pytest.mark.parametrize("index", [-1, 4])
def test_select_index_outside_image_count_is_refused_by_the_loader(tmp_path, index):
    message = config_problems(tmp_path, {"enabled": True, "image_count": 4, "select_index": index})
    assert "backend 'tiles'" in message and "select_index" in message


@pytest.mark.parametrize("count", [0, -2, 1.5, True])
def test_image_count_below_one_or_not_an_integer_is_refused_by_the_loader(tmp_path, count):
    message = config_problems(tmp_path, {"enabled": True, "image_count": count, "select_index": 0})
    assert "backend 'tiles'" in message and "image_count" in message


def test_unknown_layout_is_refused_by_the_loader(tmp_path):
    message = config_problems(tmp_path, {"enabled": True, "image_count": 2, "layout": "diagonal"})
    assert "layout" in message and "horizontal" in message
