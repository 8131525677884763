"""The Dagster UI in a real browser, as a new user meets it: launch every backend of the demo from the asset graph,
each as its config names its model, with no launchpad edit; read the progress of a running encode step in its run's
log; then read one partition's metadata, pictures and per-partition check results. Screenshots go to a new folder
under the system's temp folder, named when the test fails.

Needs Debian's chromium (`make test` installs it) and pip's playwright (the test extra); skipped without them.
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from hf_assets import env as env_names
from hf_assets.config.loader import load_config
from hf_assets.data.sources import open_split
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
PARTITION = "grids"  # the demo's smallest image backend, whose pages the test reads: 16 composite strips at 256 px
# The demo is small: one shard per run, two images per VAE batch and a line a second make its encode steps long
# enough to log progress lines before they end (the defaults are 8 shards, 8 images on CPU and 10 s).
PROGRESS_ENV = {
    env_names.SHARDS: "1",
    env_names.resource_variable("vae_batch_size"): "2",
    env_names.PROGRESS_SECONDS: "1",
}
# "encode: 12/57 images (21%), 3.1 images/s, ETA 14s, elapsed 4s": a line of a step still running (it has an ETA).
RUNNING_ENCODE_LINE = re.compile(r"encode: (\d+)/(\d+) (\w+) \(\d+%\), ([\d.,]+) \3/s, ETA (\w+), elapsed \w+")
RUNS = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"
RUN_EVENTS = """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
  __typename ... on MessageEvent { message stepKey } ... on ExecutionStepFailureEvent { error { message } } } } } }"""
DONE = ("SUCCESS", "FAILURE", "CANCELED")


def serve(env: dict, port: int) -> list[subprocess.Popen]:
    """dagster-daemon and dagster-webserver on the workspace, with the demo's DAGSTER_HOME (its storage created
    first: two processes creating a fresh SQLite storage at once can both stamp its schema version, after which
    neither loads the code location: "Version table 'alembic_version' has more than one head present")."""
    bin_dir = Path(sys.executable).parent
    logs = Path(env["DAGSTER_HOME"])
    dg.DagsterInstance.from_config(str(logs)).dispose()
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


def wait_for_assets(port: int, processes, logs: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and all(p.poll() is None for p in processes):
        try:
            if graphql(port, "{ assetNodes { id } }")["data"]["assetNodes"]:
                return
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(1)
    codes = [p.poll() for p in processes]
    raise AssertionError(
        f"the webserver did not serve the asset graph (daemon, webserver exit codes {codes}):\n"
        + (logs / "webserver.log").read_text()[-3000:]
    )


def ui_runs(port: int) -> dict[str, dict]:
    """partition -> the run launched from the UI for it."""
    found = {}
    for run in graphql(port, RUNS)["data"]["runsOrError"]["results"]:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if tags.get("dagster/from_ui") == "true" and "dagster/partition" in tags:
            found.setdefault(tags["dagster/partition"], run)
    return found


def wait_for(what: str, ready, timeout: float):
    """Poll `ready()` until it gives something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def failures(port: int, run_id: str) -> list[str]:
    """The failure messages of a run's steps, for an assertion's message."""
    events = graphql(port, RUN_EVENTS, {"runId": run_id})["data"]["logsForRun"]["events"]
    return [f"{e.get('stepKey')}: {e['error']['message'][:600]}" for e in events if e.get("error")]


def step_done(port: int, partition: str, step: str) -> bool:
    """Whether the UI run of `partition` has finished `step`; fails with its errors when that run failed."""
    run = ui_runs(port)[partition]
    events = graphql(port, RUN_EVENTS, {"runId": run["runId"]})["data"]["logsForRun"]["events"]
    if any(e["__typename"] == "ExecutionStepSuccessEvent" and e.get("stepKey") == step for e in events):
        return True
    assert run["status"] not in DONE, f"the run of {partition} ended {run['status']}: {failures(port, run['runId'])}"
    return False


def demo_backends(config_path: Path) -> tuple[list[str], dict[str, str], str]:
    """The demo's partitions as its config lists them, each conditioning partition's source partition (it is launched
    once its source's run has succeeded: its buckets pair with the source's index), and the partition whose encode
    step is watched: the one with the most rows."""
    config = load_config(config_path)
    partitions = config.partition_ids
    sources = {}
    for key in partitions:
        pairing = config.backend(key).conditioning
        if pairing.is_conditioning and pairing.source in partitions:
            sources[key] = pairing.source
    watched = max((p for p in partitions if p not in sources), key=lambda p: open_split(config.backend(p)).num_rows)
    return partitions, sources, watched


def launch_partition(page, base: str, partition: str) -> None:
    """Materialize every asset of one partition from the graph's launch dialog, as configured (no launchpad)."""
    if not page.url.endswith("/asset-groups"):
        page.goto(f"{base}/asset-groups", wait_until="networkidle")
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Select a partition or create one").click()
    page.keyboard.type(partition)
    # An item reads "photos photos" (name, then key): typing "photos" also lists "sks-photos".
    page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(partition)}(\s|$)")).click()
    page.keyboard.press("Escape")
    launch = dialog.get_by_role("button", name="Launch 1 run")
    launch.click()
    launch.wait_for(state="detached")


@pytest.mark.slow
def test_every_demo_backend_runs_from_the_ui_shows_encode_progress_then_its_metadata_pictures_and_checks(
    demo_workspace,
):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    screens = Path(tempfile.mkdtemp(prefix="hf_assets_browser_"))  # kept: pytest's own tmp folders rotate
    partitions, sources, watched = demo_backends(demo_workspace.config)
    assert PARTITION in partitions and len(partitions) >= 5
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = serve({**demo_workspace.env, **PROGRESS_ENV}, port)
    daemon_log = Path(demo_workspace.env["DAGSTER_HOME"]) / "daemon.log"
    try:
        wait_for_assets(port, processes, Path(demo_workspace.env["DAGSTER_HOME"]))
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)

            def shot(name: str, full_page: bool = False) -> None:
                page.screenshot(path=str(screens / f"{name}.png"), full_page=full_page)

            try:
                # The asset graph; a fresh instance greets a new user with a dialog, which they skip.
                page.goto(f"{base}/asset-groups", wait_until="networkidle")
                page.get_by_role("button", name="Skip").click(timeout=30_000)
                shot("01_asset_graph")

                # Every backend whose data stands alone, the watched one first (the run queue starts it first).
                first = [watched] + [p for p in partitions if p not in sources and p != watched]
                for partition in first:
                    launch_partition(page, base, partition)
                    wait_for(f"the run of {partition}", lambda p=partition: ui_runs(port).get(p), 60)
                shot("02_launched")

                # The watched run's log, filtered to its ETAs: a progress line of its encode step while it runs.
                run_id = ui_runs(port)[watched]["runId"]
                page.goto(f"{base}/runs/{run_id}", wait_until="networkidle")
                page.get_by_placeholder("Filter…").fill("ETA")
                line = page.get_by_text(RUNNING_ENCODE_LINE).first
                line.wait_for(timeout=600_000)
                shot("03_encode_progress")
                done, total, unit, rate, _eta = RUNNING_ENCODE_LINE.search(line.inner_text()).groups()
                assert 0 < int(done) < int(total) and float(rate.replace(",", "")) > 0, line.inner_text()

                # A conditioning backend once its source's index is stored (its buckets pair with it).
                # While it waits, the browser shows a blank page: a live asset graph or run log costs the runs CPU.
                for partition, source in sources.items():
                    page.goto("about:blank")
                    wait_for(f"{source}'s filtered_index", lambda s=source: step_done(port, s, "filtered_index"), 900)
                    launch_partition(page, base, partition)
                    wait_for(f"the run of {partition}", lambda p=partition: ui_runs(port).get(p), 60)
                page.goto("about:blank")
                runs = wait_for(
                    "every run",
                    lambda: (
                        (r := ui_runs(port))
                        and set(r) == set(partitions)
                        and all(x["status"] in DONE for x in r.values())
                        and r
                    ),
                    900,
                )
                failed = {p: failures(port, r["runId"]) for p, r in runs.items() if r["status"] != "SUCCESS"}
                assert not failed, f"{failed}\n{daemon_log.read_text()[-3000:]}"
                page.goto(f"{base}/runs", wait_until="networkidle")
                shot("04_runs")

                # The bucket table's page for one partition: a metadata value and the inline histogram.
                page.goto(
                    f"{base}/assets/aspect_buckets?view=partitions&partition={PARTITION}", wait_until="networkidle"
                )
                samples_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="samples", exact=True))
                shown = int(samples_row.get_by_role("cell").nth(1).inner_text())
                table = demo_workspace.config.parent / "cache" / PARTITION / "huggingface_metadata" / PARTITION
                assert shown == pq.read_metadata(table / "aspect_buckets.parquet").num_rows > 0
                histogram = page.locator("img[src^='data:image/svg+xml']")
                histogram.first.wait_for()
                assert histogram.first.bounding_box()["height"] > 40  # drawn in place, not behind a link
                shot("05_aspect_buckets_metadata", full_page=True)
                # The previews, their own asset: the grid behind "[Show Markdown]".
                page.goto(
                    f"{base}/assets/bucket_previews?view=partitions&partition={PARTITION}", wait_until="networkidle"
                )
                grid_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="preview_grid", exact=True))
                grid_row.get_by_text("[Show Markdown]").click()
                grid = page.get_by_role("dialog").locator("img[src^='data:image/jpeg']")
                grid.wait_for()
                assert grid.evaluate("img => img.naturalWidth") > 400
                shot("06_preview_grid")
                page.keyboard.press("Escape")

                # A check's latest result names its partition (the last one to run it).
                page.goto(f"{base}/assets/vae_latents?view=checks", wait_until="networkidle")
                page.get_by_text("latents_finite").first.click()
                page.get_by_text("Passed").first.wait_for()
                page.get_by_text("Latest execution").wait_for()
                body = page.locator("body").inner_text()
                latest = re.search(r"Latest execution.*?\nPartition\s*\n\s*(\S+)", body, re.S)
                assert latest and latest.group(1) in partitions
                shot("07_check_latest_execution")
                page.get_by_text("Partitions", exact=True).last.click()  # the check's own tab, after the asset's
                page.get_by_text(PARTITION).first.wait_for()
                shot("08_check_partitions")
            except Exception:
                shot("failure", full_page=True)
                print(f"screenshots: {screens}")
                raise
            finally:
                browser.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
