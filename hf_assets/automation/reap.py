"""Runs whose process died: mark them failed and give back their pool slots, so no run waits on a dead one.

A run that encodes records its worker process in a hidden tag (`WORKER_TAG`: host, pid and the process's start
time, so a reused pid is not taken for the run). Before it can wait on the `gpu` pool, every such run reaps the
runs of this instance that are still STARTED on this host but whose worker is gone, and frees the slots of runs
that already ended: the `reap_dead_runs` step, first of vae_latents' steps. The same works by hand:

    python -m hf_assets.automation.reap               # reap dead runs of this host, free slots of ended runs
    python -m hf_assets.automation.reap --dry-run     # only say what it would do
    python -m hf_assets.automation.reap --run-id ID --force   # a run of another machine that is gone for good
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from hf_assets.dagster_internals import (
    engine_event_metadata,
    free_pool_slots,
    interrupt_pending,
    mark_run_canceled,
    mark_run_failed,
    pool_holders,
    tag_run,
)

# "host:pid:start time" of the process running the run. Dagster's hidden prefix keeps this bookkeeping out of the
# run list and the run page (the webserver leaves `.dagster/` tags out of what it serves); runs tagged before it
# was hidden carry LEGACY_WORKER_TAG.
WORKER_TAG = ".dagster/hf_assets_worker"
LEGACY_WORKER_TAG = "hf_assets/worker"
UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
WATCH_SECONDS = 0.25  # how often the interrupt watcher looks for a pending SIGTERM/SIGINT
RUN_STATUS_SECONDS = 2.0  # how often it checks whether its run has ended


@dataclass
class Reaped:
    """What a reap did (or, with dry_run, would do)."""

    failed: list[str] = field(default_factory=list)  # run ids marked failed
    freed: list[str] = field(default_factory=list)  # run ids whose pool slots were given back
    skipped: dict[str, str] = field(default_factory=dict)  # run id -> why it was left alone


def process_start(pid: int) -> str | None:
    """An identity of the live process `pid` (its start time since boot), None when no such process runs."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19]  # starttime, field 22 of proc(5)
    except FileNotFoundError:
        return None
    except (OSError, IndexError):  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "alive"
        return "alive"


def worker_identity(pid: int | None = None) -> str:
    """The WORKER_TAG value of process `pid` (default: this one) on this host."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or ''}"


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The pid of the process running the run's steps, from the executor's first engine event (this one's if none)."""
    for metadata in engine_event_metadata(instance, run_id):
        pid = metadata.get("pid")
        if pid is not None:
            try:
                return int(pid.value)
            except (TypeError, ValueError):
                continue
    return os.getpid()


def run_worker(run: dg.DagsterRun) -> str | None:
    """The worker identity a run was tagged with, if any."""
    return run.tags.get(WORKER_TAG) or run.tags.get(LEGACY_WORKER_TAG)


def record_worker(instance: dg.DagsterInstance, run_id: str) -> str:
    """Tag the run with its worker's identity (once); return the tag."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run_worker(run):
        return run_worker(run)
    identity = worker_identity(worker_pid(instance, run_id))
    tag_run(instance, run_id, {WORKER_TAG: identity})
    return identity


def worker_is_dead(identity: str, host: str | None = None) -> bool | None:
    """True when the tagged worker ran on this host and is gone (or its pid now names another process);
    None when it ran elsewhere, so that liveness cannot be known here."""
    try:
        tag_host, pid, started = identity.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return None
    if tag_host != (host or socket.gethostname()):
        return None
    now = process_start(pid)
    return now is None or (bool(started) and now not in (started, "alive"))


def reap(
    instance: dg.DagsterInstance,
    run_ids: list[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    exclude: str | None = None,
    log: Callable[[str], None] = print,
) -> Reaped:
    """Mark failed the unfinished runs whose worker died on this host and free their slots; free the slots of
    runs that have ended. `run_ids` limits it to those runs; `force` fails and frees them whatever their worker."""
    done = Reaped()
    if run_ids:
        runs = [r for r in (instance.get_run_by_id(i) for i in run_ids) if r is not None]
        missing = set(run_ids) - {r.run_id for r in runs}
        done.skipped.update({i: "no such run in this instance" for i in missing})
    else:
        runs = [r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED))]
    for run in runs:
        if run.run_id == exclude or run.is_finished:
            continue
        identity = run_worker(run)
        dead = worker_is_dead(identity) if identity else None
        if not (dead or force):
            done.skipped[run.run_id] = (
                "its worker is alive"
                if dead is False
                else f"its worker ran elsewhere ({identity})"
                if identity
                else "it records no worker (not an hf_assets encoding run)"
            )
            continue
        reason = f"its process ({identity}) is gone" if dead else "reaped by hand (--force)"
        log(
            f"run {run.run_id} ({run.job_name}) is {run.status.value} but {reason}: marking it failed"
            + (" [dry run]" if dry_run else "")
        )
        if not dry_run:
            mark_run_failed(instance, run, f"hf_assets: {reason}; marked failed and its pool slots freed")
        done.failed.append(run.run_id)
    holders = pool_holders(instance)
    for run_id in sorted(holders):
        if run_id == exclude or (run_ids and run_id not in run_ids):
            continue
        run = instance.get_run_by_id(run_id)
        if run_id in done.failed or run is None or run.is_finished:
            log(
                f"freeing the pool slots of run {run_id} ({'gone' if run is None else run.status.value})"
                + (" [dry run]" if dry_run else "")
            )
            if not dry_run:
                free_pool_slots(instance, run_id)
            done.freed.append(run_id)
    return done


def reap_before_pool(instance: dg.DagsterInstance, run: dg.DagsterRun, log: Callable[[str], None]) -> Reaped | None:
    """Record this run's worker, then reap dead runs of this host: called before the run can wait on a pool."""
    try:
        record_worker(instance, run.run_id)
        return reap(instance, exclude=run.run_id, log=log)
    except Exception as error:  # noqa: BLE001 - reaping helps other runs; it must never fail this one
        log(f"could not check for runs whose process died: {type(error).__name__}: {error}")
        return None


def watch_interrupts(instance: dg.DagsterInstance, run: dg.DagsterRun, grace_seconds: float = 2.0) -> threading.Thread:
    """Until `run` ends, a SIGTERM or SIGINT that Dagster leaves pending ends this process within seconds.

    Dagster captures these signals and acts on them only when the run yields its next event, which a step
    blocked on a pool does not do for minutes. A watcher thread sees an interrupt still pending after
    `grace_seconds`, marks the run canceled, gives back its pool slots and claims, and exits the process; it stops
    by itself once the run has ended.
    """

    def watch() -> None:
        pending_since = None
        next_status = time.monotonic() + RUN_STATUS_SECONDS
        while True:
            time.sleep(WATCH_SECONDS)
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + RUN_STATUS_SECONDS
                if _run_ended(instance, run.run_id):
                    return
            if not interrupt_pending():
                pending_since = None
                continue
            pending_since = pending_since or time.monotonic()
            if time.monotonic() - pending_since < grace_seconds:
                continue
            message = "hf_assets: interrupted (SIGTERM/SIGINT) while waiting; run canceled and its pool slots freed"
            print(f"run {run.run_id}: {message}", file=sys.stderr, flush=True)
            try:
                mark_run_canceled(instance, instance.get_run_by_id(run.run_id) or run, message)
                free_pool_slots(instance, run.run_id)
            finally:
                os._exit(128 + signal.SIGTERM)

    thread = threading.Thread(target=watch, name=f"hf_assets-interrupt-watch-{run.run_id[:8]}", daemon=True)
    thread.start()
    return thread


def _run_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True when the run is finished, or can no longer be read (its instance was disposed)."""
    try:
        found = instance.get_run_by_id(run_id)
    except Exception:  # noqa: BLE001 - an ephemeral instance that is gone: nothing left to watch
        return True
    return found is None or found.is_finished


@dg.op(name="reap_dead_runs", out=dg.Out(dg.Nothing))
def reap_dead_runs(context: dg.OpExecutionContext) -> None:
    """Before this run's encoding steps wait on the gpu pool: record this run's worker process, mark failed the
    runs of this host whose worker died, free their pool slots; until the run ends, exit promptly on SIGTERM."""
    reap_before_pool(context.instance, context.run, context.log.warning)
    watch_interrupts(context.instance, context.run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hf_assets.automation.reap", description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", action="append", help="only this run (repeatable)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="fail and free the given runs whatever their worker (a machine that is gone)",
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    args = parser.parse_args(argv)
    if args.force and not args.run_id:
        parser.error("--force needs --run-id: name the runs you know are dead")
    with dg.DagsterInstance.get() as instance:
        done = reap(instance, args.run_id, force=args.force, dry_run=args.dry_run)
    for run_id, why in done.skipped.items():
        print(f"left run {run_id} alone: {why}")
    print(f"{len(done.failed)} run(s) marked failed, {len(done.freed)} run(s) had their pool slots freed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
