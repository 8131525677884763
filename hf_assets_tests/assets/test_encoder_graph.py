"""The whole graph through Dagster: encoders in the gpu pool, blocking checks, incremental reruns, lazy values."""

from pathlib import Path

import dagster as dg
import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_assets.assets.metadata import human_size
from hf_assets.cache.latents import LatentCache
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config


@pytest.fixture
def graph(tmp_path, hub_dataset, photos_entry, tiny_sdxl, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    entries = [
        {**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32},
        {"id": "te", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/text"},
    ]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    return defs, dg.DagsterInstance.local_temp(str(tmp_path / "home")), tmp_path


def run(defs, instance, raise_on_error=True):
    job = defs.resolve_job_def("prepare_datasets")
    return job.execute_in_process(partition_key="photos", instance=instance, raise_on_error=raise_on_error)


def metadata(result, asset):
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return None


def test_encoders_are_in_the_gpu_pool(graph):
    defs, _, _ = graph
    pools = {node.name: node.definition.pool for node in defs.resolve_assets_def("vae_latents").node_def.nodes}
    shards = {f"encode_vae_shard_{k}": "gpu" for k in range(8)}  # HF_ASSETS_SHARDS unset: 8
    assert pools == {"reap_dead_runs": None, "plan_vae_latents": None, **shards, "commit_vae_latents": None}
    assert defs.resolve_assets_def("text_embeds").node_def.pool == "gpu"


def test_bundled_instance_config_limits_the_pool_to_one(tmp_path):
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).parents[2] / "dagster.yaml").read_text())
    config = dg.DagsterInstance.from_config(str(home)).get_concurrency_config()
    assert config.pool_config.default_pool_limit == 1


def test_full_graph_passes_its_checks_and_values_load_lazily(graph):
    defs, instance, tmp_path = graph
    result = run(defs, instance)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert len(checks) == 10 and all(checks.values())  # 3 metadata checks, 3 per encoder cache, the pairs' check
    buckets = defs.load_asset_value("aspect_buckets", partition_key="photos", instance=instance)
    latents = defs.load_asset_value("vae_latents", partition_key="photos", instance=instance)
    embeds = defs.load_asset_value("text_embeds", partition_key="photos", instance=instance)
    assert isinstance(latents, LatentCache) and sorted(latents) == sorted(buckets.column("filename").to_pylist())
    first = buckets.to_pylist()[0]
    assert latents[first["filename"]].shape == (4, first["target_height"] // 8, first["target_width"] // 8)
    assert [d["prompt_embeds"].shape[0] for d in embeds[first["filename"]]] == [77] * len(first["captions"])
    assert embeds.captions(first["filename"]) == first["captions"]
    assert (tmp_path / "cache" / "text" / "photos" / "manifest.parquet").is_file()
    for asset in ("vae_latents", "text_embeds"):  # the byte count the reports read, and a size people read
        found = metadata(result, asset)
        assert found["cache_bytes"] > 0 and found["cache_size"] == human_size(found["cache_bytes"])
        assert (Path(found["cache_dir"]) / "manifest.parquet").is_file()


def test_rerun_with_nothing_changed_encodes_nothing(graph):
    defs, instance, _ = graph
    first = run(defs, instance)
    second = run(defs, instance)
    assert metadata(first, "vae_latents")["encoded"] > 0
    assert metadata(second, "vae_latents")["encoded"] == 0
    assert metadata(second, "vae_latents")["reused"] == metadata(first, "vae_latents")["encoded"]
    assert metadata(second, "text_embeds")["encoded"] == 0


def test_planted_nan_latent_is_encoded_again_by_the_next_run_and_reported(graph):
    defs, instance, tmp_path = graph
    run(defs, instance)
    shard = next((tmp_path / "cache" / "photos" / "vae" / "photos" / "shards").glob("*.safetensors"))
    tensors = load_file(shard)
    name = next(n for n in tensors if n.endswith("/mean"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, shard)
    result = run(defs, instance)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["latents_finite"].passed and checks["latents_complete"].passed
    repaired = metadata(result, "vae_latents")["repaired"]
    assert repaired["nonfinite_entries"] == 1 and repaired["reencoded_nonfinite"] == 1
    assert checks["latents_finite"].metadata["repaired"].value == repaired
    assert metadata(result, "vae_latents")["encoded"] == 1


def test_truncated_shard_and_deleted_manifest_are_repaired_by_the_next_run(graph):
    defs, instance, tmp_path = graph
    first = run(defs, instance)
    cache = tmp_path / "cache" / "photos" / "vae" / "photos"
    shard = sorted((cache / "shards").glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:-100])
    (tmp_path / "cache" / "text" / "photos" / "manifest.parquet").unlink()
    result = run(defs, instance)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert len(checks) == 10 and all(checks.values())  # 3 metadata checks, 3 per encoder cache, the pairs' check
    repaired = metadata(result, "vae_latents")["repaired"]
    assert list(repaired["unreadable_shards"]) == [shard.name] and not shard.exists()
    assert metadata(result, "vae_latents")["encoded"] == repaired["unreadable_entries"] > 0
    text = metadata(result, "text_embeds")
    assert text["encoded"] == 0 and text["repaired"]["recovered_entries"] == metadata(first, "text_embeds")["encoded"]


def test_nan_from_the_model_itself_fails_the_blocking_check_and_stops_text_embeds(graph, tiny_sdxl, monkeypatch):
    import shutil

    defs, instance, tmp_path = graph
    model = tmp_path / "nan-model"
    shutil.copytree(tiny_sdxl, model)
    weights = next((model / "vae").glob("*.safetensors"))
    tensors = load_file(weights)
    bias = next(n for n in tensors if n.startswith("encoder.conv_out") and n.endswith("bias"))
    tensors[bias] = torch.full_like(tensors[bias], float("nan"))
    save_file(tensors, weights)
    monkeypatch.setenv("HF_ASSETS_MODEL", str(model))
    result = run(defs, instance, raise_on_error=False)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["latents_finite"].passed and checks["latents_complete"].passed
    assert not result.success
    assert metadata(result, "text_embeds") is None


def test_missing_model_fails_naming_the_setting(graph, monkeypatch):
    defs, instance, tmp_path = graph
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tmp_path / "no-such-pipeline"))
    with pytest.raises(Exception) as info:
        run(defs, instance)
    assert "HF_ASSETS_MODEL=" in str(info.value) + str(info.value.__cause__)
    assert "no such folder" in str(info.value) + str(info.value.__cause__)


def run_checks_alone(defs, instance, *keys: tuple[str, str]):
    """A run of only the named checks (asset, check) on photos, as "Execute" in the UI launches it."""
    checks = {dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in keys}
    job = defs.resolve_job_def("prepare_datasets").get_subset(asset_selection=set(), asset_check_selection=checks)
    return job.execute_in_process(partition_key="photos", instance=instance, raise_on_error=False)


def test_a_check_runs_alone_on_the_stored_cache_and_encodes_nothing(graph):
    defs, instance, tmp_path = graph
    run(defs, instance)
    alone = run_checks_alone(defs, instance, ("vae_latents", "latents_finite"), ("text_embeds", "text_embeds_complete"))
    assert alone.success and not alone.get_asset_materialization_events()  # nothing encoded, nothing rewritten
    assert {(c.asset_key.to_user_string(), c.check_name, c.passed) for c in alone.get_asset_check_evaluations()} == {
        ("vae_latents", "latents_finite", True),
        ("text_embeds", "text_embeds_complete", True),
    }
    # A latent spoiled on disk after the run: the check alone reads the stored shard and fails, naming the entry.
    shard = next((tmp_path / "cache" / "photos" / "vae" / "photos" / "shards").glob("*.safetensors"))
    tensors = load_file(shard)
    name = next(n for n in tensors if n.endswith("/mean"))
    tensors[name] = torch.full_like(tensors[name], float("inf"))
    save_file(tensors, shard)
    (text_manifest := tmp_path / "cache" / "text" / "photos" / "manifest.parquet").unlink()
    again = run_checks_alone(defs, instance, ("vae_latents", "latents_finite"), ("text_embeds", "text_embeds_complete"))
    assert not again.get_asset_materialization_events()
    found = {c.check_name: c for c in again.get_asset_check_evaluations()}
    assert not found["latents_finite"].passed and found["latents_finite"].metadata["examples"].value == [name]
    assert found["latents_finite"].metadata["partition"].value == "photos"
    examples = found["text_embeds_complete"].metadata["examples"].value
    assert not found["text_embeds_complete"].passed and f"no cache at {text_manifest.parent}" in examples[0]
