"""Data-shape errors name the backend and the column; filtered_index lists every dropped row with its reason."""

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets_tests.assets.test_metadata_graph import scan_one, step_failure
from hf_assets_tests.imagegen import encode_image

ENTRY = {
    "id": "odd",
    "type": "huggingface",
    "dataset_name": "data/odd",
    "caption_column": "text",
    "resolution": 128,
    "resolution_type": "pixel",
    "cache_dir": "cache/odd",
}


def write_dataset(tmp_path, **columns) -> None:
    images = pa.array(
        [{"bytes": encode_image(160 + 16 * i, 128, seed=i), "path": None} for i in range(4)],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    folder = tmp_path / "data" / "odd" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"image": images, **columns}), folder / "train-00000-of-00001.parquet")


def test_a_binary_caption_column_fails_naming_the_backend_the_column_and_the_fix(tmp_path):
    write_dataset(tmp_path, text=pa.array([f"caption {i}".encode() for i in range(4)], pa.binary()))
    message = step_failure(scan_one(tmp_path, ENTRY))
    assert message.startswith("backend 'odd': caption column 'text' holds bytes (binary), not text")
    assert "set caption_column to a text column" in message


def test_an_image_column_of_another_type_fails_naming_the_backend_and_the_column(tmp_path):
    write_dataset(tmp_path, text=pa.array([f"caption {i}" for i in range(4)]))
    message = step_failure(scan_one(tmp_path, {**ENTRY, "image_column": "text"}))
    assert message.startswith("backend 'odd', image_column 'text': images must be an Image feature")
    assert "got string" in message


def test_filtered_index_writes_each_dropped_row_with_its_reason_beside_its_table(tmp_path, hub_dataset, photos_entry):
    result = scan_one(tmp_path, {**photos_entry, "minimum_image_size": 200, "resolution_type": "pixel"})
    assert result.success
    folder = tmp_path / "cache" / "photos" / "huggingface_metadata" / "photos"
    dropped = pq.read_table(folder / "dropped.parquet")
    assert dropped.column_names == ["row", "filename", "reason"]
    rows = {r["row"]: (r["filename"], r["reason"]) for r in dropped.to_pylist()}
    assert rows[5] == ("5.jpg", "unreadable_image")  # the corrupt photo
    assert rows[4] == ("4.jpg", "too_small")  # 120x90
    kept = pq.read_table(folder / "filtered_index.parquet").column("row").to_pylist()
    assert sorted(kept + list(rows)) == list(range(24))
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "filtered_index"
    ]
    metadata = event.materialization.metadata
    assert metadata["dropped_rows"].value == str(folder / "dropped.parquet")
    assert metadata["dropped"].value == dropped.num_rows


def test_retries_are_for_transient_failures_only():
    import errno

    from hf_assets.assets.retries import is_transient
    from hf_assets.data.columns import ColumnTypeError
    from hf_assets.encode.model_files import ModelNotFound

    class OutOfMemoryError(RuntimeError):  # the name torch.OutOfMemoryError has
        pass

    class Response:
        def __init__(self, status_code):
            self.status_code = status_code

    def http_error(status):
        error = OSError(f"HTTP {status}")
        error.response = Response(status)
        return error

    try:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as cause:
            raise FileNotFoundError("remote file not fetched") from cause
    except FileNotFoundError as wrapped:
        fetch_failed = wrapped
    transient = [
        ConnectionError("hub unreachable"),
        TimeoutError("read timed out"),
        http_error(503),
        http_error(429),
        OutOfMemoryError("CUDA out of memory"),
        fetch_failed,
    ]
    permanent = [
        ValueError("key 'crop' must be true or false"),
        ColumnTypeError("binary caption column"),
        ModelNotFound("HF_ASSETS_MODEL=/x: no such folder"),
        http_error(404),
        OSError(errno.ENOSPC, "No space left on device"),
        KeyError("column"),
        AttributeError("bug"),
    ]
    assert [is_transient(e) for e in transient] == [True] * len(transient)
    assert [is_transient(e) for e in permanent] == [False] * len(permanent)


def test_a_transient_failure_is_retried_and_a_data_error_is_not(tmp_path):
    import dagster as dg

    from hf_assets.assets.retries import retry_only_transient

    attempts = {"flaky": 0, "bad": 0}

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
    @retry_only_transient
    def flaky(context: dg.AssetExecutionContext) -> int:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise ConnectionError("hub hiccup")
        return 1

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
    @retry_only_transient
    def bad(context: dg.AssetExecutionContext) -> int:
        attempts["bad"] += 1
        raise ValueError("backend 'x': key 'crop' must be true or false")

    assert dg.materialize([flaky]).success and attempts["flaky"] == 2
    result = dg.materialize([bad], raise_on_error=False)
    assert attempts["bad"] == 1 and step_failure(result) == "backend 'x': key 'crop' must be true or false"
