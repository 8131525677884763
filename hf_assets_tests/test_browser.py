"""The Dagster UI in a real browser, as a new user meets it: launch one demo partition from the asset graph, wait for
it, then read its metadata, pictures and per-partition check results. Screenshots go to hf_assets_tests/artifacts/.

Needs Debian's chromium (`make test` installs it) and pip's playwright (the test extra); skipped without them.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hf_assets_tests.demo_workspace import ROOT
from hf_assets_tests.test_webserver import free_port, graphql

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PARTITION = "grids"  # the demo's smallest image backend: 16 composite strips at 256 px
RUNS = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"


def serve(env: dict, port: int) -> list[subprocess.Popen]:
    """dagster-daemon and dagster-webserver on the workspace, with the demo's DAGSTER_HOME."""
    bin_dir = Path(sys.executable).parent
    logs = Path(env["DAGSTER_HOME"])
    daemon = subprocess.Popen(
        [str(bin_dir / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(logs / "daemon.log", "w"),
    )
    web = subprocess.Popen(
        [str(bin_dir / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(logs / "webserver.log", "w"),
    )
    return [daemon, web]


def wait_for_assets(port: int, processes, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and all(p.poll() is None for p in processes):
        try:
            if graphql(port, "{ assetNodes { id } }")["data"]["assetNodes"]:
                return
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(1)
    raise AssertionError("the webserver did not serve the asset graph")


def ui_run(port: int) -> dict | None:
    """The run launched from the UI for PARTITION, if any."""
    for run in graphql(port, RUNS)["data"]["runsOrError"]["results"]:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if tags.get("dagster/from_ui") == "true" and tags.get("dagster/partition") == PARTITION:
            return run
    return None


def wait_for_run(port: int, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = ui_run(port)
        if run and run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(2)
    raise AssertionError(f"the run of {PARTITION} did not finish in {timeout} s: {ui_run(port)}")


@pytest.mark.slow
def test_launch_one_partition_from_the_ui_then_read_its_metadata_pictures_and_checks(demo_workspace):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = serve(demo_workspace.env, port)
    try:
        wait_for_assets(port, processes)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)

            def shot(name: str, full_page: bool = False) -> None:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

            # The asset graph; a fresh instance greets a new user with a dialog, which they skip.
            page.goto(f"{base}/asset-groups", wait_until="networkidle")
            page.get_by_role("button", name="Skip").click(timeout=20_000)
            shot("01_asset_graph")

            # Materialize every asset of one partition from the graph's launch dialog.
            page.get_by_role("button", name="Materialize all…").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Select a partition or create one").click()
            page.keyboard.type(PARTITION)
            page.get_by_role("menuitem", name=PARTITION).click()
            page.keyboard.press("Escape")
            shot("02_launch_dialog")
            dialog.get_by_role("button", name="Launch 1 run").click()
            page.get_by_text("Launched run").wait_for()
            run = wait_for_run(port)
            page.goto(f"{base}/runs/{run['runId']}", wait_until="networkidle")
            shot("03_run")
            daemon_log = Path(demo_workspace.env["DAGSTER_HOME"]) / "daemon.log"
            assert run["status"] == "SUCCESS", daemon_log.read_text()[-4000:]

            # The bucket table's page for this partition: a metadata value and the inline histogram.
            page.goto(f"{base}/assets/aspect_buckets?view=partitions&partition={PARTITION}", wait_until="networkidle")
            samples_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="samples", exact=True))
            shown = int(samples_row.get_by_role("cell").nth(1).inner_text())
            table = demo_workspace.config.parent / "cache" / PARTITION / "huggingface_metadata" / PARTITION
            assert shown == pq.read_metadata(table / "aspect_buckets.parquet").num_rows > 0
            histogram = page.locator("img[src^='data:image/svg+xml']")
            histogram.first.wait_for()
            assert histogram.first.bounding_box()["height"] > 40  # drawn in place, not behind a link
            shot("04_aspect_buckets_metadata", full_page=True)
            # The previews, their own asset (drawn off aspect_buckets' path): the grid behind "[Show Markdown]".
            page.goto(f"{base}/assets/bucket_previews?view=partitions&partition={PARTITION}", wait_until="networkidle")
            grid_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="preview_grid", exact=True))
            grid_row.get_by_text("[Show Markdown]").click()
            grid = page.get_by_role("dialog").locator("img[src^='data:image/jpeg']")
            grid.wait_for()
            assert grid.evaluate("img => img.naturalWidth") > 400
            shot("05_preview_grid")
            page.keyboard.press("Escape")

            # A check's latest result names its partition.
            page.goto(f"{base}/assets/vae_latents?view=checks", wait_until="networkidle")
            page.get_by_text("latents_finite").first.click()
            page.get_by_text("Passed").first.wait_for()
            page.get_by_text("Latest execution").wait_for()
            latest = re.search(r"Latest execution.*?\nPartition\s*\n\s*(\S+)", page.locator("body").inner_text(), re.S)
            assert latest and latest.group(1) == PARTITION
            shot("06_check_latest_execution")
            page.get_by_text("Partitions", exact=True).last.click()  # the check's own tab, after the asset's
            page.get_by_text(PARTITION).first.wait_for()
            shot("07_check_partitions")
            browser.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
