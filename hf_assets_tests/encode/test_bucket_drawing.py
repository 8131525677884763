"""Pictures of a bucket table: labels with target sizes, an inline histogram, and samples exactly as encoded."""

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.preview_rows import choose_preview_rows, preview_sources
from hf_assets.data.sources import open_split
from hf_assets.encode import bucket_drawing
from hf_assets.encode.image_source import iter_images
from hf_assets.encode.images import load_pixels
from hf_assets_tests.conftest import photo_rows, write_hub_dataset
from hf_assets_tests.encode.test_image_media import ENTRY, prepare


def test_bucket_labels_show_aspect_and_target_size():
    table = pa.table(
        {
            "bucket": ["1.0", "1.0", "0.78", "0.78", "0.78"],
            "target_width": [512, 512, 448, 448, 450],
            "target_height": [512, 512, 576, 576, 578],
        }
    )
    assert bucket_drawing.bucket_labels(table) == {"1.0": "1.0 · 512×512", "0.78": "0.78 · 448×576 +1"}


def test_histogram_svg_is_small_enough_to_show_inline_for_a_few_buckets():
    histogram = [(str(round(0.5 + i / 10, 2)), 10 * i + 1) for i in range(7)]
    labels = {b: f"{b} · {512 + 64 * i}×512" for i, (b, _) in enumerate(histogram)}
    markdown = bucket_drawing.svg_markdown(bucket_drawing.histogram_svg(histogram, labels), "h")
    assert markdown.startswith("![h](data:image/svg+xml;base64,") and len(markdown) < bucket_drawing.INLINE_LIMIT
    assert "704x512" in bucket_drawing.histogram_svg(histogram, labels)


def kept_choice(split, backend, buckets, count):
    """The bucket-table rows a preview of `count` kept samples shows, and their image sources."""
    rows = buckets.column("row").to_numpy()
    choice = choose_preview_rows(
        split, backend.image_column, (rows, buckets.column("bucket")), (rows[:0], pa.array([], pa.string())), count, 0
    )
    chosen = [row for row, _ in choice.kept]
    table = buckets.take(pa.array([rows.tolist().index(r) for r in chosen], pa.int64()))
    return table, preview_sources(split, backend.image_column, chosen)[0]


def test_kept_samples_are_the_exact_pixels_the_encoder_gets(tmp_path):
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(16))
    backend, split, buckets = prepare(tmp_path)
    chosen, sources = kept_choice(split, backend, buckets, 3)
    samples = list(bucket_drawing.kept_samples(chosen, sources, bucket_drawing.bucket_labels(buckets)))
    assert len(samples) == 6
    assert len(set(chosen.column("bucket").to_pylist())) == min(3, len(set(buckets["bucket"].to_pylist())))
    expected_sources = list(iter_images(split, backend.image_column, chosen.column("row").to_numpy()))
    assert sources == expected_sources  # the pages read give the bytes the encoder reads
    for record, source, (whole, encoded) in zip(chosen.to_pylist(), sources, zip(samples[::2], samples[1::2])):
        box = (
            record["crop_left"],
            record["crop_top"],
            record["crop_left"] + record["target_width"],
            record["crop_top"] + record["target_height"],
        )
        tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
        expected = load_pixels(
            source,
            tile,
            (record["resize_width"], record["resize_height"]),
            box,
            expected_size=(record["source_width"], record["source_height"]),
        )
        assert encoded.pixels.shape == (record["target_height"], record["target_width"], 3)
        assert np.array_equal(encoded.pixels, expected)
        assert whole.crop == box and whole.pixels.shape[:2] == (record["resize_height"], record["resize_width"])
        assert record["bucket"] in encoded.title and encoded.caption == record["caption"]


def test_dropped_samples_show_several_reasons_with_thumbnails(tmp_path):
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(24))
    backend = parse_config([{**ENTRY, "minimum_image_size": 300, "resolution_type": "pixel"}], tmp_path / "d.json")
    backend = backend.backends[0]
    split = open_split(backend)
    _, dropped = build_filtered_index(split, backend)
    lost = dropped.rows
    choice = choose_preview_rows(
        split,
        backend.image_column,
        (np.array([], np.int64), pa.array([], pa.string())),
        (lost.column("row").to_numpy(), lost.column("reason")),
        0,
        4,
    )
    rows = [row for row, _ in choice.dropped]
    sources, _ = preview_sources(split, backend.image_column, rows)
    names = [f"{row}.jpg" for row in rows]
    samples = list(bucket_drawing.dropped_samples(names, [reason for _, reason in choice.dropped], sources))
    reasons = {s.caption for s in samples}
    assert {"unreadable_image", "too_small"} <= reasons
    assert all(s.title.endswith(": dropped") for s in samples)
    unreadable = next(s for s in samples if s.caption == "unreadable_image")
    assert unreadable.pixels is None and next(s for s in samples if s.caption == "too_small").pixels is not None


def test_grid_png_has_a_tile_per_sample(tmp_path):
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(8))
    backend, split, buckets = prepare(tmp_path)
    chosen, sources = kept_choice(split, backend, buckets, 2)
    kept = list(bucket_drawing.kept_samples(chosen, sources, bucket_drawing.bucket_labels(buckets)))
    png = bucket_drawing.preview_grid_png(kept, [bucket_drawing.Sample("9.jpg: dropped", "too_small", None)], "photos")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > image.height > 200


def test_a_caption_with_glyphs_the_font_lacks_draws_a_grid_without_warnings(recwarn):
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    kept = [bucket_drawing.Sample("a.jpg", "a red fox \U0001f98a on \U0001f7eb bricks", pixels, (4, 4, 60, 44))]
    png = bucket_drawing.preview_grid_png(kept, [], "emoji")
    assert Image.open(io.BytesIO(png)).size[0] > 0
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
