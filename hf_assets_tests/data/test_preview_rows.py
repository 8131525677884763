"""Preview rows: one per bucket and per drop reason, from the cheapest pages, within the byte budget, over HTTP."""

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.data.buckets import assign_buckets
from hf_assets.data.index import build_filtered_index
from hf_assets.data.preview_rows import choose_preview_rows, preview_sources
from hf_assets.data.sources import open_split
from hf_assets_tests.data.test_remote_parquet import backend_for
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.range_server import serve

SIZES = [(320, 240), (240, 320), (288, 288), (400, 200), (96, 64)]  # the last one is dropped as too small


def image_table(first: int, n: int, big: bool) -> pa.Table:
    rows = range(first, first + n)
    images = [encode_image(*SIZES[i % 5], "JPEG", seed=i, quality=95 if big else 40) for i in rows]
    return pa.table(
        {
            "image": pa.array(
                [{"bytes": b, "path": None} for b in images], pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            ),
            "width": pa.array([SIZES[i % 5][0] for i in rows], pa.int32()),
            "height": pa.array([SIZES[i % 5][1] for i in rows], pa.int32()),
            "caption": pa.array([None if i % 13 == 0 else f"picture {i}" for i in rows]),
        }
    )


@pytest.fixture(scope="module", params=[True, False], ids=["page index", "no page index"])
def served(request, tmp_path_factory):
    """Two files of 4 row groups of 20 rows; file 1's third row group holds small, cheap JPEGs; pages of ~5 rows."""
    root = tmp_path_factory.mktemp("previews")
    (root / "data").mkdir()
    for k in range(2):
        groups = [image_table(k * 80 + 20 * g, 20, big=not (k == 1 and g == 2)) for g in range(4)]
        with pq.ParquetWriter(
            root / "data" / f"train-{k}.parquet",
            groups[0].schema,
            write_page_index=request.param,
            data_page_size=20_000,
            write_batch_size=5,
            use_dictionary=False,
        ) as writer:
            for group in groups:
                writer.write_table(group)
    with serve(root) as (url, traffic):
        yield url, traffic


def settled(traffic) -> int:
    """The server's byte count once its handler threads have finished counting (they count after sending)."""
    last = -1
    while traffic.total != last:
        last = traffic.total
        time.sleep(0.05)
    return last


def scanned(tmp_path, url):
    backend = backend_for(tmp_path, url, resolution_type="pixel", minimum_image_size=100)
    split = open_split(backend)
    index, dropped = build_filtered_index(split, backend)
    buckets = assign_buckets(index, backend.buckets, backend.id)
    kept = (buckets.column("row").to_numpy(), buckets.column("bucket"))
    lost = (dropped.rows.column("row").to_numpy(), dropped.rows.column("reason"))
    return split, buckets, kept, lost


def test_one_row_per_bucket_and_reason_from_the_cheapest_row_group_within_the_budget(tmp_path, served):
    url, traffic = served
    split, buckets, kept, lost = scanned(tmp_path, url)
    traffic.reset()
    choice = choose_preview_rows(split, "image", kept, lost)
    looked = settled(traffic)
    labels = [label for _, label in choice.kept]
    assert len(labels) == 4 and len(set(labels)) == min(4, len(set(buckets.column("bucket").to_pylist())))
    assert {label for _, label in choice.dropped} == {"too_small", "no_caption"}
    # file 1's cheap third row group, but for a second no_caption row (it holds one: row 130)
    assert all(120 <= row < 140 for row, _ in choice.kept + choice.dropped[:3])
    rows = [row for row, _ in choice.kept + choice.dropped]
    traffic.reset()
    sources, fetched = preview_sources(split, "image", rows)
    assert 0 < choice.fetch_bytes <= fetched <= choice.fetch_bytes + 64 << 10
    assert settled(traffic) == fetched  # what the server sent is what the reader counted
    assert looked < 40 << 10  # two footers and the page layouts (offset indexes or page headers), no page
    expected = split.read(["image"]).column("image").combine_chunks().take(pa.array(rows)).field("bytes").to_pylist()
    assert sources == expected


def test_a_budget_below_every_page_fetches_nothing_and_says_what_is_missing(tmp_path, served):
    url, traffic = served
    split, _, kept, lost = scanned(tmp_path, url)
    choice = choose_preview_rows(split, "image", kept, lost, budget=1000)
    assert choice.kept == [] and choice.dropped == [] and choice.fetch_bytes == 0
    assert len(choice.skipped) == 8
    traffic.reset()
    assert preview_sources(split, "image", []) == ([], 0) and traffic.total == 0


def test_in_memory_splits_cost_nothing(tmp_path):
    from hf_assets.data.split import RawSplit

    table = image_table(0, 10, big=False).append_column("bucket", pa.array(["1.0", "0.5"] * 5))
    split = RawSplit.from_table("m", table, "memory", "f")
    choice = choose_preview_rows(
        split, "image", (np.arange(10), table.column("bucket")), (np.array([], np.int64), pa.array([], pa.string()))
    )
    assert sorted(label for _, label in choice.kept) == ["0.5", "0.5", "1.0", "1.0"] and choice.fetch_bytes == 0
    sources, fetched = preview_sources(split, "image", [row for row, _ in choice.kept])
    assert fetched == 0 and all(isinstance(s, bytes) and s[:2] == b"\xff\xd8" for s in sources)
