"""Pairing conditioning datasets with their source, row by row: names, strict geometry, drops on both sides."""

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from hf_assets.config.schema import BucketConfig
from hf_assets.data.buckets import assign_buckets
from hf_assets.data.pairing import match_names, pair_generated, pair_given
from hf_assets.encode.images import load_pixels
from hf_assets_tests.imagegen import photo

RANDOM_CROPS = BucketConfig(resolution=128, resolution_type="pixel", crop=True, crop_style="random")
GEOMETRY = ["bucket", "target_width", "target_height", "resize_width", "resize_height", "crop_left", "crop_top"]


def index_table(names, sizes, captions=None) -> pa.Table:
    """A filtered index of real shape: file name, split row, effective and full size, tile box, captions."""
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    captions = captions or [f"caption of {n}" for n in names]
    return pa.table(
        {
            "filename": pa.array(names, pa.string()),
            "row": pa.array(range(len(names)), pa.int64()),
            "caption": pa.array(captions, pa.string()),
            "captions": pa.array([[c] for c in captions], pa.list_(pa.string())),
            "width": pa.array(widths, pa.int32()),
            "height": pa.array(heights, pa.int32()),
            "source_width": pa.array(widths, pa.int32()),
            "source_height": pa.array(heights, pa.int32()),
            "tile_left": pa.array([0] * len(names), pa.int32()),
            "tile_top": pa.array([0] * len(names), pa.int32()),
            "tile_right": pa.array(widths, pa.int32()),
            "tile_bottom": pa.array(heights, pa.int32()),
        }
    )


def buckets(names, sizes, cfg=RANDOM_CROPS, backend="photos", captions=None) -> pa.Table:
    return assign_buckets(index_table(names, sizes, captions), cfg, backend, seed_by_filename=True)


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def training_pixels(data: bytes, record: dict) -> np.ndarray:
    """The pixels the encoder takes for one bucket-table row (its own tile, the resize and crop box it was given)."""
    tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
    crop = (
        record["crop_left"],
        record["crop_top"],
        record["crop_left"] + record["target_width"],
        record["crop_top"] + record["target_height"],
    )
    return load_pixels(data, tile, (record["resize_width"], record["resize_height"]), crop)


def test_names_match_by_relative_path_as_simpletuner():
    source = pa.array(["animals/cat.jpg", "animals/dog.jpg", "0.jpg", "1.jpg"])
    given = pa.array(["1.jpg", "animals/dog.jpg", "animals/cow.jpg", "0.jpg", "cat.jpg"])
    assert match_names(source, given).tolist() == [3, 1, -1, 2, -1]


def test_a_unique_stem_pairs_across_extensions_and_an_ambiguous_one_does_not():
    source = pa.array(["a/cat.jpg", "a/dog.jpg", "a/dog.webp", "b/owl.jpg"])
    given = pa.array(["a/cat.png", "a/dog.png", "b/owl.jpg", "b/owl.png"])
    # cat: unique stem on both sides; dog: two source files share the stem; owl.png: its stem is taken exactly
    assert match_names(source, given).tolist() == [0, -1, 3, -1]


def test_strict_pairs_take_the_source_samples_bucket_resize_and_crop():
    names = [f"{i}.png" for i in range(6)]
    sizes = [(300, 200), (200, 300), (256, 256), (640, 480), (333, 517), (900, 300)]
    source = buckets(names, sizes)
    half = [(w // 2, h // 2) for w, h in sizes]
    pairing = pair_given(source, index_table(names, half), strict=True, conditioning_id="photos-control")
    table = pairing.table
    assert table.column("filename").to_pylist() == names
    assert table.column("source_filename").to_pylist() == names
    for column in GEOMETRY:
        assert table.column(column).to_pylist() == source.column(column).to_pylist()
    assert table.column("width").to_pylist() == [w for w, _ in half]  # its own image, resized to the source's
    assert pairing.dropped.num_rows == 0 and pairing.source_dropped.num_rows == 0


def test_strict_conditioning_pixels_align_with_the_source_crop_pixel_for_pixel():
    names = [f"{i}.png" for i in range(4)]
    images = [
        np.asarray(photo(np.random.default_rng(i), w, h).convert("RGB"))
        for i, (w, h) in enumerate([(300, 200), (200, 300), (320, 180), (160, 160)])
    ]
    sizes = [(a.shape[1], a.shape[0]) for a in images]
    source = buckets(names, sizes)
    # the control images: each source picture with its colours inverted, stored as its own file
    table = pair_given(source, index_table(names, sizes), strict=True, conditioning_id="inverted").table
    for image, src, cond in zip(images, source.to_pylist(), table.to_pylist()):
        theirs = training_pixels(png(image), src).astype(int)
        mine = training_pixels(png(255 - image), cond).astype(int)
        assert mine.shape == theirs.shape == (src["target_height"], src["target_width"], 3)
        # inversion commutes with the crop, and with the LANCZOS resize up to its rounding
        assert np.abs(mine - (255 - theirs)).max() <= 1
        same = training_pixels(png(image), cond)  # the very same picture as control image: identical pixels
        assert np.array_equal(same, theirs.astype(np.uint8))


def test_a_strict_pair_of_another_aspect_is_dropped_on_both_sides():
    names = ["a.png", "b.png"]
    source = buckets(names, [(300, 200), (300, 200)])
    pairing = pair_given(source, index_table(names, [(150, 100), (200, 200)]), True, "control")
    assert pairing.table.column("filename").to_pylist() == ["a.png"]
    assert pairing.dropped.to_pylist() == [{"row": 1, "filename": "b.png", "reason": "conditioning_aspect_mismatch"}]
    assert pairing.source_dropped.column("reason").to_pylist() == ["conditioning_aspect_mismatch: control"]


def test_rows_without_a_partner_are_dropped_with_a_reason_on_both_sides():
    source = buckets(["a.png", "b.png", "c.png"], [(300, 200)] * 3)
    given = index_table(["a.png", "c.png", "extra.png"], [(300, 200)] * 3)
    pairing = pair_given(source, given, strict=True, conditioning_id="control")
    assert pairing.source_dropped.to_pylist() == [
        {"row": 1, "filename": "b.png", "reason": "no_conditioning_pair: control"}
    ]
    assert pairing.dropped.to_pylist() == [{"row": 2, "filename": "extra.png", "reason": "no_source_sample"}]


def test_loose_references_keep_their_own_bucket():
    names = ["a.png", "b.png"]
    source = buckets(names, [(300, 200), (200, 300)])
    own = buckets(names, [(256, 256), (256, 256)], BucketConfig(resolution=64, resolution_type="pixel"), "refs")
    table = pair_given(source, own, strict=False, conditioning_id="refs").table
    assert table.column("bucket").to_pylist() == ["1.0", "1.0"]
    assert table.column("target_width").to_pylist() == [64, 64]
    assert table.column("source_filename").to_pylist() == names


@pytest.mark.parametrize(
    ("policy", "captions"),
    [
        ("own", [["caption of a.png"]]),
        ("source", [["source caption"]]),
        (("enhance", "sharpen"), [["enhance", "sharpen"]]),
        ((), [[]]),
    ],
)
def test_captions_are_their_own_the_sources_fixed_or_none(policy, captions):
    source = buckets(["a.png"], [(300, 200)], captions=["source caption"])
    table = pair_given(source, index_table(["a.png"], [(300, 200)]), True, "c", captions=policy).table
    assert table.column("captions").to_pylist() == captions


def test_a_generated_dataset_has_one_sample_per_source_sample_with_its_geometry():
    names = [f"{i}.jpg" for i in range(5)]
    source = buckets(names, [(300, 200), (200, 300), (640, 480), (256, 256), (900, 300)])
    table = pair_generated(source, captions=("minecraft",))
    assert table.column("filename").to_pylist() == table.column("source_filename").to_pylist() == names
    for column in GEOMETRY + ["row", "tile_left", "tile_right", "source_width"]:
        assert table.column(column).to_pylist() == source.column(column).to_pylist()
    assert table.column("captions").to_pylist() == [["minecraft"]] * 5
    assert pair_generated(source).column("captions").to_pylist() == source.column("captions").to_pylist()
