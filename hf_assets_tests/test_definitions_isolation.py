"""One bad backend hides no other: the code location loads with the good backends as partitions that run, and each
broken one is a partition whose first step fails at once listing its problems; the CI check still exits 1."""

import logging

import dagster as dg
import pytest

from hf_assets.config import ConfigError, load_config
from hf_assets.config.check import main as check
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config

BROKEN = {
    "id": "songs",
    "type": "huggingface",
    "dataset_type": "audio",
    "dataset_name": "data/photos",
    "resolutoin": 512,
}


def entries(photos_entry):
    return [photos_entry, BROKEN, {"type": "local"}, {**photos_entry, "id": "second"}]


def test_a_broken_backend_is_a_partition_that_fails_at_once_and_the_others_run(
    tmp_path, hub_dataset, photos_entry, caplog
):
    path = write_config(tmp_path / "dataloader.json", entries(photos_entry))
    with caplog.at_level(logging.ERROR, logger="hf_assets.definitions"):
        defs = build_definitions(path)
    assert any('dataset_type "audio" is not supported' in r.getMessage() for r in caplog.records)
    job = defs.resolve_job_def("scan_datasets")
    assert job.partitions_def.get_partition_keys() == ["photos", "songs", "second", "entry-2"]

    instance = dg.DagsterInstance.ephemeral()
    assert job.execute_in_process(partition_key="photos", instance=instance).success
    failed = job.execute_in_process(partition_key="songs", instance=instance, raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "raw_split"  # the first step, at once (not retried)
    message = failure.event_specific_data.error.message
    assert "backend 'songs': dataset_type \"audio\" is not supported: audio is out of scope" in message
    assert "backend 'songs': unknown key 'resolutoin'; did you mean 'resolution'?" in message
    nameless = job.execute_in_process(partition_key="entry-2", instance=instance, raise_on_error=False)
    assert not nameless.success


def test_strict_loading_and_the_ci_check_refuse_the_same_config(tmp_path, hub_dataset, photos_entry, capsys):
    path = write_config(tmp_path / "dataloader.json", entries(photos_entry))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "entry 2: no 'id'" in str(info.value) and "backend 'songs'" in str(info.value)
    lenient = load_config(path, strict=False)
    assert lenient.backend_ids == ["photos", "second"] and set(lenient.broken) == {"songs", "entry-2"}
    with pytest.raises(ConfigError, match="audio is out of scope"):
        lenient.backend("songs")

    assert check([str(path)]) == 1
    err = capsys.readouterr().err
    assert "backend 'songs'" in err and "broken backends: songs, entry-2" in err
    good = write_config(tmp_path / "good.json", [photos_entry])
    assert check([str(good)]) == 0
    assert "1 backend(s) load: photos" in capsys.readouterr().out
    assert check([str(tmp_path / "missing.json")]) == 1


def test_a_broken_shared_text_embeds_entry_breaks_every_backend_but_the_location_still_loads(
    tmp_path, hub_dataset, photos_entry
):
    text = {"id": "text", "type": "local", "dataset_type": "text_embeds", "cache_dir": "t", "defualt": True}
    path = write_config(tmp_path / "dataloader.json", [photos_entry, text])
    config = load_config(path, strict=False)
    assert config.backend_ids == [] and list(config.broken) == ["photos"]
    assert any("unknown key 'defualt'; did you mean 'default'?" in p for p in config.broken["photos"])
    defs = build_definitions(path)
    assert defs.resolve_job_def("scan_datasets").partitions_def.get_partition_keys() == ["photos"]
