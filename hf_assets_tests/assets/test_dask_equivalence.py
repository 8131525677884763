"""The same asset code on a real Dask LocalCluster (2 worker processes) gives the cache the in-process run gives,
for an image backend and for a clip backend alike. The two tests share one cluster: its workers start (and import
dagster, torch and diffusers) once, and take each test's HF_* environment before its run."""

import os

import dagster as dg
import pytest
import torch

from hf_assets.cache.latents import open_latents
from hf_assets.cache.manifest import read_manifest
from hf_assets_tests.conftest import write_config
from hf_assets_tests.encode.test_clip_media import ENTRY as CLIP_ENTRY
from hf_assets_tests.jobs import prepare_job, prepare_job_again, prepare_job_on_dask_again

pytestmark = pytest.mark.slow


def configure(tmp_path, photos_entry, name):
    entry = {**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32, "cache_dir": f"cache/{name}"}
    return write_config(tmp_path / f"{name}.json", [entry])


def step_hosts(instance, run_id) -> dict[str, int]:
    """step key -> pid of the process that ran it."""
    return {r.step_key: r.dagster_event.pid for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}


def adopt_environment(environ: dict[str, str]) -> None:
    """Run in each worker: its HF_* variables become exactly `environ` (the test's), as if it had started now."""
    for name in [name for name in os.environ if name.startswith("HF_") and name not in environ]:
        del os.environ[name]
    os.environ.update(environ)


@pytest.fixture(scope="module")
def cluster():
    """One Dask LocalCluster of two worker processes for the module's tests: (cluster, the workers' pids)."""
    distributed = pytest.importorskip("distributed")
    with pytest.MonkeyPatch.context() as patch:  # the workers import this checkout's hf_assets_tests
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            with distributed.Client(c) as client:
                workers = set(client.run(os.getpid).values())
            yield c, workers


def run_in_process_then_on_dask(tmp_path, monkeypatch, cluster, configure, partition: str, shards: int, job):
    """Run prepare_datasets for `partition` in process (config `configure("inproc")`), then on the module's Dask
    LocalCluster of two worker processes (config `configure("dask")`, the job behind the pointer `job`: a worker
    keeps the job it last reconstructed per pointer); the Dask run's step key -> pid, the workers' pids and its
    vae_latents metadata."""
    import distributed

    monkeypatch.setenv("HF_ASSETS_SHARDS", str(shards))
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    tags = {"dagster/partition": partition}

    monkeypatch.setenv("HF_ASSETS_EXECUTOR", "in_process")
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(configure("inproc")))
    assert dg.execute_job(dg.reconstructable(prepare_job), instance, tags=tags).success

    monkeypatch.setenv("HF_ASSETS_EXECUTOR", "dask")
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(configure("dask")))
    cluster, workers = cluster
    with distributed.Client(cluster) as client:
        client.run(adopt_environment, {name: value for name, value in os.environ.items() if name.startswith("HF_")})
        assert set(client.run(os.getpid).values()) == workers  # the same two processes the whole module
    existing = {"execution": {"config": {"cluster": {"existing": {"address": cluster.scheduler_address}}}}}
    result = dg.execute_job(dg.reconstructable(job), instance, run_config=existing, tags=tags)
    assert result.success
    (latents,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("vae_latents")]
    metadata = {k: v.value for k, v in latents.materialization.metadata.items()}
    return step_hosts(instance, result.run_id), workers, metadata


def assert_equal_caches(local_dir, remote_dir, at_least: int) -> None:
    """The two latent caches hold the same entries under the same keys, bit for bit."""
    local, remote = open_latents(local_dir), open_latents(remote_dir)
    assert len(local) >= at_least and sorted(local) == sorted(remote)
    keys = lambda d: sorted(read_manifest(d).table.column("key").to_pylist())  # noqa: E731
    assert keys(local.directory) == keys(remote.directory)
    for name in local:
        assert local.entry(name)["key"] == remote.entry(name)["key"]
        assert torch.equal(local[name], remote[name]) and torch.equal(local.std(name), remote.std(name))


def test_dask_local_cluster_and_in_process_give_bitwise_equal_caches(
    tmp_path, hub_dataset, photos_entry, tiny_sdxl, monkeypatch, cluster
):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    ran_on, workers, latents = run_in_process_then_on_dask(
        tmp_path,
        monkeypatch,
        cluster,
        lambda name: configure(tmp_path, photos_entry, name),
        "photos",
        shards=3,
        job=prepare_job_again,
    )
    shard_steps = [key for key in ran_on if ".encode_vae_shard_" in key]
    assert len(shard_steps) == 3 and "vae_latents.commit_vae_latents" in ran_on and "text_embeds" in ran_on
    assert set(ran_on.values()) <= workers and len(workers) == 2  # every step ran in a Dask worker process
    cache = tmp_path / "cache"
    assert_equal_caches(cache / "inproc" / "vae" / "photos", cache / "dask" / "vae" / "photos", at_least=11)
    assert latents["encoded"] == len(open_latents(cache / "dask" / "vae" / "photos"))  # the shards' reports arrived


CLIPS = [(64, 48, 17, 24), (48, 64, 13, 30), (64, 48, 9, 24), (64, 64, 11, 12), (48, 48, 17, 24), (64, 48, 13, 24)]


def write_clips(tmp_path) -> dict:
    """A Hub-style Parquet dataset of six H.264 clips and one damaged one; its backend entry (relative paths)."""
    import datasets

    from hf_assets_tests.videogen import damaged_payload_clip, encode_clip

    clips = [encode_clip(w, h, n, fps=fps, seed=i) for i, (w, h, n, fps) in enumerate(CLIPS)]
    clips.append(damaged_payload_clip(encode_clip(64, 48, 9, seed=7)))
    rows = {"video": clips, "caption": [f"clip {i} of waves" for i in range(len(clips))]}
    (tmp_path / "data" / "clips" / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "data" / "clips" / "data" / "train.parquet"))
    return {**CLIP_ENTRY, "huggingface": {}, "video": {"num_frames": 17, "min_frames": 9}}


def test_a_clip_backend_fans_out_over_dask_workers_like_images_and_its_cache_equals_the_in_process_one(
    tmp_path, tiny_wan, monkeypatch, cluster
):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_wan))
    entry = write_clips(tmp_path)

    def configure_clips(name):
        return write_config(tmp_path / f"{name}.json", [{**entry, "cache_dir": f"cache/{name}"}])

    ran_on, workers, latents = run_in_process_then_on_dask(
        tmp_path, monkeypatch, cluster, configure_clips, "clips", shards=3, job=prepare_job_on_dask_again
    )
    busy = [key for key in ran_on if ".encode_vae_shard_" in key]
    assert len(busy) == 3 and set(ran_on.values()) <= workers and len(workers) == 2
    cache = tmp_path / "cache"
    assert_equal_caches(cache / "inproc" / "vae" / "clips", cache / "dask" / "vae" / "clips", at_least=len(CLIPS))
    assert (latents["encoded"], latents["dropped"]) == (len(CLIPS), 1)  # the damaged clip, reported by its shard
