"""Check results belong to their backend partition: each backend's latest result is its own, with its partition."""

import shutil

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
    specs = [spec for checks in defs.asset_checks for spec in checks.check_specs]  # their own steps
    by_asset = {}
    for spec in specs:
        by_asset.setdefault(spec.asset_key.to_user_string(), set()).add(spec.name)
    assert by_asset == {
        "raw_split": {"split_current"},
        "filtered_index": {"drop_rate"},
        "aspect_buckets": {"buckets_not_empty"},
        "vae_latents": {"latents_complete", "latent_shapes", "latents_finite", "conditioning_pairs_complete"},
        "text_embeds": {"text_embeds_complete", "text_embed_shapes", "text_embeds_finite"},
    }
    assert all(s.partitions_def.get_partition_keys() == ["photos", "photos_b"] for s in specs)
    # The encoder cache checks stop text_embeds after bad latents; the metadata checks and the conditioning pairs'
    # check show red but let the run go on (a partner never holds back its source).
    blocking = {"latents_complete", "latent_shapes", "latents_finite"} | by_asset["text_embeds"]
    assert {s.name for s in specs if s.blocking} == blocking


def test_each_check_result_is_recorded_for_its_partition_and_blocks_only_it(graph, tiny_sdxl, monkeypatch):
    defs, instance, tmp_path = graph
    assert run(defs, instance, "photos").success
    # photos_b encodes with a VAE whose output is NaN: its blocking check fails, photos' result is untouched.
    model = tmp_path / "nan-model"
    shutil.copytree(tiny_sdxl, model)
    weights = next((model / "vae").glob("*.safetensors"))
    tensors = load_file(weights)
    bias = next(n for n in tensors if n.startswith("encoder.conv_out") and n.endswith("bias"))
    tensors[bias] = torch.full_like(tensors[bias], float("nan"))
    save_file(tensors, weights)
    monkeypatch.setenv("HF_ASSETS_MODEL", str(model))
    failed = run(defs, instance, "photos_b")
    assert not failed.success
    assert not [
        e
        for e in failed.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "text_embeds"
    ]

    key = dg.AssetCheckKey(dg.AssetKey("vae_latents"), "latents_finite")
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
    by_partition = {record.partition: record for record in history}
    assert len(history) == 2 and set(by_partition) == {"photos", "photos_b"}
    assert by_partition["photos"].event.dagster_event.asset_check_evaluation_data.passed
    assert not by_partition["photos_b"].event.dagster_event.asset_check_evaluation_data.passed
