"""Hub ids go through `hf://datasets/<id>@<revision>` (HfFileSystem), pointed at a local Hub stand-in (HF_ENDPOINT).

The same code path as the real Hub: repo info, tree listing, ranged `resolve` downloads; bytes are counted.
"""

import json

import huggingface_hub.constants
import numpy as np
import pyarrow.parquet as pq
import pytest

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.encode.image_source import ImageSource
from hf_assets_tests.data.test_remote_parquet import GROUP_ROWS, image_table
from hf_assets_tests.fake_hub import serve_hub

REPO = "someone/pictures"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """`someone/pictures`: Parquet shards on main, or (converted=True) JSON on main plus the Parquet export."""
    root = tmp_path / "hub"
    (root / "main" / "data").mkdir(parents=True)
    (root / "convert" / "default" / "train").mkdir(parents=True)
    for k in range(2):
        pq.write_table(
            image_table(k * 40, 40),
            root / "main" / "data" / f"train-{k:05d}-of-00002.parquet",
            row_group_size=GROUP_ROWS,
        )
    pq.write_table(
        image_table(0, 30), root / "convert" / "default" / "train" / "0000.parquet", row_group_size=GROUP_ROWS
    )
    (root / "json" / "data").mkdir(parents=True)
    (root / "json" / "data" / "train.jsonl").write_text(json.dumps({"caption": "x"}) + "\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def start(converted: bool = False):
        revisions = {"main": "json" if converted else "main", "refs/convert/parquet": "convert"}
        return serve_hub(root, REPO, revisions)

    return root, start, monkeypatch


def backend_for(tmp_path, **extra):
    entry = {
        "id": "hub",
        "type": "huggingface",
        "dataset_name": REPO,
        "caption_column": "caption",
        "width_column": "width",
        "height_column": "height",
        "resolution": 128,
        "cache_dir": "cache",
        **extra,
    }
    return parse_config([entry], tmp_path / "dataloader.json").backends[0]


def test_a_hub_id_is_read_as_parquet_files_through_hf_paths(tmp_path, hub):
    root, start, monkeypatch = hub
    with start() as (endpoint, traffic):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        backend = backend_for(tmp_path)
        split = open_split(backend)
        index, dropped = build_filtered_index(split, backend)

    assert split.kind == "parquet (hub)" and split.source == f"hf://datasets/{REPO}@main"
    assert split.num_rows == 80 and [f["rows"] for f in split.files] == [40, 40]
    assert all(f["identity"].startswith("sha256:") for f in split.files)
    assert index.num_rows == 80 and sum(dropped.values()) == 0
    total = sum(p.stat().st_size for p in (root / "main" / "data").glob("*.parquet"))
    assert 0 < traffic.total <= 0.10 * total


def test_a_dataset_not_stored_as_parquet_is_read_from_its_parquet_export(tmp_path, hub):
    _, start, monkeypatch = hub
    with start(converted=True) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        split = open_split(backend_for(tmp_path))
    assert split.kind == "parquet (hub refs/convert/parquet)" and split.num_rows == 30


def test_kept_rows_are_fetched_from_the_hub_value_by_value(tmp_path, hub):
    root, start, monkeypatch = hub
    with start() as (endpoint, traffic):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        split = open_split(backend_for(tmp_path))
        traffic.reset()
        rows = np.array([3, 4, 55])  # row group 0 of the first file and row group 1 of the second
        fetched = list(ImageSource(split, "image").sources(rows))
    expected = [
        image_table(0, 40).column("image")[3].as_py()["bytes"],
        image_table(0, 40).column("image")[4].as_py()["bytes"],
        image_table(40, 40).column("image")[15].as_py()["bytes"],
    ]
    assert fetched == expected
    chunks = [
        pq.ParquetFile(root / "main" / "data" / name).metadata.row_group(group).column(0).total_compressed_size
        for name, group in (("train-00000-of-00002.parquet", 0), ("train-00001-of-00002.parquet", 1))
    ]
    # pyarrow's default layout puts a row group's images in one snappy page: the three values are read out of it
    # (their bytes, the element tags walked, the page headers), not the two chunks that hold them
    assert sum(map(len, expected)) <= traffic.total <= 1.1 * sum(map(len, expected)) + (24 << 10)
    assert traffic.total < sum(chunks) / 4
