"""The metadata assets' checks: each passes on a fresh scan, fails on real faults (too many rows dropped, an empty
bucket table, a source changed since raw_split), runs alone on what was stored, and belongs to its partition."""

import dagster as dg
import pytest

from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config
from hf_assets_tests.imagegen import encode_image

CHECKS = {
    ("raw_split", "split_current"),
    ("filtered_index", "drop_rate"),
    ("aspect_buckets", "buckets_not_empty"),
}


@pytest.fixture
def graph(tmp_path, hub_dataset, photos_entry):
    folder = tmp_path / "data" / "imgs"
    folder.mkdir(parents=True)
    for i, (w, h) in enumerate([(300, 200), (200, 300), (256, 256), (512, 128)]):
        (folder / f"img_{i}.jpg").write_bytes(encode_image(w, h, seed=i))
        (folder / f"img_{i}.txt").write_text(f"local picture {i}")
    local = {
        "id": "local-set",
        "type": "local",
        "instance_data_dir": "data/imgs",
        "caption_strategy": "textfile",
        "resolution": 128,
        "resolution_type": "pixel",
    }
    entries = [
        photos_entry,
        # 300 px minimum: the 120x90, 333x517 and 480x640-class rows go, well over a bound of 10%
        {**photos_entry, "id": "strict", "cache_dir": "cache/strict", "minimum_image_size": 500, "max_drop_rate": 0.1},
        local,
        # every bucket holds fewer than 64 samples and small buckets are dropped: an empty bucket table
        {**local, "id": "tiny-buckets", "train_batch_size": 64, "drop_small_buckets": True},
    ]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    return defs, dg.DagsterInstance.local_temp(str(tmp_path / "home")), tmp_path


def scan(defs, instance, partition):
    job = defs.resolve_job_def("scan_datasets")
    return job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)


def checks_alone(defs, instance, partition, keys=CHECKS):
    """A run of only these checks on one partition, as "Execute" in the UI launches it."""
    selection = {dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in keys}
    job = defs.resolve_job_def("scan_datasets").get_subset(asset_selection=set(), asset_check_selection=selection)
    return job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_the_metadata_checks_are_partitioned_non_blocking_and_in_the_scan_job(graph):
    defs, _, _ = graph
    specs = {(s.asset_key.to_user_string(), s.name): s for checks in defs.asset_checks for s in checks.check_specs}
    assert CHECKS <= set(specs)
    for key in CHECKS:
        assert specs[key].partitions_def.get_partition_keys() == ["photos", "strict", "local-set", "tiny-buckets"]
        assert not specs[key].blocking and specs[key].description
    job = defs.resolve_job_def("scan_datasets")
    assert {(k.asset_key.to_user_string(), k.name) for k in job.asset_layer.asset_graph.asset_check_keys} >= CHECKS


def test_a_fresh_scan_passes_every_metadata_check_each_recorded_for_its_partition(graph):
    defs, instance, _ = graph
    for partition in ("photos", "local-set"):
        result = scan(defs, instance, partition)
        assert result.success
        found = evaluations(result)
        assert {(c.asset_key.to_user_string(), n) for n, c in found.items()} == CHECKS
        assert all(c.passed for c in found.values()), {n: c.metadata for n, c in found.items()}
        assert {c.metadata["partition"].value for c in found.values()} == {partition}
    rate = found["drop_rate"].metadata
    assert rate["drop_rate"].value == 0 and rate["max_drop_rate"].value == 0.5  # the default bound
    key = dg.AssetCheckKey(dg.AssetKey("raw_split"), "split_current")
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
    assert {record.partition for record in history} == {"photos", "local-set"}


def test_drop_rate_fails_above_the_entry_bound_for_that_partition_only(graph):
    defs, instance, _ = graph
    result = scan(defs, instance, "strict")
    assert result.success  # not blocking: the run goes on, the check shows red
    failed = evaluations(result)["drop_rate"]
    assert not failed.passed
    figures = {k: v.value for k, v in failed.metadata.items()}
    assert figures["max_drop_rate"] == 0.1 and figures["drop_rate"] > 0.1
    assert figures["failures"] == figures["dropped"] > 0
    assert "above max_drop_rate 0.1" in figures["examples"][0] and "too_small" in " ".join(figures["examples"][1:])
    assert evaluations(scan(defs, instance, "photos"))["drop_rate"].passed  # the other partition, default bound
    key = dg.AssetCheckKey(dg.AssetKey("filtered_index"), "drop_rate")
    latest = {
        r.partition: r.event.dagster_event.asset_check_evaluation_data.passed
        for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
    }
    assert latest == {"strict": False, "photos": True}


def test_an_empty_bucket_table_fails_buckets_not_empty(graph):
    defs, instance, _ = graph
    found = evaluations(scan(defs, instance, "tiny-buckets"))
    assert found["drop_rate"].passed  # the index kept every image: only the bucket table is empty
    empty = found["buckets_not_empty"]
    assert not empty.passed and empty.metadata["samples"].value == 0
    assert "the bucket table is empty" in empty.metadata["examples"].value[0]


def test_split_current_alone_fails_after_the_folder_changes_naming_the_files(graph):
    defs, instance, tmp_path = graph
    assert scan(defs, instance, "local-set").success
    alone = checks_alone(defs, instance, "local-set", {("raw_split", "split_current")})
    assert alone.success and not alone.get_asset_materialization_events()
    assert evaluations(alone)["split_current"].passed
    (tmp_path / "data" / "imgs" / "img_9.jpg").write_bytes(encode_image(320, 240, seed=9))
    (tmp_path / "data" / "imgs" / "img_0.jpg").unlink()
    stale = evaluations(checks_alone(defs, instance, "local-set", {("raw_split", "split_current")}))["split_current"]
    examples = stale.metadata["examples"].value
    assert not stale.passed and "the source changed since raw_split was materialized" in examples[0]
    assert set(examples[1:]) == {"added img_9.jpg", "removed img_0.jpg"}
    assert stale.metadata["current_fingerprint"].value != stale.metadata["stored_fingerprint"].value
    assert evaluations(scan(defs, instance, "local-set"))["split_current"].passed  # rescanned: current again


def test_split_current_names_a_rewritten_parquet_file(graph, photos_entry):
    from hf_assets_tests.conftest import photo_rows, write_hub_dataset

    defs, instance, tmp_path = graph
    assert scan(defs, instance, "photos").success
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(30))  # both shards rewritten with more rows
    stale = evaluations(checks_alone(defs, instance, "photos", {("raw_split", "split_current")}))["split_current"]
    assert not stale.passed
    changed = [e for e in stale.metadata["examples"].value[1:] if e.startswith("changed ")]
    assert len(changed) == 2 and all(e.endswith(".parquet") for e in changed)


def test_checks_run_before_their_asset_fail_saying_what_to_materialize(graph):
    defs, instance, tmp_path = graph
    found = evaluations(checks_alone(defs, instance, "photos"))
    assert set(found) == {name for _, name in CHECKS} and not any(c.passed for c in found.values())
    folder = tmp_path / "cache" / "photos" / "huggingface_metadata" / "photos"
    for asset, name in CHECKS:
        assert found[name].metadata["examples"].value == [
            f"nothing stored at {folder}: materialize {asset} for partition photos first"
        ]


def test_split_current_in_the_run_that_listed_the_source_lists_nothing_again(graph):
    from hf_assets.config import load_config
    from hf_assets.data.metadata_verify import split_current

    defs, instance, tmp_path = graph
    result = scan(defs, instance, "local-set")
    assert result.success and evaluations(result)["split_current"].passed
    backend = load_config(tmp_path / "dataloader.json").backend("local-set")

    def no_listing(_backend):
        raise AssertionError("listed again")

    finding, figures = split_current(backend.metadata_dir, backend, no_listing, run_id=result.run_id)
    assert finding.passed and figures["listed_in_this_run"] is True
    other, _ = split_current(backend.metadata_dir, backend, no_listing, run_id="another-run")  # another run lists
    assert not other.passed and "could not be opened again: listed again" in other.examples[0]
