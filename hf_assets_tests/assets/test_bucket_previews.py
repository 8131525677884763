"""aspect_buckets shows an inline histogram; bucket_previews a preview grid, and both PNGs beside the cache."""

import base64
import io
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from hf_assets.assets.bucket_previews import read_bucket_columns
from hf_assets.data.buckets import bucket_histogram
from hf_assets.definitions import build_definitions
from hf_assets.encode.bucket_drawing import bucket_labels
from hf_assets_tests.assets.test_encoder_graph import metadata
from hf_assets_tests.conftest import write_config


def test_histogram_inline_and_preview_grid_in_the_metadata(tmp_path, hub_dataset, photos_entry):
    defs = build_definitions(write_config(tmp_path / "dataloader.json", [photos_entry]))
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    result = defs.resolve_job_def("scan_datasets").execute_in_process(partition_key="photos", instance=instance)
    meta = metadata(result, "aspect_buckets")
    assert meta["histogram"].startswith("![samples per bucket](data:image/svg+xml;base64,")
    assert len(meta["histogram"]) < 1000  # what the UI draws in place instead of a "[Show Markdown]" link
    assert {r.data["bucket"] for r in meta["samples_per_bucket"].records} == {
        b
        for b in defs.load_asset_value("aspect_buckets", partition_key="photos", instance=instance)
        .column("bucket")
        .to_pylist()
    }
    assert all("×" in r.data["target"] for r in meta["samples_per_bucket"].records)
    pictures = metadata(result, "bucket_previews")
    grid = pictures["preview_grid"]
    assert grid.startswith("![preview grid](data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(grid.split(",", 1)[1].rstrip(")")))).format == "JPEG"
    for key in ("histogram_file", "preview_grid_file"):
        assert open(pictures[key], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert 0 < pictures["preview_bytes_fetched"] <= pictures["preview_budget_bytes"]

    # A rerun that would show the same rows of the same files reuses the grid: no image is fetched again.
    drawn = open(pictures["preview_grid_file"], "rb").read()
    again = metadata(
        defs.resolve_job_def("scan_datasets").execute_in_process(partition_key="photos", instance=instance),
        "bucket_previews",
    )
    assert again["preview_bytes_fetched"] == 0 and "reused" in again["preview_fetched"]
    assert again["preview_grid"] == grid and open(again["preview_grid_file"], "rb").read() == drawn
    # One that would draw a row differently (the key no longer matches) fetches and draws again.
    key = Path(pictures["preview_grid_file"]).with_name("previews.key")
    key.write_text("another grid")
    redrawn = metadata(
        defs.resolve_job_def("scan_datasets").execute_in_process(partition_key="photos", instance=instance),
        "bucket_previews",
    )
    assert redrawn["preview_bytes_fetched"] > 0 and key.read_text() != "another grid"


def test_a_bucket_table_written_in_pieces_is_labelled_and_counted(tmp_path):
    # aspect_buckets writes its table batch by batch: each row group holds its own dictionary of bucket names
    schema = pa.schema(
        [("row", pa.int64()), ("bucket", pa.string()), ("target_width", pa.int32()), ("target_height", pa.int32())]
    )
    pieces = [
        {
            "row": [0, 1, 2],
            "bucket": ["1.0", "1.5", "1.0"],
            "target_width": [1024, 1216, 1024],
            "target_height": [1024, 832, 1024],
        },
        {"row": [3, 4], "bucket": ["0.67", "1.0"], "target_width": [832, 1024], "target_height": [1216, 1024]},
    ]
    with pq.ParquetWriter(tmp_path / "aspect_buckets.parquet", schema) as writer:
        for piece in pieces:
            writer.write_table(pa.table(piece, schema=schema))
    table = read_bucket_columns(tmp_path / "aspect_buckets.parquet")
    assert table.column("bucket").num_chunks == 2  # read per row group, as bucket_previews reads it
    assert bucket_labels(table) == {"1.0": "1.0 · 1024×1024", "1.5": "1.5 · 1216×832", "0.67": "0.67 · 832×1216"}
    assert dict(bucket_histogram(table)) == {"0.67": 1, "1.0": 3, "1.5": 1}
