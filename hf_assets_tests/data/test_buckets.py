"""Aspect bucketing: one test per rule, worked examples plus property checks over many sizes."""

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from hf_assets.config.schema import BucketConfig
from hf_assets.data.buckets import (
    BUCKET_COLUMNS,
    assign_buckets,
    bucket_histogram,
    bucket_histogram_png,
    bucket_keys,
    drop_small_buckets,
    sample_aspects,
    small_buckets,
    target_sizes,
)
from hf_assets.data.sizing import align, py_round

# Sizes seen in real datasets: phone photos both ways, DSLR, HD video frames, scans, cinema, screenshots.
REAL_SIZES = [
    (4032, 3024),
    (3024, 4032),
    (6000, 4000),
    (4000, 6000),
    (1920, 1080),
    (1080, 1920),
    (800, 600),
    (512, 512),
    (2048, 858),
    (1170, 2532),
    (2480, 3508),
    (640, 427),
]
ASPECTS = (0.5, 0.75, 1.0, 1.33, 1.78)


def sizes(cfg: BucketConfig, w, h, backend_id: str = "photos", rows=None):
    """target_sizes on plain lists, returning Python lists per column."""
    w, h = np.asarray(w), np.asarray(h)
    rows = np.arange(len(w)) if rows is None else np.asarray(rows)
    return {k: v.tolist() for k, v in target_sizes(w, h, cfg, backend_id, rows).items()}


def index_table(widths, heights, rows=None) -> pa.Table:
    """A minimal filtered index with the columns assign_buckets reads, plus a filename."""
    rows = list(range(len(widths))) if rows is None else list(rows)
    return pa.table(
        {
            "filename": pa.array([f"{r}.jpg" for r in rows], pa.string()),
            "row": pa.array(rows, pa.int64()),
            "width": pa.array(widths, pa.int32()),
            "height": pa.array(heights, pa.int32()),
        }
    )


def test_alignment_rounds_to_nearest_multiple_with_a_floor():
    values = np.array([0, 10, 96, 160, 1000, 1500, 1530, 1003.9, 4095])
    assert align(values, 64).tolist() == [64, 64, 128, 128, 1024, 1472, 1536, 1024, 4096]  # halves to even
    for m in (8, 16, 64):
        assert align(values, m).tolist() == [max(m, round(v / m) * m) for v in values.tolist()]


def test_aspect_rounding_is_pythons_round_including_near_ties():
    w = np.array([1545, 2675, 9, 1125, 3, 2047, 1, 7])
    h = np.array([1000, 1000, 8, 1000, 8, 2999, 3, 3])
    for digits in (1, 2, 3):
        assert py_round(w / h, digits).tolist() == [round(a / b, digits) for a, b in zip(w.tolist(), h.tolist())]


def test_pixel_mode_short_side_is_resolution_for_landscape_and_portrait():
    cfg = BucketConfig(resolution=1024, resolution_type="pixel")
    s = sizes(cfg, [6000, 4000, 1920, 1080, 512, 2047], [4000, 6000, 1080, 1920, 512, 2999])
    # 16:9 rounds to 1.78: int(1024 * 1.78) = 1822 -> 1792; 2047/2999 rounds to 0.68: int(1024 / 0.68) = 1505 -> 1536.
    assert s["target_width"] == [1536, 1024, 1792, 1024, 1024, 1024]
    assert s["target_height"] == [1024, 1536, 1024, 1856, 1024, 1536]  # 9:16 is 0.56: int(1024 / 0.56) = 1828 -> 1856


def test_pixel_area_on_a_3_2_image():
    # e = 1024; sqrt(1.5) = 1.2247: 1254.1 -> 1280 and 836.1 -> 832.
    cfg = BucketConfig(resolution=1024, resolution_type="pixel_area")
    s = sizes(cfg, [3000, 2000], [2000, 3000])
    assert (s["target_width"], s["target_height"]) == ([1280, 832], [832, 1280])


def test_area_mode_resolution_is_megapixels_with_the_square_edge_first():
    # 1.0 MP: edge align(int(sqrt(1e6))) = 1024; 3:2: 1024 * sqrt(1.5) = 1254.1 -> 1280, 1024 / sqrt(1.5) = 836 -> 832.
    cfg = BucketConfig(resolution=1.0, resolution_type="area")
    s = sizes(cfg, [6000, 4000, 2048], [4000, 6000, 2048])
    assert s["target_width"] == [1280, 832, 1024]
    assert s["target_height"] == [832, 1280, 1024]
    half = sizes(BucketConfig(resolution=0.25, resolution_type="area"), [512], [512])
    assert (half["target_width"], half["target_height"]) == ([512], [512])


@pytest.mark.parametrize(
    "resolution, resolution_type, side",
    [
        (512, "pixel", 512),
        (1000, "pixel_area", 1024),
        (1.0, "area", 1024),
        (0.5, "area", 768),
        (768, "pixel_area", 768),
    ],
)
def test_square_crop_is_the_square_edge_of_the_mode(resolution, resolution_type, side):
    cfg = BucketConfig(resolution=resolution, resolution_type=resolution_type, crop=True, crop_aspect="square")
    w, h = zip(*REAL_SIZES)
    s = sizes(cfg, w, h)
    assert set(s["target_width"]) == {side} and set(s["target_height"]) == {side}


def test_square_center_crop_of_a_4_3_photo_worked_by_hand():
    # 4000x3000 to 512x512: resize int(512 * 4/3) = 682 x 512, centred box starts at (682-512)//2 = 85.
    base = dict(resolution=512, resolution_type="pixel", crop=True, crop_aspect="square")
    centre = sizes(BucketConfig(**base, crop_style="center"), [4000, 3000], [3000, 4000])
    assert centre["resize_width"] == [682, 512] and centre["resize_height"] == [512, 682]
    assert centre["crop_left"] == [85, 0] and centre["crop_top"] == [0, 85]
    corner = sizes(BucketConfig(**base, crop_style="corner"), [4000, 3000], [3000, 4000])
    assert corner["crop_left"] == [0, 0] and corner["crop_top"] == [0, 0]  # top-left, as SimpleTuner


def test_downsample_before_crop_with_maximum_image_size_and_target_downsample_size():
    # SimpleTuner's docs example: a 4000x3000 photo is first resized for a 1280 edge area, then cropped to 1024.
    cfg = BucketConfig(
        resolution=1024,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="square",
        crop_style="center",
        maximum_image_size=1536,
        target_downsample_size=1280,
    )
    s = sizes(cfg, [4000], [3000])
    assert (s["resize_width"], s["resize_height"], s["crop_left"], s["crop_top"]) == ([1472], [1104], [224], [40])
    plain = sizes(BucketConfig(**{**cfg.__dict__, "maximum_image_size": None}), [4000], [3000])
    assert (plain["resize_width"], plain["resize_height"]) == ([1365], [1024])


def test_preserve_and_no_crop_keep_the_image_aspect():
    w, h = zip(*REAL_SIZES)
    plain = sizes(BucketConfig(resolution=1024, resolution_type="pixel_area"), w, h)
    preserve_cfg = BucketConfig(resolution=1024, resolution_type="pixel_area", crop=True, crop_aspect="preserve")
    preserve = sizes(preserve_cfg, w, h)
    assert plain["target_width"] == preserve["target_width"]
    assert plain["target_height"] == preserve["target_height"]


def test_closest_is_the_linear_distance_to_the_rounded_aspect_and_the_first_listed_wins_ties():
    w, h = [1500, 1200, 500, 3000, 800, 1545, 1000, 1250], [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]
    cfg = BucketConfig(crop=True, crop_aspect="closest", crop_aspect_buckets=(1.78, 0.75, 1.0, 1.33))
    # 1.545 rounds to 1.54: 0.21 from 1.33, 0.24 from 1.78 (a log distance would pick 1.78).
    assert sample_aspects(w[:7], h[:7], cfg, "x", range(7)).tolist() == [1.33, 1.33, 0.75, 1.78, 0.75, 1.33, 1.0]
    tie = dict(crop=True, crop_aspect="closest")
    for listed, chosen in (((1.0, 1.5), 1.0), ((1.5, 1.0), 1.5)):  # 1.25 is 0.25 from both
        cfg = BucketConfig(**tie, crop_aspect_buckets=listed)
        assert sample_aspects([1250], [1000], cfg, "x", [0]).tolist() == [chosen]
    cfg = BucketConfig(
        resolution=1024,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="closest",
        crop_aspect_buckets=(0.75, 1.0, 1.33),
    )
    s = sizes(cfg, [4032, 3024, 1920], [3024, 4032, 1080])
    # 1.33: 1024*sqrt(1.33) = 1180.9 -> 1152, 1024/sqrt(1.33) = 887.9 -> 896; 0.75 -> 896 x 1152 ("0.78").
    assert list(zip(s["target_width"], s["target_height"])) == [(1152, 896), (896, 1152), (1152, 896)]


def test_max_upscale_threshold_skips_buckets_that_need_more_upscaling_else_square():
    base = dict(resolution=1024, resolution_type="pixel", crop=True, crop_aspect_buckets=(1.0, 0.5, 2.0))
    cfg = BucketConfig(**base, crop_aspect="random", max_upscale_threshold=0.2)
    # Each side of the bucket's target may be at most 1.2x the image's: 2100x1000 fits all three buckets,
    # 1000x1000 not 2048x1024 (2.0), 256x256 none and is cropped square (as SimpleTuner, whose docs say
    # otherwise for 850x850: its code compares 1024 with 1.2 * 850 = 1020 and keeps no bucket).
    rows = np.arange(300)
    assert set(sample_aspects([2100] * 300, [1000] * 300, cfg, "x", rows).tolist()) == {0.5, 1.0, 2.0}
    assert set(sample_aspects([1000] * 300, [1000] * 300, cfg, "x", rows).tolist()) == {0.5, 1.0}
    assert set(sample_aspects([256] * 300, [256] * 300, cfg, "x", rows).tolist()) == {1.0}
    wide = BucketConfig(**base, crop_aspect="closest", max_upscale_threshold=0.2)
    # 2100x1000 is closest to 2.0 (2048 x 1024 fits); 1700x800 needs 2048 > 1.2 * 1700 wide, so 1.0.
    assert sample_aspects([2100, 1700], [1000, 800], wide, "x", [0, 1]).tolist() == [2.0, 1.0]


def test_weighted_random_buckets_follow_their_weights():
    cfg = BucketConfig(
        resolution=512,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="random",
        crop_aspect_buckets=(0.75, 1.0, 1.5),
        crop_aspect_weights=(0.2, 0.7, 0.1),
    )
    drawn = sample_aspects(np.full(20_000, 1200), np.full(20_000, 900), cfg, "w", np.arange(20_000))
    share = {a: float(np.mean(drawn == a)) for a in (0.75, 1.0, 1.5)}
    assert abs(share[0.75] - 0.2) < 0.02 and abs(share[1.0] - 0.7) < 0.02 and abs(share[1.5] - 0.1) < 0.02


def test_closest_and_random_need_buckets():
    cfg = BucketConfig(crop=True, crop_aspect="closest")
    with pytest.raises(ValueError, match="crop_aspect_buckets"):
        sizes(cfg, [1024], [768])


def test_random_is_deterministic_and_depends_on_the_backend_id():
    cfg = BucketConfig(
        resolution=768,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="random",
        crop_aspect_buckets=ASPECTS,
        crop_style="random",
    )
    rng = np.random.default_rng(7)
    w, h = rng.integers(600, 6000, 5000), rng.integers(600, 6000, 5000)
    a1, a2 = sizes(cfg, w, h, "photos"), sizes(cfg, w, h, "photos")
    b = sizes(cfg, w, h, "photos-v2")
    assert a1 == a2
    for key in ("target_width", "crop_left", "crop_top"):
        assert np.mean(np.array(a1[key]) != np.array(b[key])) > 0.3
    # Every configured aspect is used, about equally.
    _, counts = np.unique(np.array(a1["target_width"]) * 100000 + np.array(a1["target_height"]), return_counts=True)
    assert len(counts) == len(ASPECTS) and counts.min() > 800
    # A sample's draw depends on its row, not on which other rows survived filtering.
    sub = sizes(cfg, w[::3], h[::3], "photos", rows=np.arange(5000)[::3])
    assert sub["crop_left"] == a1["crop_left"][::3] and sub["target_width"] == a1["target_width"][::3]


@pytest.mark.parametrize("resolution_type, resolution", [("pixel", 1024), ("pixel_area", 768), ("area", 0.5)])
@pytest.mark.parametrize("crop_aspect", ["none", "square", "preserve", "closest", "random"])
@pytest.mark.parametrize("crop_style", ["center", "corner", "random"])
def test_resize_covers_target_keeps_the_aspect_and_crop_box_is_inside(
    resolution_type, resolution, crop_aspect, crop_style
):
    rng = np.random.default_rng(2024)
    n = 10_000
    w = np.exp(rng.uniform(0, np.log(12000), n)).astype(np.int64) + 1
    h = np.exp(rng.uniform(0, np.log(12000), n)).astype(np.int64) + 1
    extremes = np.array([[1, 1], [1, 9000], [9000, 1], [7, 3], [64, 64], [20000, 300], [300, 20000], [1023, 1025]])
    w[: len(extremes)], h[: len(extremes)] = extremes[:, 0], extremes[:, 1]
    cfg = BucketConfig(
        resolution=resolution,
        resolution_type=resolution_type,
        crop=crop_aspect != "none",
        crop_aspect="square" if crop_aspect == "none" else crop_aspect,
        crop_aspect_buckets=ASPECTS,
        crop_style=crop_style,
    )
    s = {k: np.asarray(v) for k, v in sizes(cfg, w, h, "prop", rows=rng.permutation(n)).items()}
    if crop_style == "corner":
        assert not s["crop_left"].any() and not s["crop_top"].any()
    tw, th, rw, rh, cl, ct = (s[k] for k in BUCKET_COLUMNS)
    square_edge = {"pixel": 1024, "pixel_area": 768, "area": 768}[resolution_type]
    aligned = (tw % 64 == 0) & (th % 64 == 0)
    assert np.all(aligned | ((tw == square_edge) & (th == square_edge))) and tw.min() >= 64 and th.min() >= 64
    assert np.all(rw >= tw) and np.all(rh >= th)
    assert np.all(np.abs((rw / rh) / (w / h) - 1) <= 0.02 + 1.0 / np.minimum(rw, rh))  # the image's own aspect
    assert np.all(cl >= 0) and np.all(ct >= 0)
    assert np.all(cl + tw <= rw) and np.all(ct + th <= rh)
    if crop_style == "random" and crop_aspect == "square":
        assert len(np.unique(cl)) > 500 and len(np.unique(ct)) > 500  # offsets actually vary


def test_bucket_key_format_matches_python_round():
    tw = [1024, 1024, 832, 1216, 1280, 1365, 64, 4096]
    th = [1024, 1344, 1088, 832, 832, 1024, 4096, 64]
    assert bucket_keys(tw, th).to_pylist() == ["1.0", "0.76", "0.76", "1.46", "1.54", "1.33", "0.02", "64.0"]
    # with aspect_bucket_rounding 1 the aspect is rounded to 1 decimal first, then named with 2.
    assert bucket_keys([1280], [832], BucketConfig(rounding=1)).to_pylist() == ["1.5"]
    grid = np.arange(64, 4097, 64)
    gw, gh = np.meshgrid(grid, grid)
    keys = bucket_keys(gw.ravel(), gh.ravel()).to_pylist()
    assert keys == [str(round(int(a) / int(b), 2)) for a, b in zip(gw.ravel(), gh.ravel())]
    assert bucket_keys([], []).type == pa.string()


def test_assign_buckets_appends_contract_columns():
    w, h = zip(*REAL_SIZES)
    table = index_table(w, h, rows=range(100, 100 + len(w)))
    cfg = BucketConfig(
        resolution=1024,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="closest",
        crop_aspect_buckets=ASPECTS,
        crop_style="center",
    )
    out = assign_buckets(table, cfg, "photos")
    assert out.column_names == table.column_names + ["bucket", *BUCKET_COLUMNS]
    assert out.schema.field("bucket").type == pa.string()
    assert all(out.schema.field(c).type == pa.int32() for c in BUCKET_COLUMNS)
    # 4032x3024 rounds to 1.33, its closest bucket: 1152x896 "1.29"; resize int(896 * 4/3) = 1194 x 896.
    assert out.slice(0, 1).to_pylist()[0] == {
        "filename": "100.jpg",
        "row": 100,
        "width": 4032,
        "height": 3024,
        "bucket": "1.29",
        "target_width": 1152,
        "target_height": 896,
        "resize_width": 1194,
        "resize_height": 896,
        "crop_left": 21,
        "crop_top": 0,
    }
    expected = [str(round(a / b, 2)) for a, b in zip(out["target_width"].to_pylist(), out["target_height"].to_pylist())]
    assert out["bucket"].to_pylist() == expected


def test_assign_buckets_on_an_empty_index_keeps_the_schema():
    empty = index_table([], [])
    out = assign_buckets(empty, BucketConfig(crop=True, crop_aspect="random", crop_aspect_buckets=ASPECTS), "x")
    assert out.num_rows == 0
    assert out.schema.field("bucket").type == pa.string()
    assert [out.schema.field(c).type for c in BUCKET_COLUMNS] == [pa.int32()] * 6
    assert bucket_histogram(out) == [] and small_buckets(out, 4) == {}


def test_small_buckets_are_reported_and_dropped():
    # 10 landscape 3:2, 3 portrait 2:3, 1 square at pixel 512.
    w = [3000] * 10 + [2000] * 3 + [1000]
    h = [2000] * 10 + [3000] * 3 + [1000]
    out = assign_buckets(index_table(w, h), BucketConfig(resolution=512, resolution_type="pixel"), "b")
    assert bucket_histogram(out) == [("0.67", 3), ("1.0", 1), ("1.5", 10)]
    assert small_buckets(out, 4) == {"0.67": 3, "1.0": 1}
    kept = drop_small_buckets(out, 4)
    assert kept.num_rows == 10 and set(kept["bucket"].to_pylist()) == {"1.5"}
    assert drop_small_buckets(out, 1) is out


def test_histogram_png_is_a_valid_png():
    png = bucket_histogram_png([("0.67", 3), ("1.0", 1200), ("1.5", 10)], "photos: samples per bucket")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] >= 400 and image.size[1] >= 300
    many = bucket_histogram_png([(str(round(0.25 + i * 0.1, 2)), i * 7 + 1) for i in range(40)], "many")
    assert Image.open(io.BytesIO(many)).format == "PNG"
    assert Image.open(io.BytesIO(bucket_histogram_png([], "empty"))).format == "PNG"


def test_a_million_rows_are_bucketed_in_one_columnar_pass():  # its speed is measured in bench/
    rng = np.random.default_rng(1)
    n = 1_000_000
    table = index_table(rng.integers(256, 8000, n), rng.integers(256, 8000, n))
    cfg = BucketConfig(
        resolution=1024,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="random",
        crop_aspect_buckets=ASPECTS,
        crop_style="random",
    )
    out = assign_buckets(table, cfg, "big")
    assert out.num_rows == n
    sizes = out.group_by(["bucket", "target_width", "target_height"]).aggregate([])
    assert sizes.num_rows == len(set(sizes.column("bucket").to_pylist())) == len(ASPECTS)  # one size per key
    col = {name: out.column(name).to_numpy() for name in ("crop_left", "crop_top", "resize_width", "resize_height")}
    assert (col["crop_left"] >= 0).all() and (col["crop_top"] >= 0).all()
    assert (col["crop_left"] + out.column("target_width").to_numpy() <= col["resize_width"]).all()
    assert (col["crop_top"] + out.column("target_height").to_numpy() <= col["resize_height"]).all()


def test_local_folder_crops_are_seeded_by_file_name_so_new_files_do_not_move_them():
    import pyarrow as pa

    from hf_assets.config.schema import BucketConfig
    from hf_assets.data.buckets import assign_buckets

    cfg = BucketConfig(
        resolution=256,
        resolution_type="pixel_area",
        crop=True,
        crop_aspect="random",
        crop_aspect_buckets=(0.75, 1.0, 1.33),
        crop_style="random",
    )
    names = [f"photo_{i:03d}.jpg" for i in range(40)]
    sizes = [(300 + 13 * i, 260 + 7 * (i % 9)) for i in range(40)]

    def index(files):
        return pa.table(
            {
                "filename": [n for n, _ in files],
                "row": list(range(len(files))),
                "width": [w for _, (w, _h) in files],
                "height": [h for _, (_w, h) in files],
            }
        )

    before = assign_buckets(index(list(zip(names, sizes))), cfg, "local", seed_by_filename=True)
    shifted = [("aaa_new.jpg", (500, 400))] + list(zip(names, sizes))  # sorts first: every row moves by one
    after = assign_buckets(index(shifted), cfg, "local", seed_by_filename=True).slice(1)
    columns = ["filename", "bucket", "crop_left", "crop_top", "target_width", "target_height"]
    assert before.select(columns).to_pylist() == after.select(columns).to_pylist()
    by_row = assign_buckets(index(shifted), cfg, "local").slice(1)
    assert by_row.select(columns).to_pylist() != before.select(columns).to_pylist()


SWEEP_SETTINGS = [
    dict(
        resolution=r,
        resolution_type=t,
        crop=crop,
        crop_aspect=aspect,
        crop_style=style,
        crop_aspect_buckets=(0.5, 0.75, 1.0, 1.33, 1.5, 2.0, 0.2, 5.0),
        rounding=rounding,
        alignment=alignment,
    )
    for r, t in (
        (512, "pixel"),
        (1000, "pixel"),
        (1024, "pixel_area"),
        (640, "pixel_area"),
        (0.5, "area"),
        (1.5, "area"),
    )
    for crop, aspect, style in (
        (False, "square", "random"),
        (True, "preserve", "center"),
        (True, "closest", "corner"),
        (True, "random", "random"),
        (True, "square", "center"),
    )
    for rounding, alignment in ((2, 64), (1, 32), (3, 8))
]


@pytest.mark.parametrize("settings", SWEEP_SETTINGS, ids=lambda s: "-".join(str(v) for v in list(s.values())[:4]))
def test_every_bucket_name_has_exactly_one_target_size(settings):
    # Every size from 64 to 8000 px in 37 px steps (both ways), plus extreme strips.
    edges = np.arange(64, 8001, 37)
    w, h = (a.ravel() for a in np.meshgrid(edges, edges))
    w = np.concatenate([w, [1, 64, 9000, 20000, 200]])
    h = np.concatenate([h, [9000, 20000, 1, 64, 6000]])
    out = assign_buckets(index_table(w, h), BucketConfig(**settings), "sweep")
    pairs = out.group_by("bucket").aggregate(
        [("target_width", "min"), ("target_width", "max"), ("target_height", "min"), ("target_height", "max")]
    )
    rows = pairs.to_pylist()
    mixed = [
        r
        for r in rows
        if (r["target_width_min"], r["target_height_min"]) != (r["target_width_max"], r["target_height_max"])
    ]
    assert mixed == [] and pairs.num_rows > 0


def test_minimum_and_maximum_aspect_ratio_drop_buckets_outside_with_their_own_reasons():
    from hf_assets.data.buckets import drop_by_aspect_ratio

    # pixel 512: 3:1 -> "3.0", 2:3 -> "0.67", 1:1 -> "1.0", 1:4 -> "0.25".
    w, h = [1500, 1000, 800, 250, 1500], [500, 1500, 800, 1000, 500]
    base = dict(resolution=512, resolution_type="pixel")
    ranged = BucketConfig(**base, minimum_aspect_ratio=0.5, maximum_aspect_ratio=2.0)
    out = assign_buckets(index_table(w, h), ranged, "a")
    kept, counts = drop_by_aspect_ratio(out, ranged)
    assert kept["bucket"].to_pylist() == ["0.67", "1.0"] and kept["row"].to_pylist() == [1, 2]
    assert counts == {"aspect_ratio_below_minimum": 1, "aspect_ratio_above_maximum": 2}
    # The bucket decides, as in SimpleTuner: a square crop keeps every image at "1.0".
    square = BucketConfig(**base, crop=True, crop_aspect="square", minimum_aspect_ratio=0.5, maximum_aspect_ratio=2.0)
    kept, counts = drop_by_aspect_ratio(assign_buckets(index_table(w, h), square, "a"), square)
    assert kept.num_rows == 5 and sum(counts.values()) == 0
    unset = BucketConfig(**base)
    assert drop_by_aspect_ratio(out, unset)[0] is out
