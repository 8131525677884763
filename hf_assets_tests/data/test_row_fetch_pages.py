"""Fetching kept rows over HTTP reads about the kept images' bytes, whatever the file's layout.

A filter that keeps part of each row group would otherwise fetch whole row groups (twice the kept bytes when half
is kept). Pages holding only kept rows are read whole; large pages stored as is or snappy-compressed (pyarrow's
default puts a row group's images in one such page, `datasets` writes them uncompressed) are read value by value;
other codecs cost the pages that hold kept rows.
"""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.config import parse_config
from hf_assets.data.sources import open_split
from hf_assets.encode.image_source import ImageSource
from hf_assets_tests.data.test_preview_rows import settled
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.range_server import serve

ROWS, GROUP_ROWS, RUN = 160, 40, 10  # four row groups
SIZES = [(320, 240), (240, 320), (288, 288), (400, 200), (512, 384), (200, 300)]

LAYOUTS = {
    # an offset index and small pages: pages are the unit
    "indexed": dict(
        write_page_index=True,
        data_page_size=16 << 10,
        write_batch_size=1,  # pyarrow closes a page only between write batches
        use_dictionary=["caption"],  # unique images: PLAIN pages (a dictionary page would hold them all)
    ),
    # pyarrow's defaults: each row group's images in one snappy dictionary page, no page index
    "default": {},
    "no dictionary": dict(use_dictionary=["caption"]),
    # what `datasets` writes for images: PLAIN, uncompressed, a page index, pages of a few hundred KB
    "datasets": dict(
        compression={"image.bytes": "none", "image.path": "snappy", "caption": "snappy"},
        column_encoding={"image.bytes": "PLAIN"},
        use_dictionary=["caption", "image.path"],
        write_page_index=True,
        data_page_size=256 << 10,
        write_batch_size=4,
    ),
    "v2 pages": dict(data_page_version="2.0", use_dictionary=["caption"]),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The same rows in every layout, one folder each."""
    root = tmp_path_factory.mktemp("pages")
    images = [encode_image(*SIZES[i % 6], "JPEG", seed=i) for i in range(ROWS)]
    table = pa.table(
        {
            "image": pa.array(
                [{"bytes": b, "path": None} for b in images], pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            ),
            "caption": pa.array([f"picture {i}" for i in range(ROWS)]),
        }
    )
    for name, options in {**LAYOUTS, "zstd": {}}.items():
        (root / name).mkdir()
        codec = "zstd" if name == "zstd" else options.pop("compression", "snappy")
        pq.write_table(table, root / name / "train.parquet", row_group_size=GROUP_ROWS, compression=codec, **options)
    with serve(root) as (url, traffic):
        yield url, traffic, images


def fetch(tmp_path, url, traffic, folder, rows):
    entry = {"id": "remote", "type": "huggingface", "dataset_name": f"{url}/{folder}/train.parquet"}
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    split = open_split(backend)
    settled(traffic)
    traffic.reset()
    values = list(ImageSource(split, "image").sources(rows))
    return values, settled(traffic)


def scattered() -> np.ndarray:
    """About half the rows, scattered through every row group (no run of kept rows fills a page)."""
    return np.array([i for i in range(ROWS) if (i * 7919) % 13 < 7])


def in_runs() -> np.ndarray:
    """Runs of ten rows, every other run."""
    return np.array([i for i in range(ROWS) if (i // RUN) % 2 == 0])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("chosen", [scattered, in_runs], ids=["scattered", "in runs"])
def test_kept_rows_cost_about_their_own_bytes_in_every_layout(tmp_path, served, layout, chosen):
    url, traffic, images = served
    kept = chosen()
    kept_bytes = sum(len(images[i]) for i in kept)
    values, sent = fetch(tmp_path, url, traffic, layout, kept)
    assert values == [images[i] for i in kept]
    # the kept images, the page headers and element tags walked, each chunk's offset index
    assert sent <= 1.1 * kept_bytes + (16 << 10), f"{sent / kept_bytes:.2f}x the kept bytes"


def test_a_codec_without_random_access_costs_the_pages_that_hold_kept_rows(tmp_path, served):
    url, traffic, images = served
    kept = scattered()
    kept_bytes = sum(len(images[i]) for i in kept)
    values, sent = fetch(tmp_path, url, traffic, "zstd", kept)
    assert values == [images[i] for i in kept]
    assert sent >= 1.5 * kept_bytes  # zstd pages are read whole: every row group holds kept rows


def test_one_row_of_a_large_page_costs_that_row(tmp_path, served):
    url, traffic, images = served
    for layout in ("default", "datasets", "v2 pages"):
        values, sent = fetch(tmp_path, url, traffic, layout, np.array([GROUP_ROWS + 17]))
        assert values == [images[GROUP_ROWS + 17]]
        assert sent <= len(images[GROUP_ROWS + 17]) + (8 << 10), layout
