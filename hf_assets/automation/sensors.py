"""One sensor per backend: request a refresh of that backend when its data or its config entry changed."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from hf_assets.automation.changes import HubApi, backend_state, default_hub_api, what_changed
from hf_assets.config import load_config

MINIMUM_INTERVAL_SECONDS = 300  # one Hub call or one folder listing per backend every five minutes
TRIGGER_TAG_CHARACTERS = 1000  # the run tag naming what changed (the tick log has it whole)


def sensor_name(backend_id: str) -> str:
    """A Dagster-safe sensor name for a backend id (ids may hold '.' and '-')."""
    return "refresh_" + re.sub(r"[^A-Za-z0-9_]", "_", backend_id) + "_on_change"


def build_change_sensor(
    job,
    backend_id: str,
    config_path: Path | str,
    hub_api: Callable[[], HubApi] = default_hub_api,
    minimum_interval_seconds: int = MINIMUM_INTERVAL_SECONDS,
    name: str | None = None,
) -> dg.SensorDefinition:
    """A sensor (stopped until turned on) that requests a run of `job` for `backend_id` when its inputs changed.

    Its cursor is the backend's last seen state (JSON). The first tick records the state and requests nothing;
    a tick that cannot read the config or reach the data logs why, keeps the cursor, and tries again next tick.
    """

    @dg.sensor(
        name=name or sensor_name(backend_id),
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Refresh backend '{backend_id}' when its dataset (Hub commit or files) or its config entry "
        "changes. The first tick only records what it sees.",
    )
    def refresh_on_change(context: dg.SensorEvaluationContext):
        try:
            backend = load_config(config_path, strict=False).backend(backend_id)  # another backend may be broken
            current = backend_state(backend, hub_api)
        except Exception as exc:  # noqa: BLE001 - a sensor must not crash the daemon; the next tick retries
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            context.log.warning(
                f"{backend_id}: could not check for changes ({type(exc).__name__}: {first_line}); "
                "will try again at the next tick"
            )
            return dg.SkipReason(f"could not check '{backend_id}': {type(exc).__name__}: {first_line}")
        previous = _read_cursor(context.cursor)
        reasons = what_changed(previous, current)
        context.update_cursor(json.dumps(current, sort_keys=True))
        if previous is None:
            return dg.SkipReason(f"watching '{backend_id}': {current['described']}")
        if not reasons:
            return dg.SkipReason(f"'{backend_id}' unchanged: {current['described']}")
        context.log.info(f"{backend_id}: " + "; ".join(reasons))
        return dg.RunRequest(
            partition_key=backend_id,
            tags={"hf_assets/trigger": "; ".join(reasons)[:TRIGGER_TAG_CHARACTERS]},
        )

    return refresh_on_change


def build_change_sensors(
    job, backend_ids: list[str], config_path: Path | str, hub_api: Callable[[], HubApi] = default_hub_api
) -> list[dg.SensorDefinition]:
    """One change sensor per backend (ids that differ only in '.', '-' and '_' get numbered names)."""
    sensors, taken = [], set()
    for backend_id in backend_ids:
        name, n = sensor_name(backend_id), 2
        while name in taken:
            name, n = f"{sensor_name(backend_id)}_{n}", n + 1
        taken.add(name)
        sensors.append(build_change_sensor(job, backend_id, config_path, hub_api, name=name))
    return sensors


def _read_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        value = json.loads(cursor)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
