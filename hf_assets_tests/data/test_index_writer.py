"""The filtered index and the bucket table written piece by piece equal the tables built at once, and the writers
never hold a whole table."""

import shutil
import threading
from pathlib import Path

import pyarrow.compute as pc
import pytest

from hf_assets.cache import tables
from hf_assets.cache.tables import TableFile
from hf_assets.config import parse_config
from hf_assets.data.backend_buckets import bucket_backend, write_backend_buckets
from hf_assets.data.index import build_filtered_index
from hf_assets.data.index_writer import publish, write_filtered_index
from hf_assets.data.lineage import source_fingerprint
from hf_assets.data.scan_cache import scan_cache_for
from hf_assets.data.sources import open_split
from hf_assets_tests.conftest import photo_rows, write_hub_dataset


def backend_of(tmp_path, **entry):
    base = {
        "id": "photos",
        "type": "huggingface",
        "dataset_name": "data/photos",
        "caption_column": ["caption", "metadata.caption"],
        "width_column": "width",
        "height_column": "height",
        "resolution": 128,
        "resolution_type": "pixel",
        "cache_dir": "cache",
    }
    return parse_config([{**base, **entry}], tmp_path / "dataloader.json").backends[0]


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    """60 rows of real images in 3 Parquet files, written once for the module."""
    folder = tmp_path_factory.mktemp("photos") / "photos"
    write_hub_dataset(folder, photo_rows(60), shards=3)
    return folder


@pytest.fixture
def photos(tmp_path, photo_files):
    """A test's own folder: a copy of the dataset (its config, caches and tables beside it)."""
    shutil.copytree(photo_files, tmp_path / "data" / "photos")
    return tmp_path


@pytest.fixture
def small_pieces(monkeypatch):
    """Row groups of 7 rows and batches of 5: every table is written and read in many pieces."""
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 7)
    original = TableFile.batches
    monkeypatch.setattr(TableFile, "batches", lambda self, columns=None, rows=5: original(self, columns, rows))


@pytest.mark.parametrize("workers", [1, 3], ids=["one_scanner", "three_scanners"])
@pytest.mark.parametrize("entry", [{}, {"max_num_samples": 20}, {"minimum_image_size": 400}])
def test_the_index_written_in_pieces_equals_the_index_built_at_once(photos, small_pieces, entry, workers):
    backend = backend_of(photos, **entry)
    split = open_split(backend)
    assert len(split.pieces) == 3
    expected, dropped = build_filtered_index(split, backend)
    cache = scan_cache_for(split, backend)
    written = write_filtered_index(split, backend, photos / "out", cache, workers=workers)
    assert (cache.read, cache.reused) == (3, 0)
    index = publish(photos / "out")
    assert index.read().equals(expected) and index.num_rows == expected.num_rows
    assert written.counts == dict(dropped)
    lost = written.dropped.read()
    assert lost.sort_by("row").equals(dropped.rows)  # listed in scan order, then the max_num_samples rows
    assert source_fingerprint(index.read()) == split.fingerprint  # stamped with the split it numbers


@pytest.mark.parametrize(
    "buckets",
    [
        {},
        {"crop": True, "crop_aspect": "random", "crop_aspect_buckets": [0.75, 1.0, 1.5], "crop_style": "random"},
        {"crop": True, "crop_aspect": "closest", "crop_aspect_buckets": [0.5, 1.0, 2.0]},
        {"train_batch_size": 8, "drop_small_buckets": True, "maximum_aspect_ratio": 2.5},
        {"resolution_type": "area", "resolution": 0.05, "minimum_aspect_ratio": 0.6},
    ],
)
def test_buckets_written_batch_by_batch_equal_the_table_bucketed_at_once(photos, small_pieces, monkeypatch, buckets):
    backend = backend_of(photos, **buckets)
    split = open_split(backend)
    write_filtered_index(split, backend, photos / "out")
    index = publish(photos / "out")
    expected = bucket_backend(index.read(), backend)
    monkeypatch.setattr(TableFile, "read", lambda *a, **k: pytest.fail("the whole index was read at once"))
    written = write_backend_buckets(index, backend, photos / "out", "aspect_buckets")
    monkeypatch.undo()
    table = written.file.read()
    assert table.equals(expected.table)
    assert written.counts.aspect_dropped == expected.aspect_dropped and written.undersized == expected.undersized
    counted = pc.value_counts(table.column("bucket").combine_chunks()).to_pylist()
    assert dict(written.histogram) == {c["values"]: c["counts"] for c in counted}


def test_a_piece_that_fails_its_scan_fails_the_index_and_the_pieces_scanned_beside_it_are_kept(photos):
    backend = backend_of(photos)
    split = open_split(backend)
    broken = Path(split.pieces[1].path)
    whole = broken.read_bytes()
    broken.write_bytes(whole[:4] + bytes(len(whole) - 12) + whole[-8:])  # column chunks zeroed, footer kept
    with pytest.raises(OSError):
        write_filtered_index(split, backend, photos / "out", scan_cache_for(split, backend), workers=3)
    assert not (photos / "out" / "filtered_index.staged.parquet").exists()  # nothing half-written where it belongs
    broken.write_bytes(whole)
    cache = scan_cache_for(split, backend)
    write_filtered_index(split, backend, photos / "out", cache, workers=3)
    assert cache.read == 1 and cache.reused == 2  # only the failed piece is scanned again
    expected, _ = build_filtered_index(split, backend)
    assert publish(photos / "out").read().equals(expected)


def test_pieces_scanned_ahead_are_opened_only_at_their_turn(photos, monkeypatch):
    """Scans run ahead on threads; their results are opened by the writer in split order, so however far ahead the
    scans get, no piece's cached files are held open before its turn."""
    from hf_assets.data.scan_cache import ScanCache

    opened: list[tuple[str, int]] = []
    original = ScanCache.get

    def get(self, piece, fresh=False):
        opened.append((threading.current_thread().name, piece.start))
        return original(self, piece, fresh)

    monkeypatch.setattr(ScanCache, "get", get)
    backend = backend_of(photos)
    split = open_split(backend)
    write_filtered_index(split, backend, photos / "out", scan_cache_for(split, backend), workers=3)
    main = threading.current_thread().name
    assert [start for _, start in opened] == [piece.start for piece in split.pieces]
    assert {name for name, _ in opened} == {main}
