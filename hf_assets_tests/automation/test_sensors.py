"""The change sensors, evaluated with Dagster's sensor test context: a run only for the backend that changed."""

import json
import os

import dagster as dg
import pytest

from hf_assets.automation.sensors import sensor_name
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config
from hf_assets_tests.imagegen import encode_image


class FakeHub:
    """Stands in for HfApi: the commit each (repo, revision) points at, or an error as the network gives."""

    def __init__(self):
        self.commits = {("user/photos", "v1"): "a" * 40}
        self.error: Exception | None = None
        self.calls = []

    def dataset_info(self, repo_id, revision=None, token=None):
        self.calls.append((repo_id, revision))
        if self.error:
            raise self.error
        return type("Info", (), {"sha": self.commits[(repo_id, revision)]})()


@pytest.fixture
def setup(tmp_path):
    folder = tmp_path / "data" / "imgs"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"img{i}.jpg").write_bytes(encode_image(64 + 16 * i, 48, "JPEG", seed=i))
        (folder / f"img{i}.txt").write_text(f"caption {i}")
    entries = [
        {"id": "local-set", "type": "local", "instance_data_dir": "data/imgs", "caption_strategy": "textfile"},
        {
            "id": "hub.set",
            "type": "huggingface",
            "dataset_name": "user/photos",
            "revision": "v1",
            "caption_column": "caption",
        },
    ]
    config = write_config(tmp_path / "dataloader.json", entries)
    hub = FakeHub()
    defs = build_definitions(config, hub_api=lambda: hub)
    sensors = {s.name: s for s in defs.sensors}
    return {
        "config": config,
        "entries": entries,
        "hub": hub,
        "sensors": sensors,
        "folder": folder,
        "cursors": {},
        "defs": defs,
    }


def tick(setup) -> dict[str, list]:
    """Evaluate every sensor once, carrying each one's cursor over from its previous tick; its run requests."""
    requests = {}
    for name, sensor in setup["sensors"].items():
        with dg.build_sensor_context(cursor=setup["cursors"].get(name), definitions=setup["defs"]) as context:
            data = sensor.evaluate_tick(context)
        setup["cursors"][name] = data.cursor
        requests[name] = list(data.run_requests or [])
    return requests


LOCAL, HUB = sensor_name("local-set"), sensor_name("hub.set")


def test_one_sensor_per_backend_ships_stopped():
    assert (LOCAL, HUB) == ("refresh_local_set_on_change", "refresh_hub_set_on_change")


def test_sensors_are_in_the_definitions_and_stopped(setup):
    defs = build_definitions(setup["config"])
    for name in (LOCAL, HUB):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert sensor.job_name == "prepare_datasets"


def test_first_tick_records_and_unchanged_inputs_request_nothing(setup):
    assert tick(setup) == {LOCAL: [], HUB: []}
    assert json.loads(setup["cursors"][LOCAL])["described"].startswith("6 files under")
    assert tick(setup) == {LOCAL: [], HUB: []}
    assert setup["hub"].calls[-1] == ("user/photos", "v1")  # the configured revision is what is watched


def test_a_new_image_requests_one_run_of_that_backend_only(setup):
    tick(setup)
    (setup["folder"] / "img9.png").write_bytes(encode_image(80, 80, "PNG", seed=9))
    requests = tick(setup)
    assert requests[HUB] == []
    assert [r.partition_key for r in requests[LOCAL]] == ["local-set"]
    assert requests[LOCAL][0].tags["hf_assets/trigger"] == f"files under {setup['folder']}: 1 added (img9.png)"
    assert tick(setup) == {LOCAL: [], HUB: []}  # seen once, requested once


def test_a_rewritten_caption_sidecar_counts_as_a_change(setup):
    tick(setup)
    sidecar = setup["folder"] / "img1.txt"
    sidecar.write_text("a new caption")
    os.utime(sidecar, ns=(sidecar.stat().st_atime_ns, sidecar.stat().st_mtime_ns + 10**9))
    (request,) = tick(setup)[LOCAL]
    assert request.partition_key == "local-set"
    assert request.tags["hf_assets/trigger"] == f"files under {setup['folder']}: 1 changed (img1.txt)"


def test_a_moved_hub_revision_requests_one_run_of_that_backend_only(setup):
    tick(setup)
    setup["hub"].commits[("user/photos", "v1")] = "b" * 40
    requests = tick(setup)
    assert requests[LOCAL] == [] and [r.partition_key for r in requests[HUB]] == ["hub.set"]
    assert requests[HUB][0].tags["hf_assets/trigger"] == "user/photos@v1 moved from commit aaaaaaaaaaaa to bbbbbbbbbbbb"


def test_an_edited_config_entry_requests_a_run_of_that_backend_only(setup):
    tick(setup)
    entries = [dict(setup["entries"][0], resolution=512), setup["entries"][1]]
    write_config(setup["config"], entries)
    requests = tick(setup)
    assert requests[HUB] == [] and [r.partition_key for r in requests[LOCAL]] == ["local-set"]
    trigger = requests[LOCAL][0].tags["hf_assets/trigger"]
    assert trigger == "its config entry changed: buckets.resolution 1024.0 → 512.0"


def test_a_network_error_requests_nothing_raises_nothing_and_is_retried(setup):
    tick(setup)
    before = setup["cursors"][HUB]
    setup["hub"].error = ConnectionError("Max retries exceeded with url: /api/datasets/user/photos")
    setup["hub"].commits[("user/photos", "v1")] = "c" * 40
    assert tick(setup)[HUB] == []
    assert setup["cursors"][HUB] == before  # nothing recorded: the next tick compares with the last good state
    setup["hub"].error = None
    assert [r.partition_key for r in tick(setup)[HUB]] == ["hub.set"]


def test_a_broken_config_file_requests_nothing_and_raises_nothing(setup):
    tick(setup)
    setup["config"].write_text("[{ not json")
    assert tick(setup) == {LOCAL: [], HUB: []}


def test_the_real_hub_client_offline_is_a_logged_skip_not_a_crash(setup, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    defs = build_definitions(setup["config"])
    sensor = defs.resolve_sensor_def(HUB)
    with dg.build_sensor_context(definitions=defs) as context:
        data = sensor.evaluate_tick(context)
    assert not data.run_requests and "could not check 'hub.set'" in data.skip_message
