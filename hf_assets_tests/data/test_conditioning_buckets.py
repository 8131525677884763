"""A conditioning dataset's bucket table: its source's table rebuilt exactly, then paired."""

from pathlib import Path

import pyarrow.compute as pc

from hf_assets.config.schema import BackendConfig, BucketConfig
from hf_assets.data.backend_buckets import bucket_backend
from hf_assets.data.conditioning_buckets import pair_buckets, stale_source_rows
from hf_assets.data.lineage import stamp
from hf_assets_tests.data.test_pairing import GEOMETRY, index_table

CROPS = BucketConfig(
    resolution=128,
    resolution_type="pixel",
    crop=True,
    crop_style="random",
    crop_aspect="closest",
    crop_aspect_buckets=(0.75, 1.0, 1.33),
)
NAMES = [f"{i}.jpg" for i in range(12)]
SIZES = [(300, 200), (200, 300), (256, 256), (640, 480), (333, 517), (900, 300)] * 2


def backend(backend_id: str, buckets: BucketConfig = CROPS) -> BackendConfig:
    return BackendConfig(
        id=backend_id, type="huggingface", dataset_type="image", cache_dir=Path("/cache"), buckets=buckets
    )


def source_index():
    return stamp(index_table(NAMES, SIZES), "fingerprint-of-the-source-split", "row")


def test_a_generated_dataset_gets_its_sources_stored_table_sample_for_sample():
    source = backend("photos")
    stored = bucket_backend(source_index(), source).table  # what the source's aspect_buckets stores
    paired = pair_buckets(
        source_index(),
        backend("photos_conditioning_canny"),
        source_index(),
        source,
        generated=True,
        strict=True,
        captions="source",
    )
    for column in GEOMETRY + ["filename", "row", "caption"]:
        assert paired.table.column(column).to_pylist() == stored.column(column).to_pylist()
    assert stale_source_rows(paired.source_table, stored) == []


def test_random_crops_are_the_sources_not_drawn_again_for_the_conditioning_id():
    source = backend("photos")
    own = bucket_backend(source_index(), backend("photos_conditioning_canny")).table
    paired = pair_buckets(
        source_index(),
        backend("photos_conditioning_canny"),
        source_index(),
        source,
        generated=True,
        strict=True,
        captions=(),
    )
    stored = bucket_backend(source_index(), source).table
    assert paired.table.column("crop_left").to_pylist() == stored.column("crop_left").to_pylist()
    assert own.column("crop_left").to_pylist() != stored.column("crop_left").to_pylist()  # seeds differ by id
    assert paired.table.column("captions").to_pylist() == [[]] * len(NAMES)


def test_a_given_strict_dataset_pairs_by_name_and_reports_both_sides():
    source = backend("photos")
    given = index_table(["0.jpg", "1.jpg", "5.jpg", "extra.jpg"], [(150, 100), (100, 150), (450, 150), (64, 64)])
    paired = pair_buckets(
        given, backend("control"), source_index(), source, generated=False, strict=True, captions="own"
    )
    assert paired.table.column("filename").to_pylist() == ["0.jpg", "1.jpg", "5.jpg"]
    assert paired.dropped.column("reason").to_pylist() == ["no_source_sample"]
    assert paired.source_dropped.num_rows == len(NAMES) - 3


def test_a_loose_given_dataset_keeps_its_own_buckets():
    source = backend("photos")
    square = BucketConfig(resolution=64, resolution_type="pixel", crop=True, crop_aspect="square")
    given = index_table(["0.jpg", "1.jpg"], [(100, 300), (500, 200)])
    paired = pair_buckets(
        given, backend("refs", square), source_index(), source, generated=False, strict=False, captions="source"
    )
    assert paired.table.column("target_width").to_pylist() == [64, 64]
    assert paired.table.column("captions").to_pylist() == [["caption of 0.jpg"], ["caption of 1.jpg"]]


def test_a_stored_source_table_built_with_another_config_is_found_stale():
    source = backend("photos")
    rebuilt = bucket_backend(source_index(), source).table
    older = bucket_backend(source_index(), backend("photos", BucketConfig(resolution=96, resolution_type="pixel")))
    assert set(stale_source_rows(rebuilt, older.table)) == set(NAMES)
    fewer = rebuilt.filter(pc.not_equal(rebuilt.column("filename"), "3.jpg"))
    assert stale_source_rows(rebuilt, fewer) == ["3.jpg"]
    assert stale_source_rows(fewer, rebuilt) == ["3.jpg"]
