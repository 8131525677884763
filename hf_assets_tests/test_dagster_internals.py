"""Each non-public Dagster use of hf_assets.dagster_internals still works on the installed release: an upgrade that
moves or changes one fails here, by name."""

import os
import signal
import threading
import time

import dagster as dg
import pytest

from hf_assets import dagster_internals as internals


def test_a_captured_interrupt_is_seen_as_pending_until_dagster_handles_it():
    from dagster._utils.interrupts import capture_interrupts

    assert not internals.interrupt_pending()
    with capture_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        assert internals.interrupt_pending()
    assert not internals.interrupt_pending()


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        yield instance


def started_run(instance) -> dg.DagsterRun:
    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def one_step():
        noop()

    run = instance.create_run_for_job(one_step)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, "one_step"))
    return instance.get_run_by_id(run.run_id)


def test_runs_are_marked_failed_and_canceled_with_their_message(instance):
    run = started_run(instance)
    assert run.status == dg.DagsterRunStatus.STARTED
    internals.mark_run_failed(instance, run, "its worker is gone")
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    messages = [r.dagster_event.message for r in instance.all_logs(run.run_id) if r.dagster_event]
    assert "its worker is gone" in messages
    other = started_run(instance)
    internals.mark_run_canceled(instance, other, "interrupted while waiting")
    assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.CANCELED


def test_a_runs_pool_slot_is_listed_and_freed(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)
    run = started_run(instance)
    claim = storage.claim_concurrency_slot("gpu", run.run_id, "vae_latents.encode_vae_shard_0")
    assert claim.is_claimed and internals.pool_holders(instance) == {run.run_id}
    internals.free_pool_slots(instance, run.run_id)
    assert internals.pool_holders(instance) == set()


def test_the_dask_executor_class_is_subclassed_through_its_execute():
    import inspect

    executor = internals.dask_executor_class()
    assert issubclass(executor, dg.Executor)
    assert list(inspect.signature(executor.execute).parameters) == ["self", "plan_context", "execution_plan"]


def test_a_plan_context_hands_the_dask_steps_a_run_without_pool_information():
    from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
    from dagster._core.storage.dagster_run import RunOpConcurrency

    pools = RunOpConcurrency(root_key_counts={"gpu": 1}, has_unconstrained_root_nodes=False, all_pools={"gpu"})
    run = dg.DagsterRun(job_name="prepare_datasets", run_op_concurrency=pools)
    context = PlanOrchestrationContext.__new__(PlanOrchestrationContext)  # the attribute its __init__ sets
    context._plan_data = PlanData(job=None, dagster_run=run, instance=None, execution_plan=None)
    assert context.dagster_run.run_op_concurrency == pools
    internals.drop_pool_information(context)
    assert context.dagster_run.run_op_concurrency is None and context.dagster_run.run_id == run.run_id


def test_a_run_is_tagged_after_it_started(instance):
    run = started_run(instance)
    internals.tag_run(instance, run.run_id, {".hf_assets/worker": "host:123:456"})
    assert instance.get_run_by_id(run.run_id).tags[".hf_assets/worker"] == "host:123:456"


def test_a_runs_engine_event_metadata_is_read_back(instance):
    from dagster._core.events import EngineEventData

    run = started_run(instance)
    instance.report_engine_event("worker up", run, EngineEventData(metadata={"pid": dg.MetadataValue.int(4321)}))
    found = internals.engine_event_metadata(instance, run.run_id)
    assert [m["pid"].value for m in found if "pid" in m] == [4321]


def test_the_latest_check_evaluation_of_one_partition_is_read_back(instance):
    key = dg.AssetCheckKey(dg.AssetKey("vae_latents"), "cache_complete")
    for partition, passed in (("photos", False), ("grids", True), ("photos", True)):
        evaluation = dg.AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, passed=passed, partition=partition
        )
        event = dg.DagsterEvent(
            dg.DagsterEventType.ASSET_CHECK_EVALUATION.value, "one_step", event_specific_data=evaluation
        )
        instance.report_dagster_event(event, started_run(instance).run_id)  # one run each, as a check step's
    photos = internals.latest_check_evaluation(instance, key, "photos")
    assert photos is not None and photos.passed and photos.partition == "photos"
    assert internals.latest_check_evaluation(instance, key, "grids").passed
    assert internals.latest_check_evaluation(instance, key, "clips") is None


@pytest.mark.slow  # it waits 3 s on purpose
def test_a_step_waiting_for_a_pool_slot_sleeps_instead_of_spinning(instance):
    """Another run holds the only `gpu` slot for 3 s; the waiting in-process run uses a small share of a core."""
    internals.sleep_while_steps_wait_for_pools()
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)
    holder = started_run(instance)
    assert storage.claim_concurrency_slot("gpu", holder.run_id, "vae_latents.encode_vae_shard_0").is_claimed

    @dg.op(pool="gpu")
    def encode() -> int:
        return 1

    @dg.job(executor_def=dg.in_process_executor)
    def waits_for_the_gpu():
        encode()

    freeing = threading.Timer(3.0, internals.free_pool_slots, (instance, holder.run_id))
    freeing.start()
    cpu, wall = time.process_time(), time.monotonic()
    result = waits_for_the_gpu.execute_in_process(instance=instance)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    freeing.join()
    assert result.success and result.output_for_node("encode") == 1
    assert wall >= 3.0, "the step ran before the slot was free: the pool was not enforced"
    assert cpu < 0.5 * wall, f"{cpu:.1f} CPU s in {wall:.1f} s of waiting: the executor spins"
