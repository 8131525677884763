"""Dead-run reaping reads a run's worker from its hidden tag, or from the tag older runs carry."""

import subprocess
import sys

import dagster as dg
import pytest

from hf_assets.automation.reap import LEGACY_WORKER_TAG, WORKER_TAG, reap, record_worker, worker_identity


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        yield instance


def gone_worker() -> str:
    """The identity of a process of this host that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return worker_identity(child.pid)


def started_run(instance, tags: dict) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="prepare_datasets", status=dg.DagsterRunStatus.STARTED, tags=tags)
    instance.add_run(run)
    return run


@pytest.mark.parametrize("tag", [WORKER_TAG, LEGACY_WORKER_TAG], ids=["hidden", "legacy"])
def test_a_started_run_whose_worker_is_gone_is_failed(instance, tag):
    run = started_run(instance, {tag: gone_worker()})
    done = reap(instance, log=lambda _: None)
    assert done.failed == [run.run_id]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_is_tagged_with_its_worker_once(instance):
    run = started_run(instance, {})
    first = record_worker(instance, run.run_id)
    assert instance.get_run_by_id(run.run_id).tags[WORKER_TAG] == first
    assert record_worker(instance, run.run_id) == first
