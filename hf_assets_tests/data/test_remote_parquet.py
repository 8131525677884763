"""A Parquet dataset served over HTTP (with Range requests): scans read metadata only, encoding reads kept row groups.

The server counts every body byte it sends, so these tests measure what a real remote source would transfer.
"""

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.row_fetch import FetchError
from hf_assets.data.sources import open_split
from hf_assets.encode.image_source import ImageSource
from hf_assets_tests.conftest import write_config
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.range_server import serve

ROWS, GROUP_ROWS, FILES = 120, 10, 2
KEPT_GROUPS = {3, 8}  # the row groups whose rows are "photo"; a collection filter keeps only them


def image_table(first: int, n: int) -> pa.Table:
    """Rows of real JPEGs (varied sizes, noisy enough that they dominate the bytes) and small metadata columns."""
    sizes = [(320, 240), (240, 320), (288, 288), (400, 200)]
    images = [encode_image(*sizes[i % 4], "JPEG", seed=i) for i in range(first, first + n)]
    rows = range(first, first + n)
    return pa.table(
        {
            "image": pa.array(
                [{"bytes": b, "path": None} for b in images], pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            ),
            "width": pa.array([sizes[i % 4][0] for i in rows], pa.int32()),
            "height": pa.array([sizes[i % 4][1] for i in rows], pa.int32()),
            "caption": pa.array([f"picture number {i}" for i in rows]),
            "collection": pa.array(["photo" if i // GROUP_ROWS in KEPT_GROUPS else "artwork" for i in rows]),
        }
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two Parquet files (row groups of 10 rows) under data/, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("remote")
    (root / "data").mkdir()
    per_file = ROWS // FILES
    for k in range(FILES):
        pq.write_table(
            image_table(k * per_file, per_file),
            root / "data" / f"train-{k:05d}-of-{FILES:05d}.parquet",
            row_group_size=GROUP_ROWS,
        )
    with serve(root) as (url, traffic):
        yield root, url, traffic


def backend_for(tmp_path, url, **extra):
    entry = {
        "id": "remote",
        "type": "huggingface",
        "dataset_name": f"{url}/data/*.parquet",
        "caption_column": "caption",
        "width_column": "width",
        "height_column": "height",
        "resolution": 128,
        "cache_dir": "cache",
        **extra,
    }
    return parse_config([entry], tmp_path / "dataloader.json").backends[0]


def dataset_bytes(root) -> int:
    return sum(p.stat().st_size for p in (root / "data").glob("*.parquet"))


def test_a_remote_scan_transfers_at_most_a_tenth_of_the_bytes(tmp_path, served):
    root, url, traffic = served
    image_share = sum(
        pq.ParquetFile(p).metadata.row_group(g).column(0).total_compressed_size
        for p in (root / "data").glob("*.parquet")
        for g in range(ROWS // FILES // GROUP_ROWS)
    )
    assert image_share > 0.9 * dataset_bytes(root)  # images dominate, as in real datasets
    traffic.reset()
    backend = backend_for(tmp_path, url)
    split = open_split(backend)
    index, dropped = build_filtered_index(split, backend)

    assert split.kind == "parquet (fsspec)" and split.num_rows == ROWS and len(split.files) == FILES
    assert all(f["identity"].startswith("ETag:") for f in split.files)
    assert index.num_rows == ROWS and sum(dropped.values()) == 0
    assert index.column("filename").to_pylist()[:3] == ["0.jpg", "1.jpg", "2.jpg"]
    assert 0 < traffic.total <= 0.10 * dataset_bytes(root)


def test_the_remote_scan_equals_the_local_scan(tmp_path, served):
    root, url, _ = served
    remote = backend_for(tmp_path, url, filter_func={"collection": ["photo"]})
    local = parse_config(
        [
            {
                "id": "remote",
                "type": "huggingface",
                "dataset_name": str(root),
                "caption_column": "caption",
                "width_column": "width",
                "height_column": "height",
                "resolution": 128,
                "filter_func": {"collection": ["photo"]},
            }
        ],
        tmp_path / "dataloader.json",
    ).backends[0]
    remote_index, remote_dropped = build_filtered_index(open_split(remote), remote)
    local_index, local_dropped = build_filtered_index(open_split(local), local)
    assert remote_index.to_pylist() == local_index.to_pylist() and remote_dropped == local_dropped


def test_encoding_fetches_only_the_row_groups_holding_kept_rows(tmp_path, served):
    root, url, traffic = served
    backend = backend_for(tmp_path, url, filter_func={"collection": ["photo"]})
    split = open_split(backend)
    index, _ = build_filtered_index(split, backend)
    kept = index.column("row").to_numpy()
    assert sorted({int(r) // GROUP_ROWS for r in kept}) == sorted(KEPT_GROUPS)

    traffic.reset()
    fetched = list(ImageSource(split, "image").sources(kept))

    expected = pa.concat_tables([image_table(0, ROWS // 2), image_table(ROWS // 2, ROWS // 2)]).column("image")
    assert fetched == [expected[int(r)].as_py()["bytes"] for r in kept]
    kept_group_bytes = sum(
        pq.ParquetFile(root / "data" / f"train-{(g * GROUP_ROWS) // (ROWS // FILES):05d}-of-{FILES:05d}.parquet")
        .metadata.row_group(g % (ROWS // FILES // GROUP_ROWS))
        .column(0)
        .total_compressed_size
        for g in KEPT_GROUPS
    )
    assert kept_group_bytes <= traffic.total <= kept_group_bytes * 1.05  # the kept groups' image chunks, nothing else
    assert traffic.total < 0.25 * dataset_bytes(root)


def test_transient_server_errors_are_retried(tmp_path, served):
    _, url, traffic = served
    backend = backend_for(tmp_path, url)
    split = open_split(backend)
    traffic.failed = 0
    traffic.fail_next = 2
    first = list(ImageSource(split, "image").sources(np.array([5, 77])))
    assert traffic.failed == 2 and all(isinstance(b, bytes) and b[:2] == b"\xff\xd8" for b in first)


def test_a_missing_remote_file_fails_with_the_file_named_not_retried_forever(tmp_path, served):
    root, url, _ = served
    backend = backend_for(tmp_path, url)
    split = open_split(backend)
    moved = root / "data" / "train-00001-of-00002.parquet"
    moved.rename(moved.with_suffix(".gone"))
    try:
        with pytest.raises(FetchError, match="train-00001-of-00002.parquet"):
            list(ImageSource(split, "image").sources(np.array([100])))
    finally:
        moved.with_suffix(".gone").rename(moved)


@pytest.mark.slow  # the metadata assets through Dagster
def test_the_metadata_assets_run_over_http_through_dagster_listing_once_per_run(tmp_path, served):
    from hf_assets.definitions import build_definitions

    _, url, traffic = served
    entries = [
        {
            "id": "remote",
            "type": "huggingface",
            "dataset_name": f"{url}/data/*.parquet",
            "caption_column": "caption",
            "width_column": "width",
            "height_column": "height",
            "resolution": 128,
            "resolution_type": "pixel_area",
            "cache_dir": "cache",
        }
    ]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    traffic.reset()
    result = defs.resolve_job_def("scan_datasets").execute_in_process(partition_key="remote", instance=instance)
    assert result.success
    raw = result.asset_materializations_for_node("raw_split")[0].metadata
    assert raw["read_as"].value == "parquet (fsspec)" and raw["files"].value == FILES
    buckets = defs.load_asset_value("aspect_buckets", partition_key="remote", instance=instance)
    assert buckets.num_rows == ROWS
    # One listing per run: raw_split lists the folder (and asks each file's identity once); the steps after it
    # rebuild the split from raw_split's record, footers included.
    assert traffic.listings() == 1
    assert sorted(path for method, path in traffic.calls if method == "HEAD") == sorted(
        f"/data/train-{k:05d}-of-{FILES:05d}.parquet" for k in range(FILES)
    )
    # A run without raw_split lists once too (its first step), whatever the number of steps reading the split.
    traffic.reset()
    again = defs.resolve_job_def("scan_datasets").execute_in_process(
        partition_key="remote",
        instance=instance,
        asset_selection=[dg.AssetKey("aspect_buckets"), dg.AssetKey("bucket_previews")],
    )
    assert again.success and traffic.listings() == 1


@pytest.mark.parametrize(
    "suffix,rows",
    [
        ("/data/", ROWS),
        ("/data", ROWS),
        ("/data/*.parquet", ROWS),
        ("/data/train-00001-of-00002.parquet", ROWS // FILES),
    ],
)
def test_a_folder_a_glob_or_one_file_url_is_a_dataset(tmp_path, served, suffix, rows):
    _, url, _ = served
    backend = parse_config(
        [{"id": "remote", "type": "huggingface", "dataset_name": url + suffix, "caption_column": "caption"}],
        tmp_path / "dataloader.json",
    ).backends[0]
    split = open_split(backend)
    assert split.kind == "parquet (fsspec)" and split.num_rows == rows
