"""Parquet splits are lists of files read by columns: which files, which rows, which columns, and what a change does."""

import os

import pyarrow.parquet as pq
import pytest

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index, scan_columns
from hf_assets.data.scan_cache import scan_cache_for
from hf_assets.data.sources import open_split
from hf_assets_tests.conftest import photo_rows, write_hub_dataset


def backend_for(tmp_path, entry):
    return parse_config([entry], tmp_path / "dataloader.json").backends[0]


@pytest.fixture
def reads(monkeypatch):
    """Every Parquet read of the dataset's rows: (file name, columns); footers and the scan cache are not counted."""
    seen: list[tuple[str, tuple[str, ...]]] = []
    original_groups, original_group = pq.ParquetFile.read_row_groups, pq.ParquetFile.read_row_group

    def note(parquet_file, columns) -> None:
        if "/scan/" not in str(parquet_file._source_name):
            seen.append((_name(parquet_file), tuple(columns or ())))

    def read_row_groups(self, row_groups, columns=None, **kwargs):
        note(self, columns)
        return original_groups(self, row_groups, columns=columns, **kwargs)

    def read_row_group(self, i, columns=None, **kwargs):
        note(self, columns)
        return original_group(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", read_row_groups)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", read_row_group)
    return seen


def _name(parquet_file) -> str:
    return os.path.basename(str(parquet_file._source_name))


@pytest.fixture(autouse=True)
def remember_paths(monkeypatch):
    """Let `_name` know which file a ParquetFile reads (pyarrow does not keep the path)."""
    original = pq.ParquetFile.__init__

    def init(self, source, *args, **kwargs):
        original(self, source, *args, **kwargs)
        self._source_name = source if isinstance(source, str) else getattr(source, "path", repr(source))

    monkeypatch.setattr(pq.ParquetFile, "__init__", init)


def test_hub_layout_folder_opens_as_parquet_files_with_row_counts_from_footers(tmp_path, hub_dataset, photos_entry):
    split = open_split(backend_for(tmp_path, photos_entry))
    assert split.kind == "parquet (local)"
    assert [f["rows"] for f in split.files] == [12, 12] and [f["start"] for f in split.files] == [0, 12]
    assert all(f["path"].endswith(".parquet") and f["size"] > 0 and f["identity"] for f in split.files)
    assert split.num_rows == 24


def test_opening_a_split_reads_no_rows(tmp_path, hub_dataset, photos_entry, reads):
    open_split(backend_for(tmp_path, photos_entry))
    assert reads == []


def test_a_glob_of_parquet_files_is_a_dataset(tmp_path, hub_dataset, photos_entry):
    split = open_split(
        backend_for(tmp_path, {**photos_entry, "dataset_name": "data/photos/data/train-00001-*.parquet"})
    )
    assert split.kind == "parquet (local)" and split.num_rows == 12


def test_other_splits_in_the_folder_are_not_mixed_in(tmp_path, photos_entry):
    folder = write_hub_dataset(tmp_path / "data" / "photos", photo_rows(10, corrupt=()), shards=1)
    (folder / "data" / "train-00000-of-00001.parquet").rename(folder / "data" / "test-00000-of-00001.parquet")
    write_hub_dataset(folder, photo_rows(6, corrupt=()), shards=1)
    assert open_split(backend_for(tmp_path, photos_entry)).num_rows == 6
    assert open_split(backend_for(tmp_path, {**photos_entry, "split": "test"})).num_rows == 10
    with pytest.raises(ValueError, match="split 'validation' not found.*available: test, train"):
        open_split(backend_for(tmp_path, {**photos_entry, "split": "validation"}))


@pytest.mark.parametrize(
    "split,rows,files",
    [
        ("train[:10]", range(0, 10), 1),
        ("train[14:20]", range(14, 20), 1),
        ("train[10:14]", range(10, 14), 2),
        ("train[:25%]", range(0, 6), 1),
        ("train[-5:]", range(19, 24), 1),
    ],
)
def test_slices_resolve_against_footer_row_counts_and_read_only_the_files_they_touch(
    tmp_path, hub_dataset, photos_entry, reads, split, rows, files
):
    entry = {**photos_entry, "split": split, "width_column": "width", "height_column": "height"}
    backend = backend_for(tmp_path, entry)
    opened = open_split(backend)
    assert opened.num_rows == len(rows) and len(opened.files) == files
    index, dropped = build_filtered_index(opened, backend)
    assert len({name for name, _ in reads}) == files
    # virtual names stay "{row}.jpg" numbered within the slice, as the reference numbers the loaded split
    assert set(index.column("row").to_pylist()) <= set(range(len(rows)))
    assert index.num_rows + sum(dropped.values()) == len(rows)


def test_sliced_rows_are_the_same_rows_as_in_the_whole_split(tmp_path, hub_dataset, photos_entry):
    entry = {**photos_entry, "width_column": "width", "height_column": "height"}
    whole = open_split(backend_for(tmp_path, entry)).read(["caption", "width"]).to_pylist()
    part = open_split(backend_for(tmp_path, {**entry, "split": "train[10:14]"})).read(["caption", "width"]).to_pylist()
    assert part == whole[10:14]


def test_scan_reads_only_the_columns_the_settings_need(tmp_path, hub_dataset, photos_entry, reads):
    backend = backend_for(
        tmp_path,
        {**photos_entry, "width_column": "width", "height_column": "height", "filter_func": {"collection": ["photo"]}},
    )
    split = open_split(backend)
    assert scan_columns(split, backend) == ["width", "height", "caption", "tags", "metadata", "collection"]
    build_filtered_index(split, backend)
    assert reads and all("image" not in columns and "quality_assessment" not in columns for _, columns in reads)


def test_without_size_columns_the_image_column_is_read_row_group_by_row_group(tmp_path, photos_entry, reads):
    folder = tmp_path / "data" / "photos"
    (folder / "data").mkdir(parents=True)
    import datasets

    rows = photo_rows(40)
    ds = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"), batch_size=10)  # 4 row groups
    backend = backend_for(tmp_path, photos_entry)
    split = open_split(backend)
    assert split.pieces[0].group_rows() == [10, 10, 10, 10]
    from hf_assets.data import index as index_module

    index_module_rows = index_module.IMAGE_BATCH_ROWS
    try:
        index_module.IMAGE_BATCH_ROWS = 10
        index, dropped = build_filtered_index(split, backend)
    finally:
        index_module.IMAGE_BATCH_ROWS = index_module_rows
    image_reads = [columns for _, columns in reads if "image" in columns]
    assert len(image_reads) == 4  # one row group at a time, never the whole column
    assert dropped["unreadable_image"] == 1 and index.num_rows + sum(dropped.values()) == 40


def test_fingerprint_changes_when_any_file_changes(tmp_path, hub_dataset, photos_entry):
    backend = backend_for(tmp_path, photos_entry)
    before = open_split(backend).fingerprint
    assert open_split(backend).fingerprint == before
    shard = hub_dataset / "data" / "train-00001-of-00002.parquet"
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert open_split(backend).fingerprint != before


def test_appending_a_shard_rescans_only_that_shard(tmp_path, hub_dataset, photos_entry, reads):
    backend = backend_for(tmp_path, photos_entry)
    split = open_split(backend)
    cache = scan_cache_for(split, backend)
    first, _ = build_filtered_index(split, backend, cache)
    assert cache.read == 2 and cache.reused == 0

    extra = photo_rows(30, corrupt=())[24:]
    write_hub_dataset(tmp_path / "extra", extra, shards=1)
    new_shard = hub_dataset / "data" / "train-00002-of-00002.parquet"
    (tmp_path / "extra" / "data" / "train-00000-of-00001.parquet").rename(new_shard)
    reads.clear()
    grown = open_split(backend)
    cache = scan_cache_for(grown, backend)
    second, dropped = build_filtered_index(grown, backend, cache)

    assert cache.read == 1 and cache.reused == 2
    assert {name for name, _ in reads} == {new_shard.name}
    assert second.slice(0, first.num_rows).to_pylist() == first.to_pylist()
    added = second.column("row").to_pylist()[first.num_rows :]
    assert added and set(added) <= set(range(24, 30))
    assert second.num_rows + sum(dropped.values()) == 30


def test_a_changed_setting_rescans_and_prune_drops_stale_entries(tmp_path, hub_dataset, photos_entry):
    backend = backend_for(tmp_path, photos_entry)
    split = open_split(backend)
    build_filtered_index(split, backend, scan_cache_for(split, backend))
    strict = backend_for(tmp_path, {**photos_entry, "filter_func": {"collection": ["photo"]}})
    cache = scan_cache_for(split, strict)
    index, dropped = build_filtered_index(split, strict, cache)
    assert cache.read == 2 and dropped["collection"] > 0
    # kept rows, dropped rows and counts per file: the unfiltered entries go, the strict ones stay
    assert cache.prune() == 6 and len(list(cache.directory.glob("*.parquet"))) == 4
