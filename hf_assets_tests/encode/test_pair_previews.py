"""Preview tiles of conditioning datasets: each source sample beside its conditioning image, as encoded."""

import io
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
from PIL import Image

from hf_assets.config.conditioning_generators import parse_conditioning_entry
from hf_assets.config.schema import BackendConfig, BucketConfig
from hf_assets.data.backend_buckets import bucket_backend
from hf_assets.data.pairing import pair_generated, pair_given
from hf_assets.data.split import RawSplit
from hf_assets.encode.bucket_drawing import preview_grid_png
from hf_assets.encode.conditioning_pixels import ConditioningPixels
from hf_assets.encode.pair_previews import paired_samples
from hf_assets_tests.data.test_pairing import index_table
from hf_assets_tests.imagegen import photo

SIZES = [(300, 200), (200, 300), (240, 240), (320, 180)]
NAMES = [f"{i}.jpg" for i in range(len(SIZES))]
SOURCE = BackendConfig(
    id="photos",
    type="huggingface",
    dataset_type="image",
    cache_dir=Path("/cache"),
    buckets=BucketConfig(resolution=96, resolution_type="pixel", crop=True, crop_style="random"),
)


def split_of(images: list[np.ndarray], backend_id: str) -> RawSplit:
    blobs = []
    for image in images:
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="PNG")
        blobs.append({"bytes": out.getvalue(), "path": None})
    table = pa.table({"image": pa.array(blobs, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))})
    return RawSplit.from_table(backend_id, table, f"memory:{backend_id}", f"fp-{backend_id}", image_column="image")


def canny():
    entry, _ = parse_conditioning_entry({"type": "canny", "conditioning_type": "controlnet"}, "test")
    return entry.generator


def source_images():
    return [np.asarray(photo(np.random.default_rng(i), w, h).convert("RGB")) for i, (w, h) in enumerate(SIZES)]


def test_a_generated_pair_shows_the_source_crop_and_the_edges_of_those_very_pixels():
    images = source_images()
    source = bucket_backend(index_table(NAMES, SIZES), SOURCE).table
    pairs = pair_generated(source)
    pixels = ConditioningPixels("controlnet", canny(), "photos")
    tiles = list(paired_samples(pairs, source, split_of(images, "photos"), "image", pixels, count=3))
    assert len(tiles) == 6
    for source_tile, edges_tile in zip(tiles[::2], tiles[1::2]):
        assert source_tile.pixels.shape == edges_tile.pixels.shape
        gray = cv2.cvtColor(source_tile.pixels, cv2.COLOR_RGB2GRAY)
        assert np.array_equal(edges_tile.pixels[:, :, 0], cv2.Canny(gray, 50, 100))
        assert "generated" in edges_tile.caption
    png = preview_grid_png(tiles, [], "photos_conditioning_canny: source and conditioning")
    assert Image.open(io.BytesIO(png)).size[0] > 0


def test_a_given_strict_pair_shows_the_given_image_cropped_by_the_sources_box():
    images = source_images()
    source = bucket_backend(index_table(NAMES, SIZES), SOURCE).table
    inverted = split_of([255 - image for image in images], "control")
    pairs = pair_given(source, index_table(NAMES, SIZES), True, "control").table
    tiles = list(
        paired_samples(
            pairs, source, split_of(images, "photos"), "image", ConditioningPixels("controlnet"), inverted, "image"
        )
    )
    assert len(tiles) == 8 and all(tile.pixels is not None for tile in tiles)
    for source_tile, control_tile in zip(tiles[::2], tiles[1::2]):
        difference = control_tile.pixels.astype(int) - (255 - source_tile.pixels.astype(int))
        assert np.abs(difference).max() <= 1  # the same box of the same picture, inverted
