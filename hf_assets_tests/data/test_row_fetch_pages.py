"""Fetching kept rows over HTTP reads only the pages that hold them when the file has an offset index.

A filter that keeps part of each row group would otherwise fetch whole row groups: here half of every group is kept,
so whole-chunk reads send twice the kept images' bytes."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.config import parse_config
from hf_assets.data.sources import open_split
from hf_assets.encode.image_source import ImageSource
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.range_server import serve

ROWS, GROUP_ROWS, RUN = 160, 40, 10  # four row groups; kept rows come in runs of ten, every other run
SIZES = [(320, 240), (240, 320), (288, 288), (400, 200)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The same rows twice: with an offset index and small pages, and as pyarrow writes by default."""
    root = tmp_path_factory.mktemp("pages")
    images = [encode_image(*SIZES[i % 4], "JPEG", seed=i) for i in range(ROWS)]
    table = pa.table(
        {
            "image": pa.array(
                [{"bytes": b, "path": None} for b in images], pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            ),
            "caption": pa.array([f"picture {i}" for i in range(ROWS)]),
        }
    )
    (root / "indexed").mkdir()
    (root / "plain").mkdir()
    pq.write_table(
        table,
        root / "indexed" / "train.parquet",
        row_group_size=GROUP_ROWS,
        write_page_index=True,
        data_page_size=16 << 10,
        write_batch_size=1,  # pyarrow closes a page only between write batches
        use_dictionary=["caption"],  # unique images: PLAIN pages (a dictionary page would hold them all)
    )
    pq.write_table(table, root / "plain" / "train.parquet", row_group_size=GROUP_ROWS)
    with serve(root) as (url, traffic):
        yield url, traffic, images


def fetch(tmp_path, url, traffic, folder, rows):
    entry = {"id": "remote", "type": "huggingface", "dataset_name": f"{url}/{folder}/train.parquet"}
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    split = open_split(backend)
    traffic.reset()
    return list(ImageSource(split, "image").sources(rows)), traffic.total


def test_rows_in_a_few_pages_of_an_indexed_file_fetch_those_pages_only(tmp_path, served):
    url, traffic, images = served
    kept = np.array([i for i in range(ROWS) if (i // RUN) % 2 == 0])
    kept_bytes = sum(len(images[i]) for i in kept)

    by_pages, sent_pages = fetch(tmp_path, url, traffic, "indexed", kept)
    whole, sent_whole = fetch(tmp_path, url, traffic, "plain", kept)

    assert by_pages == whole == [images[i] for i in kept]
    assert sent_pages <= 1.1 * kept_bytes + (16 << 10)  # the kept rows' pages and each chunk's offset index
    assert sent_whole >= 1.8 * kept_bytes  # no offset index: whole row groups, as before
