"""HF_ASSETS_EXECUTOR picks the executor when the definitions load; the gpu pool holds on the multiprocess one."""

from pathlib import Path

import dagster as dg
import pytest

from hf_assets import env, executors
from hf_assets_tests.conftest import write_config
from hf_assets_tests.jobs import prepare_job_for_pool_limit


@pytest.mark.parametrize("name", ["in_process", "multiprocess", "dask", "k8s"])
def test_each_executor_is_chosen_by_name(name, monkeypatch):
    monkeypatch.setenv(env.EXECUTOR, name)
    assert executors.executor_from_env().name == name


def test_an_unknown_executor_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv(env.EXECUTOR, "slurm")
    with pytest.raises(ValueError, match="HF_ASSETS_EXECUTOR='slurm': choose one of in_process, multiprocess"):
        executors.executor_from_env()


def test_a_missing_integration_says_which_extra_to_install(monkeypatch):
    monkeypatch.setenv(env.EXECUTOR, "k8s")
    monkeypatch.setitem(__import__("sys").modules, "dagster_k8s", None)
    with pytest.raises(ImportError, match=r"pip install 'hf_assets\[k8s\]'"):
        executors.executor_from_env()


def test_gpus_come_from_the_setting_then_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv(env.GPUS, "4")
    assert executors.visible_gpus() == 4
    monkeypatch.delenv(env.GPUS)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2,5")
    assert executors.visible_gpus() == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert executors.visible_gpus() == 0


def test_multiprocess_runs_one_step_per_gpu_unless_the_run_config_says_otherwise():
    executor = executors.multiprocess_executor(2)
    resolve = executor.config_schema.resolve_config
    assert resolve({}).value["config"]["max_concurrent"] == 2
    assert resolve({"config": {"max_concurrent": 1}}).value["config"]["max_concurrent"] == 1
    assert executors.multiprocess_executor(0) is dg.multiprocess_executor  # no GPU: one process per core


# Step processes forked from a server that has imported torch, diffusers and the definitions once: each step starts
# in well under a second instead of importing them again (74 -> 44 CPU-seconds for this test on 2 cores).
PRELOADED = {
    "forkserver": {
        "preload_modules": ["torch", "diffusers", "transformers", "hf_assets.definitions", "hf_assets_tests.jobs"]
    }
}


@pytest.mark.slow
def test_the_gpu_pool_limit_holds_on_the_multiprocess_executor(
    tmp_path, hub_dataset, photos_entry, tiny_sdxl, monkeypatch
):
    entry = {**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32}
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(write_config(tmp_path / "dataloader.json", [entry])))
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_SHARDS", "3")
    monkeypatch.setenv("HF_ASSETS_EXECUTOR", "multiprocess")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).parents[1] / "dagster.yaml").read_text())  # gpu pool: 1
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.execute_job(
            dg.reconstructable(prepare_job_for_pool_limit),
            instance,
            tags={"dagster/partition": "photos"},
            run_config={"execution": {"config": {"max_concurrent": 3, "start_method": PRELOADED}}},
        )
        assert result.success
        spans: dict[str, list[float]] = {}
        for kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS):
            for record in instance.all_logs(result.run_id, of_type=kind):
                spans.setdefault(record.step_key, []).append(record.timestamp)
    gpu_steps = sorted(
        (start, end, key) for key, (start, end) in spans.items() if ".encode_vae_shard_" in key or key == "text_embeds"
    )
    assert len(gpu_steps) == 4
    for (_, end, key), (start, _, later) in zip(gpu_steps, gpu_steps[1:]):
        assert end <= start, f"{later} started while {key} still held the only gpu slot"
