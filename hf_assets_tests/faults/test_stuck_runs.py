"""A CLI run killed with SIGKILL never blocks the next one: its run is marked failed and its pool slot freed."""

import signal
import subprocess

import pytest
from dagster import DagsterRunStatus

from hf_assets.automation.reap import WORKER_TAG, main, reap

pytestmark = pytest.mark.slow


def runs_by_status(instance) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run in instance.get_runs():
        found.setdefault(run.status.value, []).append(run.run_id)
    return found


def test_a_rerun_after_kill_9_starts_at_once_and_the_dead_run_is_failed(project):
    project.run("decode", 5)
    with project.instance() as instance:
        (dead,) = instance.get_runs()
        assert dead.status == DagsterRunStatus.STARTED and WORKER_TAG in dead.tags
        assert dead.run_id in instance.event_log_storage.get_concurrency_run_ids()  # the gpu slot is held

    rerun = project.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "blocked by limit" not in rerun.stderr
    assert f"run {dead.run_id}" in rerun.stderr and "marking it failed" in rerun.stderr
    with project.instance() as instance:
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert runs_by_status(instance).keys() == {"FAILURE", "SUCCESS"}
        assert instance.event_log_storage.get_concurrency_run_ids() == set()


def test_the_reap_command_fails_dead_runs_and_leaves_live_ones_alone(project, capsys, monkeypatch):
    project.run("shard", 1)
    monkeypatch.setenv("DAGSTER_HOME", str(project.home))
    assert main(["--dry-run"]) == 0
    assert "marking it failed [dry run]" in capsys.readouterr().out
    with project.instance() as instance:
        (dead,) = instance.get_runs()
        assert dead.status == DagsterRunStatus.STARTED
        # A run recorded on another machine cannot be judged from here: left alone unless forced.
        instance.add_run_tags(dead.run_id, {WORKER_TAG: "elsewhere:123:456"})
        done = reap(instance, log=lambda _: None)
        assert done.failed == [] and "ran elsewhere" in done.skipped[dead.run_id]
    assert main(["--run-id", dead.run_id, "--force"]) == 0
    assert "1 run(s) marked failed, 1 run(s) had their pool slots freed" in capsys.readouterr().out
    with project.instance() as instance:
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_run_ids() == set()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_waiting_on_the_pool_exits_promptly_on_a_signal_and_frees_its_claim(project, signum):
    project.run("shard", 1)
    with project.instance() as instance:
        (dead,) = instance.get_runs()
        # Make the dead run look alive to the reaper (its worker is this test process), so the next run waits.
        from hf_assets.automation.reap import worker_identity

        instance.add_run_tags(dead.run_id, {WORKER_TAG: worker_identity()})
    waiting = project.start()
    try:
        for line in waiting.stdout:
            if "blocked by limit for pool gpu" in line or "Step blocked" in line:
                waiting.send_signal(signum)
                break
        out, _ = waiting.communicate(timeout=120)  # Dagster alone kept waiting until the slot was free
    except subprocess.TimeoutExpired:
        waiting.kill()
        raise
    assert waiting.returncode != 0 and "run canceled and its pool slots freed" in out
    with project.instance() as instance:
        statuses = runs_by_status(instance)
        assert dead.run_id in statuses["STARTED"]
        (waiter,) = [r for r in instance.get_runs() if r.run_id != dead.run_id]
        assert waiter.status == DagsterRunStatus.CANCELED
        assert instance.event_log_storage.get_concurrency_run_ids() == {dead.run_id}
