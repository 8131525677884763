"""The cluster examples shipped in docs/cluster load and validate against the executors they are written for."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

from hf_assets_tests.conftest import write_config

DOCS = Path(__file__).parents[1] / "docs" / "cluster"


@pytest.fixture
def job_for(tmp_path, hub_dataset, photos_entry, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_DATALOADER_CONFIG", str(write_config(tmp_path / "dataloader.json", [photos_entry])))

    def build(executor: str) -> dg.JobDefinition:
        from hf_assets.definitions import build_definitions

        monkeypatch.setenv("HF_ASSETS_EXECUTOR", executor)
        return build_definitions().resolve_job_def("prepare_datasets")

    return build


def load(name: str) -> dict:
    return yaml.safe_load((DOCS / name).read_text())


def test_kubernetes_run_config_validates_for_k8s_job_executor(job_for):
    pytest.importorskip("dagster_k8s")
    job = job_for("k8s")
    assert job.executor_def.name == "k8s"
    config = load("k8s/run_config.yaml")
    assert dg.validate_run_config(job, config)["execution"]["k8s"]["max_concurrent"] == 16
    with pytest.raises(dg.DagsterInvalidConfigError):  # the check can fail: a misspelt key is refused
        dg.validate_run_config(job, {"execution": {"config": {"max_concurent": 16}}})


def test_shard_steps_ask_kubernetes_for_one_gpu_each(job_for):
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.job import get_user_defined_k8s_config

    job = job_for("k8s")
    shard = job.graph.node_named("vae_latents").definition.node_named("encode_vae_shard_0")
    limits = get_user_defined_k8s_config(shard.tags).container_config["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": 1}


def test_helm_values_launch_runs_as_kubernetes_jobs_on_postgres_with_a_shared_cache():
    values = load("k8s/values.yaml")
    deployment = values["dagster-user-deployments"]["deployments"][0]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["HF_ASSETS_EXECUTOR"] == "k8s" and env["HF_ASSETS_DATALOADER_CONFIG"].startswith("/cache/")
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"]
    claim = deployment["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert load("k8s/pvc.yaml")["spec"]["accessModes"] == ["ReadWriteMany"] and claim == "hf-assets-cache"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["volumeMounts"][0]["mountPath"] == deployment["volumeMounts"][0]["mountPath"] == "/cache"


def test_slurm_run_config_validates_for_the_dask_executor_and_renders_a_gpu_job_script(job_for):
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    job = job_for("dask")
    config = load("slurm/run_config.yaml")
    slurm = dg.validate_run_config(job, config)["execution"]["dask"]["cluster"]["slurm"]
    job_kwargs = {k: v for k, v in slurm.items() if k != "n_workers"}  # n_workers belongs to the cluster
    script = dask_jobqueue.slurm.SLURMJob(scheduler="tcp://127.0.0.1:8786", name="hf-assets", **job_kwargs).job_script()
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH -p gpu" in script
    assert "HF_ASSETS_EXECUTOR=dask" in script and "--nthreads 1 " in script and "#SBATCH --cpus-per-task=8" in script
    assert "-j prepare_datasets" in (DOCS / "slurm" / "launch.sbatch").read_text()
