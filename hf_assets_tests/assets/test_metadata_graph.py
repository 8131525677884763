"""The metadata half of the graph, run in-process through Dagster, read back through the IO manager."""

import datetime
import json

import dagster as dg
import pyarrow as pa
import pytest

from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config


@pytest.fixture
def graph(tmp_path, hub_dataset, photos_entry):
    local = tmp_path / "data" / "imgs"
    local.mkdir(parents=True)
    from hf_assets_tests.imagegen import encode_image

    for i, (w, h) in enumerate([(300, 200), (200, 300), (256, 256), (512, 128)]):
        (local / f"img_{i}.jpg").write_bytes(encode_image(w, h, seed=i))
        (local / f"img_{i}.txt").write_text(f"local picture {i}")
    entries = [
        {**photos_entry, "train_batch_size": 4},
        {
            "id": "local-set",
            "type": "local",
            "instance_data_dir": "data/imgs",
            "caption_strategy": "textfile",
            "resolution": 128,
            "resolution_type": "pixel",
            "crop": True,
            "crop_aspect": "square",
            "crop_style": "center",
        },
        {"id": "off", "type": "huggingface", "disabled": True},
        {"id": "te", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/te"},
    ]
    config = write_config(tmp_path / "dataloader.json", entries)
    defs = build_definitions(config)
    (tmp_path / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    return defs, instance, tmp_path


def run(defs, instance, partition):
    job = defs.resolve_job_def("scan_datasets")
    result = job.execute_in_process(partition_key=partition, instance=instance)
    assert result.success
    return result


def test_partitions_are_the_enabled_dataset_backend_ids(graph):
    defs, _, _ = graph
    partitions = defs.resolve_assets_def("raw_split").partitions_def
    assert partitions.get_partition_keys() == ["photos", "local-set"]


def test_all_five_asset_keys_exist_partitioned_alike(graph):
    defs, _, _ = graph
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"raw_split", "filtered_index", "aspect_buckets", "vae_latents", "text_embeds"} <= keys
    partition_defs = {defs.resolve_assets_def(k).partitions_def for k in keys}
    assert len(partition_defs) == 1


def test_filtered_index_and_buckets_load_as_arrow_tables(graph):
    defs, instance, tmp_path = graph
    run(defs, instance, "photos")
    index = defs.load_asset_value("filtered_index", partition_key="photos", instance=instance)
    buckets = defs.load_asset_value("aspect_buckets", partition_key="photos", instance=instance)
    assert isinstance(index, pa.Table) and isinstance(buckets, pa.Table)
    assert {"filename", "caption", "captions", "width", "height"} <= set(index.column_names)
    assert {
        "filename",
        "bucket",
        "target_width",
        "target_height",
        "resize_width",
        "resize_height",
        "crop_left",
        "crop_top",
    } <= set(buckets.column_names)
    assert buckets.num_rows == index.num_rows > 0


def test_tables_persist_as_parquet_and_manifest_under_cache_dir(graph):
    defs, instance, tmp_path = graph
    run(defs, instance, "photos")
    folder = tmp_path / "cache" / "photos" / "huggingface_metadata" / "photos"
    for name in ("filtered_index", "aspect_buckets"):
        assert (folder / f"{name}.parquet").is_file()
        manifest = json.loads((folder / f"{name}.json").read_text())
        assert manifest["rows"] > 0 and manifest["backend"] == "photos"
    assert (folder / "aspect_buckets.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_materialization_metadata_reports_drops_and_histogram(graph):
    defs, instance, _ = graph
    result = run(defs, instance, "photos")
    by_asset = {
        m.materialization.asset_key.to_user_string(): m.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    raw = by_asset["raw_split"]
    assert raw["rows"].value == 24 and raw["fingerprint"].value
    dropped = {r.data["reason"]: r.data["rows"] for r in by_asset["filtered_index"]["dropped_by_reason"].value.records}
    assert dropped["unreadable_image"] == 1
    assert "data:image/svg+xml;base64," in by_asset["aspect_buckets"]["histogram"].value  # small: shown inline
    assert "data:image/png;base64," in by_asset["bucket_previews"]["histogram_png"].value
    assert by_asset["aspect_buckets"]["small_buckets"].value.records  # train_batch_size 4 leaves small buckets


def test_local_partition_runs_independently(graph):
    defs, instance, _ = graph
    run(defs, instance, "local-set")
    buckets = defs.load_asset_value("aspect_buckets", partition_key="local-set", instance=instance)
    assert sorted(buckets.column("filename").to_pylist()) == [f"img_{i}.jpg" for i in range(4)]
    assert set(buckets.column("bucket").to_pylist()) == {"1.0"}
    assert set(buckets.column("target_width").to_pylist()) == {128}


def test_loading_before_materializing_says_so(graph):
    defs, instance, _ = graph
    with pytest.raises(Exception, match="not been materialized"):
        defs.load_asset_value("filtered_index", partition_key="photos", instance=instance)


def test_nightly_schedule_requests_one_run_per_backend(graph):
    defs, instance, _ = graph
    schedule = defs.resolve_schedule_def("nightly_refresh")
    when = datetime.datetime(2026, 11, 25, 3, 0, tzinfo=datetime.UTC)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert sorted(r.partition_key for r in requests) == ["local-set", "photos"]
    assert sorted(r.run_key for r in requests) == ["local-set-2026-11-25", "photos-2026-11-25"]


def scan_one(tmp_path, entry: dict):
    """scan_datasets over a config holding only `entry`; failures are returned, not raised."""
    defs = build_definitions(write_config(tmp_path / "one.json", [entry]))
    (tmp_path / "one_home").mkdir(exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "one_home"))
    job = defs.resolve_job_def("scan_datasets")
    return job.execute_in_process(partition_key=entry["id"], instance=instance, raise_on_error=False)


def step_failure(result) -> str:
    """A dg.Failure's description, else the message of the exception that failed the step."""
    assert not result.success
    data = result.get_step_failure_events()[0].step_failure_data
    if data.user_failure_data and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error.cause is not None:  # Dagster wraps the user's exception
        error = error.cause
    return error.message


def test_filtered_index_fails_when_every_row_is_dropped_naming_the_backend_and_the_counts(
    tmp_path, hub_dataset, photos_entry
):
    # A threshold no photo reaches (a typo'd scale, 0-10 read as 0-100): caches must never be pruned to nothing.
    entry = {**photos_entry, "filter_func": {"quality_thresholds": {"aesthetic_score": 45}}}
    result = scan_one(tmp_path, entry)
    assert step_failure(result) == (
        "backend 'photos': all 24 rows were dropped: unreadable_image 1, quality 23; "
        "check filter_func / minimum_image_size"
    )
    assert not (tmp_path / "cache" / "photos" / "huggingface_metadata" / "photos" / "filtered_index.parquet").exists()
    assert [e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == [
        "raw_split"
    ]


def test_filtered_index_fails_on_an_empty_split(tmp_path):
    folder = tmp_path / "data" / "not_copied_yet"
    folder.mkdir(parents=True)
    (folder / "README.txt").write_text("images go here")
    entry = {
        "id": "empty-set",
        "type": "local",
        "instance_data_dir": "data/not_copied_yet",
        "caption_strategy": "textfile",
        "resolution": 128,
        "resolution_type": "pixel",
    }
    message = step_failure(scan_one(tmp_path, entry))
    assert message.startswith("backend 'empty-set': the split is empty (0 rows in ")
    assert "not_copied_yet" in message and message.endswith("check dataset_name, split and instance_data_dir")


def test_quality_metric_typo_fails_filtered_index_naming_the_backend_and_the_metric(
    tmp_path, hub_dataset, photos_entry
):
    entry = {**photos_entry, "filter_func": {"quality_thresholds": {"aesthetics_score": 5.0}}}
    message = step_failure(scan_one(tmp_path, entry))
    assert "backend 'photos': filter_func.quality_thresholds: metric 'aesthetics_score' " in message
    assert "available fields: aesthetic_score, clip_score" in message
