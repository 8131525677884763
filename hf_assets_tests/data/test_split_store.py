"""What raw_split stores of a split and the split rebuilt from it: the same rows and columns, with no listing of
the source; a source that cannot be rebuilt (or whose local file changed) is left to be opened again."""

import os

import pyarrow.compute as pc

from hf_assets.cache.tables import load_manifest, load_table, save_table
from hf_assets.config import parse_config
from hf_assets.data.sources import open_split
from hf_assets.data.split_store import LISTING, files_table, listing, rebuild_split, split_manifest
from hf_assets_tests.imagegen import encode_image

COLUMNS = ["image", "caption", "width", "height"]


def backend_for(tmp_path, entry):
    return parse_config([entry], tmp_path / "dataloader.json").backends[0]


def stored_and_rebuilt(tmp_path, split, backend):
    """Store the split as the IO manager does (Parquet plus JSON manifest), then rebuild it from the files."""
    folder = tmp_path / "stored"
    listed = listing(split)
    if listed is not None:
        save_table(folder, LISTING, listed)
    save_table(folder, "raw_split", files_table(split), split_manifest(split))
    stored_listing = load_table(folder, LISTING) if listed is not None else None
    return rebuild_split(backend, load_manifest(folder, "raw_split"), stored_listing)


def test_a_sliced_local_parquet_split_is_rebuilt_with_the_same_rows(tmp_path, hub_dataset, photos_entry):
    backend = backend_for(tmp_path, {**photos_entry, "split": "train[3:19]"})
    split = open_split(backend)

    rebuilt = stored_and_rebuilt(tmp_path, split, backend)

    assert rebuilt is not None and rebuilt.kind == "parquet (local)"
    assert (rebuilt.fingerprint, rebuilt.num_rows, rebuilt.schema) == (split.fingerprint, 16, split.schema)
    assert [p.key for p in rebuilt.pieces] == [p.key for p in split.pieces]
    assert rebuilt.read(COLUMNS).equals(split.read(COLUMNS))
    assert rebuilt.locate([0, 15]) == split.locate([0, 15])


def test_a_changed_parquet_file_is_not_rebuilt(tmp_path, hub_dataset, photos_entry):
    backend = backend_for(tmp_path, photos_entry)
    split = open_split(backend)
    path = split.pieces[0].path
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, new identity

    assert stored_and_rebuilt(tmp_path, split, backend) is None


def test_an_image_folder_is_rebuilt_from_its_listing_without_scanning_again(tmp_path):
    images = tmp_path / "imgs"
    (images / "sub").mkdir(parents=True)
    for i, (name, w, h, fmt) in enumerate([("a.jpg", 320, 200, "JPEG"), ("sub/b.png", 96, 160, "PNG")]):
        (images / name).write_bytes(encode_image(w, h, fmt, seed=i))
        (images / name).with_suffix(".txt").write_text(f"caption {i}\nsecond line")
    entry = {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "textfile"}
    backend = backend_for(tmp_path, entry)
    split = open_split(backend)
    (images / "c.webp").write_bytes(encode_image(64, 64, "WEBP", seed=9))  # added after the scan

    rebuilt = stored_and_rebuilt(tmp_path, split, backend)

    assert rebuilt.fingerprint == split.fingerprint and rebuilt.num_rows == 2
    columns = ["filename", "image", "caption", "caption_problem"]
    assert rebuilt.read(columns).equals(split.read(columns))
    assert rebuilt.captions == split.captions and rebuilt.base_dir == split.base_dir
    assert pc.sum(pc.list_value_length(rebuilt.read(["caption"]).column("caption"))).as_py() == 4


def test_a_datasets_split_is_left_to_be_opened_again(tmp_path):
    import datasets

    from hf_assets_tests.conftest import photo_rows

    datasets.Dataset.from_list(photo_rows(6, corrupt=())).save_to_disk(str(tmp_path / "saved"))
    entry = {
        "id": "s",
        "type": "huggingface",
        "dataset_name": "saved",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "caption_column": "caption",
    }
    backend = backend_for(tmp_path, entry)
    split = open_split(backend)

    assert split.kind.startswith("datasets") and listing(split) is None
    assert stored_and_rebuilt(tmp_path, split, backend) is None


def test_a_remote_parquet_split_is_rebuilt_from_its_record_without_a_request_in_the_run_that_listed_it(
    tmp_path, hub_dataset
):
    from hf_assets_tests.data.test_remote_parquet import backend_for as remote_backend
    from hf_assets_tests.range_server import serve

    with serve(hub_dataset) as (url, traffic):
        backend = remote_backend(tmp_path, url, caption_column="caption", width_column="width", height_column="height")
        split = open_split(backend)
        folder = tmp_path / "stored"
        save_table(folder, "raw_split", files_table(split), split_manifest(split, "run-1"))
        traffic.reset()
        manifest, files = load_manifest(folder, "raw_split"), load_table(folder, "raw_split")

        assert rebuild_split(backend, manifest, None, files, "run-2") is None  # another run lists the store again
        again = rebuild_split(backend, manifest, None, files, "run-1")
        assert traffic.calls == []  # no listing, no HEAD, no footer read
        assert (again.fingerprint, again.kind, again.num_rows) == (split.fingerprint, split.kind, split.num_rows)
        assert [p.key for p in again.pieces] == [p.key for p in split.pieces]
        assert again.schema == split.schema and again.files == split.files
        columns = ["caption", "width", "height"]
        assert again.read(columns).equals(split.read(columns))  # now the data is read, by the record's footers
