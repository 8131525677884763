"""A nightly refresh: one run per backend, so new or changed data is picked up without a click."""

import dagster as dg


def build_refresh_schedule(job, backend_ids: list[str]) -> dg.ScheduleDefinition:
    """Requests a run of `job` for every backend partition each night (off until turned on in the UI)."""

    @dg.schedule(
        name="nightly_refresh",
        job=job,
        cron_schedule="0 3 * * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Re-scan every backend nightly; unchanged inputs give identical outputs.",
    )
    def nightly_refresh(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
        for backend_id in backend_ids:
            yield dg.RunRequest(run_key=f"{backend_id}-{stamp}", partition_key=backend_id)

    return nightly_refresh
