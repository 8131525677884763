"""The code location as the Dagster UI sees it: dagster-webserver loads workspace.yaml and serves the graph."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hf_assets_tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
QUERY = """
{ assetNodes { assetKey { path } groupName partitionDefinition { dimensionTypes { name } }
               hasAssetChecks description } }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_webserver_serves_all_five_assets_partitioned_with_checks(tmp_path, hub_dataset, photos_entry):
    config = write_config(tmp_path / "dataloader.json", [photos_entry])
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "HF_ASSETS_DATALOADER_CONFIG": str(config), "HF_HUB_OFFLINE": "1"}
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 120
        nodes = None
        while time.time() < deadline and server.poll() is None:
            try:
                nodes = graphql(port, QUERY)["data"]["assetNodes"]
                if nodes:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(1)
        assert nodes, "webserver did not serve the asset graph: " + (
            server.stderr.read().decode()[-2000:] if server.poll() is not None else "timeout"
        )
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert set(by_key) == {"raw_split", "filtered_index", "aspect_buckets", "vae_latents", "text_embeds"}
        assert all(n["partitionDefinition"] for n in nodes)
        assert by_key["vae_latents"]["hasAssetChecks"] and by_key["text_embeds"]["hasAssetChecks"]
        assert by_key["vae_latents"]["groupName"] == "encoders" and by_key["raw_split"]["groupName"] == "metadata"
        assert by_key["aspect_buckets"]["description"].startswith("Each sample's aspect bucket")
    finally:
        server.terminate()
        server.wait(timeout=30)
