"""Config and data errors fail their step at once, with the production retry policy in force: no retry, no backoff."""

import time

import dagster as dg
import pyarrow as pa
import pytest

from hf_assets.assets.retries import is_transient
from hf_assets.data.split import DatasetNotFound
from hf_assets_tests.assets.test_data_errors import ENTRY, write_dataset
from hf_assets_tests.assets.test_metadata_graph import scan_one, step_failure

PRODUCTION_DELAY_S = "15"  # the default first backoff: a retried step would sleep 0-30 s before its next attempt
# Seconds, not minutes: ~2 s idle here; the bound leaves room for a loaded 2-core CI box (16 s seen at load 20),
# while a single retry at the production delay (0-30 s of backoff, asserted absent too) would start to show.
WITHIN_S = 30.0


def missing_hub_dataset(tmp_path) -> dict:
    return {**ENTRY, "id": "gone", "dataset_name": "nobody-here/no-such-dataset"}


def missing_local_folder(tmp_path) -> dict:
    return {"id": "gone", "type": "local", "instance_data_dir": "data/never-copied", "caption_strategy": "filename"}


def missing_absolute_dataset_folder(tmp_path) -> dict:
    return {**ENTRY, "id": "gone", "dataset_name": str(tmp_path / "moved-away" / "dataset")}


def empty_split(tmp_path) -> dict:
    (tmp_path / "data" / "empty").mkdir(parents=True)
    (tmp_path / "data" / "empty" / "README.txt").write_text("images go here")
    return {**missing_local_folder(tmp_path), "instance_data_dir": "data/empty"}


def binary_caption_column(tmp_path) -> dict:
    write_dataset(tmp_path, text=pa.array([f"caption {i}".encode() for i in range(4)], pa.binary()))
    return ENTRY


def misspelled_caption_column(tmp_path) -> dict:
    write_dataset(tmp_path, text=pa.array([f"caption {i}" for i in range(4)]))
    return {**ENTRY, "caption_column": "txt"}


def misspelled_quality_metric(tmp_path) -> dict:
    quality = pa.array([{"aesthetic": float(i)} for i in range(4)])
    write_dataset(tmp_path, text=pa.array([f"caption {i}" for i in range(4)]), quality=quality)
    return {**ENTRY, "filter_func": {"quality_thresholds": {"aesthetics": 2.0}, "quality_column": "quality"}}


def every_row_dropped(tmp_path) -> dict:
    write_dataset(tmp_path, text=pa.array([f"caption {i}" for i in range(4)]))
    return {**ENTRY, "minimum_image_size": 4096}


CASES = {
    "missing hub dataset": (missing_hub_dataset, "not found"),
    "missing local folder": (missing_local_folder, "is not a folder"),
    "missing dataset folder": (missing_absolute_dataset_folder, "not found"),
    "empty split": (empty_split, "the split is empty"),
    "binary caption column": (binary_caption_column, "holds bytes (binary), not text"),
    "misspelled caption column": (misspelled_caption_column, "caption_column 'txt' is not a column"),
    "misspelled quality metric": (misspelled_quality_metric, "metric 'aesthetics'"),
    "every row dropped": (every_row_dropped, "all 4 rows were dropped"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_config_or_data_error_fails_within_seconds_without_a_retry(tmp_path, monkeypatch, case):
    monkeypatch.setenv("HF_ASSETS_RETRY_DELAY", PRODUCTION_DELAY_S)
    make_entry, expected = CASES[case]
    entry = make_entry(tmp_path)
    started = time.monotonic()
    result = scan_one(tmp_path, entry)
    elapsed = time.monotonic() - started
    message = step_failure(result)
    assert expected in message and f"'{entry['id']}'" in message
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retried == []
    assert elapsed < WITHIN_S, f"{case} took {elapsed:.1f} s to fail"


def test_the_missing_dataset_error_hides_the_network_error_it_was_raised_from():
    import requests

    try:
        try:
            raise requests.ConnectionError("hub unreachable")
        except requests.ConnectionError:
            raise DatasetNotFound("backend 'x': dataset 'a/b' not found") from None
    except DatasetNotFound as error:
        missing = error
    assert missing.__context__ is not None and missing.__suppress_context__
    assert not is_transient(missing)


def test_context_suppressed_by_from_none_is_not_walked_but_implicit_context_is():
    import requests

    def raised(outer: Exception, suppress: bool) -> Exception:
        try:
            try:
                raise requests.ConnectionError("reset")
            except requests.ConnectionError:
                if suppress:
                    raise outer from None
                raise outer  # noqa: B904 - the implicit context is the point of this case
        except Exception as error:  # noqa: BLE001 - returned to the test
            return error

    assert is_transient(raised(RuntimeError("fetch failed"), suppress=False))
    assert not is_transient(raised(RuntimeError("fetch failed"), suppress=True))


def test_the_default_backoff_is_the_production_one(monkeypatch):
    from hf_assets.assets.retries import transient_retry

    monkeypatch.delenv("HF_ASSETS_RETRY_DELAY", raising=False)
    policy = transient_retry()
    assert (policy.max_retries, policy.delay, policy.backoff) == (3, 15.0, dg.Backoff.EXPONENTIAL)
    monkeypatch.setenv("HF_ASSETS_RETRY_DELAY", "0")
    assert transient_retry().delay == 0
    monkeypatch.setenv("HF_ASSETS_RETRY_DELAY", "soon")
    with pytest.raises(ValueError, match="HF_ASSETS_RETRY_DELAY='soon'"):
        transient_retry()
