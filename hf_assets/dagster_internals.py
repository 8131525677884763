"""Every use hf_assets makes of Dagster code that is not public API (a `dagster._` module, a private attribute, or an
instance method that Dagster does not mark public), in one place, each with the reason no public API serves.

`hf_assets_tests/test_dagster_internals.py` exercises each one, so an upgrade that moves or changes one fails there
by name. pyproject.toml pins the Dagster release they were checked against (1.13.27, with dagster-dask and
dagster-k8s 0.29.27).
"""

import dagster as dg


def interrupt_pending() -> bool:
    """True while Dagster holds a captured SIGTERM/SIGINT it has not acted on yet.

    Why: Dagster acts on a captured interrupt only at the run's next event, which a step blocked on a pool does not
    yield for minutes; no public API says whether one is pending (`dagster._utils.interrupts`).
    """
    from dagster._utils.interrupts import check_captured_interrupt

    return check_captured_interrupt()


def pool_holders(instance: dg.DagsterInstance) -> set[str]:
    """The run ids holding or waiting for pool slots.

    Why: freeing the slots of a dead run is the point of reaping; pools have no public Python API beyond the
    `dagster instance concurrency` CLI, so the event log storage's own methods are used.
    """
    storage = instance.event_log_storage
    return set(storage.get_concurrency_run_ids()) if storage.supports_global_concurrency_limits else set()


def free_pool_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    """Give back every pool slot (and claim) of the run. Why: as `pool_holders`."""
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def mark_run_failed(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> None:
    """Record the run as failed, with `message`, as Dagster's own run monitoring does.

    Why: a run whose process was killed stays STARTED until something reports it; `report_run_failed` is what the
    daemon's run monitoring calls, and it is not marked public.
    """
    instance.report_run_failed(run, message=message)


def mark_run_canceled(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> None:
    """Record the run as canceled, with `message`. Why: as `mark_run_failed` (`report_run_canceled`)."""
    instance.report_run_canceled(run, message=message)


def tag_run(instance: dg.DagsterInstance, run_id: str, tags: dict[str, str]) -> None:
    """Add `tags` to a run that exists already (the reaper's worker tag).

    Why: tags can be given to a run only when it is created through public API; the worker that runs its steps is
    known only once they start, and `add_run_tags` is not marked public.
    """
    instance.add_run_tags(run_id, tags)


def engine_event_metadata(instance: dg.DagsterInstance, run_id: str, limit: int = 20) -> list[dict]:
    """The metadata ({name: MetadataValue}) of a run's first engine events, oldest first (the executor's process
    records its pid there).

    Why: DagsterInstance's public readers return runs, asset materializations, observations and run status
    changes, not a run's other events; `get_records_for_run` is not marked public.
    """
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=limit).records
    found = []
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event is not None else None
        found.append(dict(getattr(data, "metadata", None) or {}))
    return found


def latest_check_evaluation(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, partition: str, history: int = 100
) -> dg.AssetCheckEvaluation | None:
    """The latest stored evaluation of `check_key` for one partition (None when none among the last `history`
    executions of the check).

    Why: no public DagsterInstance method reads an asset check's results; `get_latest_asset_check_evaluation_record`
    is not marked public either and ignores partitions, so the event log storage's check history is read.
    """
    records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=history)
    latest = next((r for r in records if r.partition == partition and r.event is not None), None)
    return latest.event.dagster_event.asset_check_evaluation_data if latest is not None else None


def dask_executor_class() -> type:
    """dagster-dask's executor class, to subclass.

    Why: `dagster_dask` exports the `dask_executor` definition only; the pool workaround below has to run inside the
    executor's `execute`, so the class comes from its module, `dagster_dask.executor`.
    """
    from dagster_dask.executor import DaskExecutor

    return DaskExecutor


def drop_pool_information(plan_context) -> None:
    """Give the steps of a dagster-dask run a run record without its pool information (`run_op_concurrency`).

    Why: dagster-dask 0.29.27 hands the run record to `Client.submit`, and current Dask walks the arguments'
    tuples, so a run whose steps use pools fails before any step starts. An executor cannot be handed another run
    record through a public API, so the plan context's private `_plan_data` is replaced. The steps a Dask worker runs
    never take pool slots (dagster-dask does not enforce pools: the cluster's workers bound concurrency).
    """
    run = plan_context.dagster_run
    if getattr(run, "run_op_concurrency", None) is not None:
        plan_context._plan_data = plan_context.plan_data._replace(dagster_run=run._replace(run_op_concurrency=None))


def sleep_while_steps_wait_for_pools() -> None:
    """Make a run's in-process executor sleep until its next pool claim check instead of spinning on a CPU core.

    Why: in Dagster 1.13 (checked on 1.13.27 and 1.13.29) `InstanceConcurrencyContext.
    interval_to_next_pending_claim_check` returns `min(0, time to the next check)`, never a positive number, so the
    in-process executor's `ActiveExecution.sleep_til_ready` never sleeps: a run whose next step waits for a pool slot
    (our encoders' `gpu` pool) loops at 100% CPU until it gets one. An "All" backfill of N partitions on one GPU then
    spins N-1 cores while one run encodes. No public setting changes that loop, so the method is replaced by one
    that returns the time left until the earliest pending claim is due (0 once one is due). The claim checks keep
    Dagster's own schedule (its backoff from 1 s up to 15 s); only the busy waiting between them goes. Idempotent.
    """
    import time

    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    if getattr(InstanceConcurrencyContext.interval_to_next_pending_claim_check, "hf_assets_sleeps", False):
        return

    def interval_to_next_pending_claim_check(self) -> float:
        due = [self._pending_timeouts.get(key) for key in self._pending_claims]
        if not due or None in due:
            return 0.0  # nothing pending, or a claim to check now
        return max(0.0, min(due) - time.time())

    interval_to_next_pending_claim_check.hf_assets_sleeps = True
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = interval_to_next_pending_claim_check
