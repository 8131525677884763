"""aspect_buckets shows an inline histogram; bucket_previews a preview grid, and both PNGs beside the cache."""

import base64
import io

import dagster as dg
from PIL import Image

from hf_assets.definitions import build_definitions
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
