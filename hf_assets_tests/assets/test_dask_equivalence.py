"""The same asset code on a real Dask LocalCluster (2 worker processes) gives the cache the in-process run gives."""

import os

import dagster as dg
import pytest
import torch

from hf_assets.cache.latents import open_latents
from hf_assets.cache.manifest import read_manifest
from hf_assets_tests.conftest import write_config
from hf_assets_tests.jobs import prepare_job, prepare_job_again

pytestmark = pytest.mark.slow

PARTITION = {"dagster/partition": "photos"}


def configure(tmp_path, photos_entry, name):
    entry = {**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32, "cache_dir": f"cache/{name}"}
    return write_config(tmp_path / f"{name}.json", [entry])


def run_job(instance, job, run_config=None):
    return dg.execute_job(dg.reconstructable(job), instance, run_config=run_config, tags=PARTITION)


def step_hosts(instance, run_id) -> dict[str, int]:
    """step key -> pid of the process that ran it."""
    return {r.step_key: r.dagster_event.pid for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}


def test_dask_local_cluster_and_in_process_give_bitwise_equal_caches(
    tmp_path, hub_dataset, photos_entry, tiny_sdxl, monkeypatch
):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_SHARDS", "3")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))

    monkeypatch.setenv("HF_ASSETS_EXECUTOR", "in_process")
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(configure(tmp_path, photos_entry, "inproc")))
    assert run_job(instance, prepare_job).success

    monkeypatch.setenv("HF_ASSETS_EXECUTOR", "dask")
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(configure(tmp_path, photos_entry, "dask")))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            workers = set(client.run(os.getpid).values())
        existing = {"cluster": {"existing": {"address": cluster.scheduler_address}}}
        result = run_job(instance, prepare_job_again, {"execution": {"config": existing}})
    assert result.success
    ran_on = step_hosts(instance, result.run_id)
    shard_steps = [key for key in ran_on if ".encode_vae_shard_" in key]
    assert len(shard_steps) == 3 and "vae_latents.commit_vae_latents" in ran_on and "text_embeds" in ran_on
    assert set(ran_on.values()) <= workers and len(workers) == 2  # every step ran in a Dask worker process

    local = open_latents(tmp_path / "cache" / "inproc" / "vae" / "photos")
    remote = open_latents(tmp_path / "cache" / "dask" / "vae" / "photos")
    assert len(local) > 10 and sorted(local) == sorted(remote)
    keys = lambda d: sorted(read_manifest(d).table.column("key").to_pylist())  # noqa: E731
    assert keys(local.directory) == keys(remote.directory)
    for name in local:
        assert local.entry(name)["key"] == remote.entry(name)["key"]
        assert torch.equal(local[name], remote[name]) and torch.equal(local.std(name), remote.std(name))
