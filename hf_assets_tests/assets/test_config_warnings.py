"""Config keys accepted but not used reach the user: in the definitions' load log and raw_split's metadata."""

import logging

import dagster as dg

from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config


def test_unused_keys_are_logged_at_load_and_shown_on_raw_split_and_aspect_drops_have_reasons(
    tmp_path, hub_dataset, photos_entry, caplog
):
    entries = [
        {
            **photos_entry,
            "vae_cache_clear_each_epoch": True,
            "maximum_image_size": 1536,
            "target_downsample_size": 1280,
            "resolution": 256,
            "resolution_type": "pixel",
            "minimum_aspect_ratio": 1.2,
        },
        {**photos_entry, "id": "clean"},
    ]
    config = write_config(tmp_path / "dataloader.json", entries)
    with caplog.at_level(logging.WARNING, logger="hf_assets.definitions"):
        defs = build_definitions(config)
    logged = [r.getMessage() for r in caplog.records if r.name == "hf_assets.definitions"]
    assert any("backend 'photos': key 'vae_cache_clear_each_epoch' is accepted but not used" in m for m in logged)
    assert any("'maximum_image_size' and 'target_downsample_size' are accepted but not used" in m for m in logged)
    assert not any("backend 'clean'" in m for m in logged)

    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    for partition in ("photos", "clean"):
        job = defs.resolve_job_def("scan_datasets")
        assert job.execute_in_process(partition_key=partition, instance=instance).success

    def metadata(asset: str, partition: str) -> dict:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
        ).records
        return (records[0].asset_materialization if records else event.asset_materialization).metadata

    warned = metadata("raw_split", "photos")["config_warnings"].value
    assert "vae_cache_clear_each_epoch" in warned and "maximum_image_size" in warned
    assert metadata("raw_split", "clean")["config_warnings"].value == "none"

    drops = metadata("aspect_buckets", "photos")["dropped_by_reason"]
    counts = {r.data["reason"]: r.data["rows"] for r in drops.value.records}
    buckets = defs.load_asset_value("aspect_buckets", partition_key="photos", instance=instance)
    index = defs.load_asset_value("filtered_index", partition_key="photos", instance=instance)
    assert counts["aspect_ratio_below_minimum"] > 0 and counts["aspect_ratio_above_maximum"] == 0
    assert buckets.num_rows + counts["aspect_ratio_below_minimum"] == index.num_rows
    assert min(float(b) for b in buckets["bucket"].to_pylist()) >= 1.2
