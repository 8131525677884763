"""`make ui` as the user starts it (`dg dev` on PORT: webserver and daemon), seen through the webserver's GraphQL."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from hf_assets_tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
QUERY = """
{ assetNodes { assetKey { path } groupName partitionDefinition { dimensionTypes { name } }
               hasAssetChecks description } }
"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
RUNS = "{ runsOrError { ... on Runs { results { runId tags { key value } } } } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def make_ui(env: dict, port: int, log: Path) -> subprocess.Popen:
    """`make ui` with PORT, in its own process group (stopped with `stop`)."""
    return subprocess.Popen(
        ["make", "--no-print-directory", "ui", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(port: int, server: subprocess.Popen, log: Path, query: str = QUERY, timeout: float = 180) -> dict:
    """The first answer to `query` whose data is not empty, once the server is up."""
    deadline = time.time() + timeout
    while time.time() < deadline and server.poll() is None:
        try:
            data = graphql(port, query)["data"]
            if data and all(data.values()):
                return data
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(1)
    raise AssertionError("make ui did not serve the asset graph:\n" + log.read_text()[-3000:])


def stop(server: subprocess.Popen) -> None:
    """Interrupt the whole `make ui` process group (as Ctrl-C does) and wait for it."""
    try:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_make_ui_serves_every_asset_runs_the_daemon_and_hides_internal_run_tags(tmp_path, photos_entry):
    from hf_assets.automation.reap import WORKER_TAG

    config = write_config(tmp_path / "dataloader.json", [photos_entry])
    home = tmp_path / "home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "HF_ASSETS_DATALOADER_CONFIG": str(config), "HF_HUB_OFFLINE": "1"}
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:  # a run as an encoding run leaves it
        run = dg.DagsterRun(job_name="prepare_datasets", tags={WORKER_TAG: "host:1:2", "hf_assets/trigger": "x"})
        instance.add_run(run)
    port, log = free_port(), tmp_path / "ui.log"
    server = make_ui(env, port, log)
    try:
        nodes = wait_for(port, server, log)["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert set(by_key) == {
            "raw_split",
            "filtered_index",
            "aspect_buckets",
            "bucket_previews",
            "vae_latents",
            "text_embeds",
        }
        assert all(n["partitionDefinition"] for n in nodes)
        checked = {"raw_split", "filtered_index", "aspect_buckets", "vae_latents", "text_embeds"}
        assert {key for key, node in by_key.items() if node["hasAssetChecks"]} == checked
        assert by_key["vae_latents"]["groupName"] == "encoders" and by_key["raw_split"]["groupName"] == "metadata"
        assert by_key["aspect_buckets"]["description"].startswith("Each sample's aspect bucket")
        daemons = wait_for(port, server, log, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        assert {d["daemonType"] for d in daemons} >= {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"}
        (shown,) = graphql(port, RUNS)["data"]["runsOrError"]["results"]
        keys = {t["key"] for t in shown["tags"]}
        assert "hf_assets/trigger" in keys and WORKER_TAG not in keys  # user tags show; the bookkeeping does not
    finally:
        stop(server)
