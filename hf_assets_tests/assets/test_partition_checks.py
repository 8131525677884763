"""Check results belong to their backend partition: each backend's latest result is its own, with its partition."""

import dagster as dg
import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config


@pytest.fixture
def graph(tmp_path, hub_dataset, photos_entry, tiny_sdxl, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    small = {**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32}
    entries = [small, {**small, "id": "photos_b", "cache_dir": "cache/photos_b"}]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    return defs, dg.DagsterInstance.local_temp(str(tmp_path / "home")), tmp_path


def run(defs, instance, partition):
    job = defs.resolve_job_def("prepare_datasets")
    return job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)


def test_check_specs_are_partitioned_like_their_asset(graph):
    defs, _, _ = graph
    for asset in ("vae_latents", "text_embeds"):
        specs = list(defs.resolve_assets_def(asset).check_specs)
        assert specs and all(s.partitions_def.get_partition_keys() == ["photos", "photos_b"] for s in specs)
        assert all(s.blocking for s in specs)


def test_each_check_result_is_recorded_for_its_partition_and_blocks_only_it(graph):
    defs, instance, tmp_path = graph
    assert run(defs, instance, "photos").success
    # Plant a NaN in photos_b's first shard after its first run: its rerun fails latents_finite, photos is untouched.
    assert run(defs, instance, "photos_b").success
    shard = next((tmp_path / "cache" / "photos_b" / "vae" / "photos_b" / "shards").glob("*.safetensors"))
    tensors = load_file(shard)
    name = next(n for n in tensors if n.endswith("/mean"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, shard)
    assert not run(defs, instance, "photos_b").success

    key = dg.AssetCheckKey(dg.AssetKey("vae_latents"), "latents_finite")
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
    by_partition = {}
    for record in history:  # newest first
        by_partition.setdefault(record.partition, record)
    assert set(by_partition) == {"photos", "photos_b"}
    assert by_partition["photos"].event.dagster_event.asset_check_evaluation_data.passed
    assert not by_partition["photos_b"].event.dagster_event.asset_check_evaluation_data.passed
    assert all(r.partition for r in history) and len(history) == 3
