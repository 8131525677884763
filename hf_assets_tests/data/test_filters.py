"""Drop reasons: one per dropped row, the first failing rule in precedence order; counts per reason."""

import numpy as np
import pyarrow as pa
import pytest

from hf_assets.config.schema import BucketConfig, FilterConfig
from hf_assets.data.columns import MissingColumn
from hf_assets.data.filters import DROP_REASONS, count_reasons, drop_reasons

QUALITY = pa.struct([("clip_score", pa.float32()), ("aesthetic_score", pa.float64()), ("resolution", pa.float32())])
SCORES = pa.map_(pa.string(), pa.float64())


def gallery_table() -> pa.Table:
    """Eight rows like a curated hub dataset: struct and map quality scores, a collection label."""
    return pa.table(
        {
            "image": pa.array([{"bytes": b"\xff\xd8\xff", "path": None}] * 8),
            "quality_assessment": pa.array(
                [
                    {"clip_score": 0.35, "aesthetic_score": 6.5, "resolution": 0.9},
                    {"clip_score": 0.29, "aesthetic_score": 7.0, "resolution": 0.9},  # clip too low
                    {"clip_score": 0.40, "aesthetic_score": None, "resolution": 0.9},  # null metric
                    None,  # no scores at all
                    {"clip_score": 0.30, "aesthetic_score": 5.0, "resolution": 0.1},  # exactly at thresholds
                    {"clip_score": 0.50, "aesthetic_score": 9.0, "resolution": 1.0},
                    {"clip_score": 0.50, "aesthetic_score": 4.9, "resolution": 1.0},  # aesthetic too low
                    {"clip_score": 0.31, "aesthetic_score": 5.5, "resolution": 1.0},
                ],
                QUALITY,
            ),
            "scores": pa.array(
                [
                    [("clip_score", 0.35), ("aesthetic_score", 6.5)],
                    [("aesthetic_score", 7.0)],  # clip_score missing
                    [("clip_score", 0.40), ("aesthetic_score", None)],
                    None,
                    [("clip_score", 0.30), ("aesthetic_score", 5.0)],
                    [("aesthetic_score", 9.0), ("clip_score", 0.5)],  # other entry order
                    [("clip_score", 0.5), ("aesthetic_score", 4.9)],
                    [],
                ],
                SCORES,
            ),
            "collection": pa.array(["photo", "artwork", None, "photo", "meme", "photo", "artwork", "  photo"]),
            "meta": pa.array([{"collection": c} for c in ["photo", "meme", "photo", None, "photo", "x", "photo", "y"]]),
        }
    )


WIDTHS = pa.array([1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024], pa.int32())
HEIGHTS = pa.array([768, 768, 768, 768, 768, 768, 768, 768], pa.int32())
CAPTIONED = pa.array([["a photo"]] * 8, pa.list_(pa.string()))
THRESHOLDS = {"clip_score": 0.3, "aesthetic_score": 5.0}


DEFAULT_BUCKETS = BucketConfig()


def reasons_of(table=None, *, widths=WIDTHS, heights=HEIGHTS, captions=CAPTIONED, buckets=DEFAULT_BUCKETS, **filters):
    table = gallery_table() if table is None else table
    return drop_reasons(
        table, widths=widths, heights=heights, captions=captions, filters=FilterConfig(**filters), buckets=buckets
    ).to_pylist()


def test_rows_passing_every_rule_are_kept_as_null():
    assert reasons_of() == [None] * 8


def test_unreadable_image_where_width_or_height_is_null():
    widths = pa.array([None, 1024, 1024, 0, 1024, 1024, 1024, 1024], pa.int32())
    heights = pa.array([768, None, 768, 768, 768, 768, 768, 768], pa.int32())
    assert reasons_of(widths=widths, heights=heights)[:3] == ["unreadable_image", "unreadable_image", None]


def test_unreadable_image_where_the_reader_flag_is_false_or_null():
    reasons = drop_reasons(
        gallery_table(),
        widths=WIDTHS,
        heights=HEIGHTS,
        captions=CAPTIONED,
        filters=FilterConfig(),
        buckets=BucketConfig(),
        readable=pa.array([True, False, None, True, True, True, True, True]),
    )
    assert reasons.to_pylist()[:3] == [None, "unreadable_image", "unreadable_image"]


def test_too_small_below_min_width_or_min_height():
    widths = pa.array([511, 512, 2000, 512, 512, 512, 512, 512], pa.int32())
    heights = pa.array([2000, 512, 511, 512, 512, 512, 512, 512], pa.int32())
    assert reasons_of(widths=widths, heights=heights, min_width=512, min_height=512)[:3] == [
        "too_small",
        None,
        "too_small",
    ]


def test_too_small_in_pixel_mode_needs_both_sides_at_least_the_minimum():
    widths = pa.array([512, 511, 4000, 512, 512, 512, 512, 512], pa.int32())
    heights = pa.array([512, 4000, 511, 512, 512, 512, 512, 512], pa.int32())
    buckets = BucketConfig(resolution_type="pixel", minimum_image_size=512)
    assert reasons_of(widths=widths, heights=heights, buckets=buckets)[:3] == [None, "too_small", "too_small"]


def test_too_small_in_pixel_area_mode_compares_area_with_minimum_squared():
    widths = pa.array([256, 1024, 511, 512, 512, 512, 512, 512], pa.int32())
    heights = pa.array([1024, 255, 512, 512, 512, 512, 512, 512], pa.int32())
    buckets = BucketConfig(resolution_type="pixel_area", minimum_image_size=512)
    assert reasons_of(widths=widths, heights=heights, buckets=buckets)[:3] == [None, "too_small", "too_small"]


def test_too_small_with_a_square_crop_in_area_modes_also_needs_both_sides_at_least_the_square_root():
    # 256x1024 has the area of 512^2 but a 256 px side: a square crop of it would be upscaled, so it is dropped.
    widths = pa.array([256, 512, 600, 512, 512, 512, 512, 512], pa.int32())
    heights = pa.array([1024, 512, 437, 512, 512, 512, 512, 512], pa.int32())
    square = BucketConfig(resolution_type="pixel_area", minimum_image_size=512, crop=True, crop_aspect="square")
    assert reasons_of(widths=widths, heights=heights, buckets=square)[:3] == ["too_small", None, "too_small"]
    closest = BucketConfig(resolution_type="pixel_area", minimum_image_size=512, crop=True, crop_aspect="preserve")
    assert reasons_of(widths=widths, heights=heights, buckets=closest)[:3] == [None, None, None]  # area suffices
    area = BucketConfig(
        resolution_type="area", resolution=1.0, minimum_image_size=0.25, crop=True, crop_aspect="square"
    )
    assert reasons_of(widths=widths, heights=heights, buckets=area)[:3] == ["too_small", None, "too_small"]


def test_too_small_in_area_mode_reads_the_minimum_as_megapixels():
    widths = pa.array([1000, 999, 2000, 512, 512, 512, 512, 512], pa.int32())
    heights = pa.array([1000, 1000, 250, 512, 512, 512, 512, 512], pa.int32())
    buckets = BucketConfig(resolution_type="area", resolution=1.0, minimum_image_size=1.0)
    assert reasons_of(widths=widths, heights=heights, buckets=buckets)[:4] == [
        None,
        "too_small",
        "too_small",
        "too_small",
    ]


def test_quality_struct_every_metric_must_reach_its_threshold():
    assert reasons_of(quality_thresholds=THRESHOLDS) == [
        None,
        "quality",
        "quality",
        "quality",
        None,
        None,
        "quality",
        None,
    ]


def test_quality_map_every_metric_must_be_present_and_reach_its_threshold():
    assert reasons_of(quality_thresholds=THRESHOLDS, quality_column="scores") == [
        None,
        "quality",
        "quality",
        "quality",
        None,
        None,
        "quality",
        "quality",
    ]


def test_quality_float32_score_equal_to_the_threshold_passes():
    # float32(0.7) is 0.69999998...; compared in float64 it would fall below a 0.7 threshold
    table = pa.table(
        {
            "quality_assessment": pa.array(
                [{"clip_score": 0.7}, {"clip_score": 0.69}], pa.struct([("clip_score", pa.float32())])
            )
        }
    )
    reasons = drop_reasons(
        table,
        widths=WIDTHS[:2],
        heights=HEIGHTS[:2],
        captions=CAPTIONED[:2],
        filters=FilterConfig(quality_thresholds={"clip_score": 0.7}),
        buckets=BucketConfig(),
    )
    assert reasons.to_pylist() == [None, "quality"]


def test_quality_integer_scores_are_compared_as_numbers():
    table = pa.table({"scores": pa.array([[("votes", 3)], [("votes", 12)]], pa.map_(pa.string(), pa.int64()))})
    reasons = drop_reasons(
        table,
        widths=WIDTHS[:2],
        heights=HEIGHTS[:2],
        captions=CAPTIONED[:2],
        filters=FilterConfig(quality_thresholds={"votes": 10}, quality_column="scores"),
        buckets=BucketConfig(),
    )
    assert reasons.to_pylist() == ["quality", None]


def test_quality_metric_that_is_not_a_struct_field_raises_naming_the_key_metric_column_and_fields():
    # A typo would otherwise drop every row as "quality".
    with pytest.raises(MissingColumn) as info:
        reasons_of(quality_thresholds={"clip_score": 0.3, "aesthetic": 5.0})
    message = str(info.value)
    assert message.startswith("filter_func.quality_thresholds: metric 'aesthetic' ")
    assert "quality column 'quality_assessment'" in message
    assert message.endswith("available fields: clip_score, aesthetic_score, resolution")
    assert info.value.path == "quality_assessment.aesthetic"


def test_quality_metric_that_no_row_of_the_map_holds_raises_listing_the_keys_present():
    with pytest.raises(MissingColumn) as info:
        reasons_of(quality_thresholds={"clip_score": 0.3, "clipscore": 0.3}, quality_column="scores")
    message = str(info.value)
    assert message.startswith("filter_func.quality_thresholds: metric 'clipscore' ")
    assert "quality column 'scores'" in message
    assert message.endswith("available keys: aesthetic_score, clip_score")


def test_quality_metric_missing_from_some_map_rows_still_drops_only_those_rows():
    table = pa.table(
        {
            "scores": pa.array(
                [
                    [("aesthetic_score", 6.0), ("sharpness", 0.8)],
                    [("aesthetic_score", 6.0)],  # never scored for sharpness: data, not a typo
                    [("aesthetic_score", 6.5), ("sharpness", 0.6)],
                    None,
                ],
                SCORES,
            )
        }
    )
    reasons = drop_reasons(
        table,
        widths=WIDTHS[:4],
        heights=HEIGHTS[:4],
        captions=CAPTIONED[:4],
        filters=FilterConfig(quality_thresholds={"sharpness": 0.5}, quality_column="scores"),
        buckets=BucketConfig(),
    )
    assert reasons.to_pylist() == [None, "quality", None, "quality"]


def test_quality_map_metric_check_does_not_raise_on_an_empty_table():
    empty = gallery_table().slice(0, 0)
    reasons = drop_reasons(
        empty,
        widths=WIDTHS[:0],
        heights=HEIGHTS[:0],
        captions=CAPTIONED[:0],
        filters=FilterConfig(quality_thresholds={"clip_score": 0.3}, quality_column="scores"),
        buckets=BucketConfig(),
    )
    assert reasons.to_pylist() == []


def test_quality_column_missing_from_the_table_raises_listing_the_columns():
    with pytest.raises(MissingColumn, match="quality_column: column 'quality' not found; available: .*collection"):
        reasons_of(quality_thresholds=THRESHOLDS, quality_column="quality")


def test_quality_column_is_not_required_without_thresholds():
    assert reasons_of(quality_column="quality") == [None] * 8


def test_collection_value_must_be_one_of_the_configured_collections():
    assert reasons_of(collection=("photo", "artwork")) == [
        None,
        None,
        "collection",
        None,
        "collection",
        None,
        None,
        "collection",
    ]


def test_collection_column_may_be_a_nested_path():
    assert reasons_of(collection=("photo",), collection_column="meta.collection") == [
        None,
        "collection",
        None,
        "collection",
        None,
        "collection",
        None,
        "collection",
    ]


def test_collection_column_missing_from_the_table_raises():
    with pytest.raises(MissingColumn, match="collection_column: column 'subset' not found"):
        reasons_of(collection=("photo",), collection_column="subset")


def test_no_caption_where_the_caption_list_is_empty():
    captions = pa.array([["a"], [], None, ["b", "c"], ["d"], ["e"], ["f"], ["g"]], pa.list_(pa.string()))
    assert reasons_of(captions=captions)[:4] == [None, "no_caption", "no_caption", None]


def frame_reasons(frames: list, min_frames: int | None) -> list:
    """The drop reasons of the gallery's first rows given their frame counts (the rest have 100 frames)."""
    counts = pa.array(frames + [100] * (8 - len(frames)), pa.int32())
    filters = FilterConfig(min_frames=min_frames)
    reasons = drop_reasons(
        gallery_table(),
        widths=WIDTHS,
        heights=HEIGHTS,
        captions=CAPTIONED,
        filters=filters,
        buckets=BucketConfig(),
        num_frames=counts,
    )
    return reasons.to_pylist()[: len(frames)]


def test_too_few_frames_where_num_frames_is_below_min_frames_or_unknown():
    assert frame_reasons([100, 99, None, 125], 100) == [None, "too_few_frames", "too_few_frames", None]


def test_without_min_frames_a_clip_of_no_frame_or_an_unknown_count_is_dropped_at_scan():
    # Every clip the scan keeps is encoded at its trimmed frame count, which needs at least one frame.
    assert frame_reasons([1, 0, None, 2], None) == [None, "too_few_frames", "too_few_frames", None]


def test_each_dropped_row_gets_only_the_first_failing_reason_in_precedence_order():
    widths = pa.array([None, 100, 1024, 1024, 1024, 1024, 1024, 1024], pa.int32())
    captions = pa.array([[], [], [], [], [], ["ok"], ["ok"], ["ok"]], pa.list_(pa.string()))
    frames = pa.array([1, 1, 1, 1, 1, 1, 1, 100])
    reasons = drop_reasons(
        gallery_table(),
        widths=widths,
        heights=HEIGHTS,
        captions=captions,
        filters=FilterConfig(
            quality_thresholds=THRESHOLDS, collection=("photo", "artwork", "meme"), min_width=512, min_frames=50
        ),
        buckets=BucketConfig(),
        num_frames=frames,
    )
    assert reasons.to_pylist() == [
        "unreadable_image",
        "too_small",
        "quality",
        "quality",
        "no_caption",
        "too_few_frames",
        "quality",
        "collection",
    ]


def test_inputs_of_another_length_than_the_table_are_refused():
    with pytest.raises(ValueError, match="widths has 3 rows; the table has 8"):
        reasons_of(widths=pa.array([1, 2, 3]))


def test_count_reasons_lists_every_reason_with_zero_for_absent_ones():
    reasons = pa.array(["quality", None, "too_small", "quality", None, "no_caption"])
    assert count_reasons(reasons) == {
        "unreadable_image": 0,
        "too_small": 1,
        "quality": 2,
        "collection": 0,
        "no_caption": 1,
        "too_few_frames": 0,
    }
    assert list(count_reasons(pa.array([], pa.string()))) == list(DROP_REASONS)


# ---- a 200k-row table checked against a per-row reference -----------------------------------------


def generated_gallery(num_rows: int, seed: int = 3) -> tuple[pa.Table, pa.Array, pa.Array, pa.Array]:
    """Many rows with null sizes, null score structs, null metrics, null collections and empty captions."""
    rng = np.random.default_rng(seed)
    quality = pa.StructArray.from_arrays(
        [
            pa.array(rng.uniform(0.1, 0.5, num_rows), mask=rng.random(num_rows) < 0.05),
            pa.array(rng.uniform(3.0, 8.0, num_rows)),
        ],
        names=["clip_score", "aesthetic_score"],
        mask=pa.array(rng.random(num_rows) < 0.05),
    )
    labels = np.array(["photo", "artwork", "meme", "screenshot"], dtype=object)
    table = pa.table(
        {
            "quality_assessment": quality,
            "collection": pa.array(labels[rng.integers(0, 4, num_rows)], mask=rng.random(num_rows) < 0.05),
        }
    )
    widths = pa.array(rng.integers(200, 3000, num_rows), pa.int32(), mask=rng.random(num_rows) < 0.01)
    heights = pa.array(rng.integers(200, 3000, num_rows), pa.int32(), mask=rng.random(num_rows) < 0.01)
    lengths = rng.choice([0, 1, 2], num_rows, p=[0.05, 0.8, 0.15])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    captions = pa.ListArray.from_arrays(offsets, pa.array(["caption"] * int(lengths.sum())))
    return table, widths, heights, captions


def reference_reason(row: dict, width, height, caption_count: int) -> str | None:
    """The rules written per row, the slow obvious way."""
    if width is None or height is None:
        return "unreadable_image"
    if width < 512 or height < 512 or width * height < 768 * 768:
        return "too_small"
    scores = row["quality_assessment"] or {}
    for metric, threshold in THRESHOLDS.items():
        if scores.get(metric) is None or scores[metric] < threshold:
            return "quality"
    if row["collection"] not in ("photo", "artwork"):
        return "collection"
    if caption_count == 0:
        return "no_caption"
    return None


def test_two_hundred_thousand_rows_match_the_per_row_reference():
    table, widths, heights, captions = generated_gallery(200_000)
    reasons = drop_reasons(
        table,
        widths=widths,
        heights=heights,
        captions=captions,
        filters=FilterConfig(
            quality_thresholds=THRESHOLDS, collection=("photo", "artwork"), min_width=512, min_height=512
        ),
        buckets=BucketConfig(resolution_type="pixel_area", minimum_image_size=768),
    )
    assert len(reasons) == table.num_rows
    sample = pa.array(np.random.default_rng(2).choice(table.num_rows, 3_000, replace=False))
    rows = table.take(sample).to_pylist()
    counts = [len(c) for c in captions.take(sample).to_pylist()]
    expected = [
        reference_reason(row, w, h, n)
        for row, w, h, n in zip(rows, widths.take(sample).to_pylist(), heights.take(sample).to_pylist(), counts)
    ]
    assert reasons.take(sample).to_pylist() == expected
    totals = count_reasons(reasons)
    assert sum(totals.values()) == len(reasons) - reasons.null_count
    assert all(totals[reason] > 0 for reason in DROP_REASONS[:5])
