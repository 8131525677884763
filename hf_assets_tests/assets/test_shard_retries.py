"""A failed shard step is retried alone, and a re-execution from failure encodes only the unfinished shards."""

import dagster as dg
import pytest

from hf_assets.assets import vae_latents as vae_latents_asset
from hf_assets.cache.encoded import CacheBusyError, EncodedCache
from hf_assets.cache.latents import open_latents
from hf_assets_tests.conftest import write_config
from hf_assets_tests.jobs import (
    prepare_job_for_reexecution,
    prepare_job_for_reexecution_again,
    prepare_job_for_retries,
)

PARTITION = {"dagster/partition": "photos"}


@pytest.fixture
def setup(tmp_path, hub_dataset, photos_entry, tiny_sdxl, monkeypatch):
    entry = {**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32}
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(write_config(tmp_path / "dataloader.json", [entry])))
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_SHARDS", "3")
    monkeypatch.setenv("HF_ASSETS_EXECUTOR", "in_process")
    (tmp_path / "home").mkdir()
    return dg.DagsterInstance.local_temp(str(tmp_path / "home")), tmp_path


def lane_fault(monkeypatch, failing: dict):
    """Make a shard's writer find its lane held by another process (a lost attempt still running) while
    `failing["times"]` > 0, for the first shard that starts writing."""
    real = EncodedCache.writer

    def writer(self, max_bytes=None, lane=None):
        if lane is not None and failing["times"] > 0 and failing.setdefault("lane", lane) == lane:
            failing["times"] -= 1
            raise CacheBusyError(f"{self.directory} lane {lane} is held by another writer")
        return real(self, max_bytes, lane)

    monkeypatch.setattr(EncodedCache, "writer", writer)


def events(instance, run_id, kind) -> list[str]:
    return [r.step_key for r in instance.all_logs(run_id, of_type=kind)]


def test_a_shard_that_fails_once_is_retried_alone_and_the_run_succeeds(setup, monkeypatch):
    instance, tmp_path = setup
    monkeypatch.setattr(vae_latents_asset, "SHARD_RETRY", dg.RetryPolicy(max_retries=1))
    failing = {"times": 1}
    lane_fault(monkeypatch, failing)
    result = dg.execute_job(dg.reconstructable(prepare_job_for_retries), instance, tags=PARTITION)
    assert result.success and failing["times"] == 0
    retried = events(instance, result.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    shard = int(failing["lane"].rsplit("-", 1)[1])
    assert retried == [f"vae_latents.encode_vae_shard_{shard}"]
    started = events(instance, result.run_id, dg.DagsterEventType.STEP_START)
    assert (
        started.count(retried[0]) == 1
        and events(instance, result.run_id, dg.DagsterEventType.STEP_RESTARTED) == retried
    )  # only that step ran again
    checks = [
        r.asset_check_evaluation.passed
        for r in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert len(checks) == 10 and all(checks)  # the metadata assets' 3 and the encoder assets' 7
    assert len(open_latents(tmp_path / "cache" / "photos" / "vae" / "photos")) > 10


def test_reexecution_from_failure_encodes_only_the_unfinished_shard(setup, monkeypatch):
    instance, tmp_path = setup
    monkeypatch.setattr(vae_latents_asset, "SHARD_RETRY", None)
    failing = {"times": 10**6}
    lane_fault(monkeypatch, failing)
    first = dg.execute_job(
        dg.reconstructable(prepare_job_for_reexecution), instance, tags=PARTITION, raise_on_error=False
    )
    assert not first.success
    failed = events(instance, first.run_id, dg.DagsterEventType.STEP_FAILURE)
    succeeded = events(instance, first.run_id, dg.DagsterEventType.STEP_SUCCESS)
    shard_steps = {k for k in succeeded if "encode_vae_shard" in k}
    assert failed == [f"vae_latents.encode_vae_shard_{failing['lane'].rsplit('-', 1)[1]}"] and len(shard_steps) == 2

    failing["times"] = 0
    options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
    second = dg.execute_job(
        dg.reconstructable(prepare_job_for_reexecution_again), instance, reexecution_options=options, tags=PARTITION
    )
    assert second.success
    ran = set(events(instance, second.run_id, dg.DagsterEventType.STEP_START))
    rerun = {failed[0], "vae_latents.commit_vae_latents", "check_vae_latents", "text_embeds", "check_text_embeds"}
    rerun.add("check_conditioning_pairs")
    assert ran == rerun  # finished shards are reused; the checks read the cache again
    reports = [
        e
        for e in instance.all_logs(second.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.dagster_event.asset_key == dg.AssetKey("vae_latents")
    ]
    metadata = reports[0].asset_materialization.metadata
    cache = open_latents(tmp_path / "cache" / "photos" / "vae" / "photos")
    assert metadata["encoded"].value == len(cache) > 10  # the finished shards' latents plus the re-executed one's
