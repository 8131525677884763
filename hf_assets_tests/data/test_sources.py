"""Opening a backend's split: hub-style folders, slices, save_to_disk, image folders, and clear failures."""

import socket

import datasets
import pytest

from hf_assets.config import parse_config
from hf_assets.data.columns import MissingColumn
from hf_assets.data.sources import DatasetNotFound, open_split
from hf_assets_tests.conftest import photo_rows
from hf_assets_tests.imagegen import encode_image


def backend_for(tmp_path, entry):
    return parse_config([entry], tmp_path / "dataloader.json").backends[0]


def test_parquet_folder_loads_with_image_column_undecoded(tmp_path, hub_dataset, photos_entry):
    split = open_split(backend_for(tmp_path, photos_entry))
    assert split.num_rows == 24
    image_type = split.table.schema.field("image").type
    assert image_type.get_field_index("bytes") >= 0 and image_type.get_field_index("path") >= 0
    assert split.fingerprint and split.source.endswith("data/photos")


def test_split_slice_syntax_loads_a_subset(tmp_path, hub_dataset, photos_entry):
    split = open_split(backend_for(tmp_path, {**photos_entry, "split": "train[:10]"}))
    assert split.num_rows == 10


def test_save_to_disk_folder_loads_with_slice(tmp_path):
    ds = datasets.Dataset.from_list(photo_rows(12, corrupt=()))
    ds = ds.cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "saved"))
    entry = {
        "id": "s",
        "type": "huggingface",
        "dataset_name": "saved",
        "split": "train[2:7]",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "caption_column": "caption",
    }
    split = open_split(backend_for(tmp_path, entry))
    assert split.num_rows == 5
    assert split.table.column("width").to_pylist() == ds["width"][2:7]


def test_missing_dataset_fails_fast_naming_it_and_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = {
        "id": "gone",
        "type": "huggingface",
        "dataset_name": "nobody/missing-set",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
    }
    connections = []  # offline, nothing is tried on the network, so nothing is retried for ~23 s

    def record(sock, address):
        connections.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", record)
    with pytest.raises(DatasetNotFound) as info:
        open_split(backend_for(tmp_path, entry))
    message = str(info.value)
    assert connections == []
    assert "backend 'gone'" in message and "nobody/missing-set" in message and "Hub" in message
    assert "\n" not in message


def test_missing_configured_column_lists_existing_columns(tmp_path, hub_dataset, photos_entry):
    with pytest.raises(MissingColumn) as info:
        open_split(backend_for(tmp_path, {**photos_entry, "caption_column": "captoin"}))
    message = str(info.value)
    assert "captoin" in message and "caption" in message and "metadata.caption" in message


def test_nested_caption_path_counts_as_existing_column(tmp_path, hub_dataset, photos_entry):
    split = open_split(backend_for(tmp_path, {**photos_entry, "caption_column": "metadata.caption"}))
    assert split.num_rows == 24


def test_local_folder_lists_images_sorted_with_sidecar_captions(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    (root / "b.png").write_bytes(encode_image(40, 30, "PNG"))
    (root / "b.txt").write_text("  a blue square \n")
    (root / "sub" / "a.webp").write_bytes(encode_image(30, 40, "WEBP"))
    (root / "notes.md").write_text("not an image")
    entry = {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "textfile"}
    split = open_split(backend_for(tmp_path, entry))
    assert split.table.column("filename").to_pylist() == ["b.png", "sub/a.webp"]
    assert split.table.column("caption").to_pylist() == [["  a blue square "], None]  # a variant per line


def test_local_filename_strategy_uses_the_stem(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "red_fox_in_snow.jpg").write_bytes(encode_image(40, 30))
    entry = {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "filename"}
    assert open_split(backend_for(tmp_path, entry)).table.column("caption").to_pylist() == [["red fox in snow"]]


def test_local_fingerprint_changes_when_a_caption_changes(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "x.jpg").write_bytes(encode_image(40, 30))
    (root / "x.txt").write_text("one")
    backend = backend_for(
        tmp_path, {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "textfile"}
    )
    before = open_split(backend).fingerprint
    (root / "x.txt").write_text("two")
    assert open_split(backend).fingerprint != before


def test_missing_local_folder_is_a_clear_error(tmp_path):
    backend = backend_for(
        tmp_path, {"id": "loc", "type": "local", "instance_data_dir": "nope", "caption_strategy": "textfile"}
    )
    with pytest.raises(DatasetNotFound, match="instance_data_dir"):
        open_split(backend)


def test_each_layout_says_which_path_opened_it(tmp_path, hub_dataset, photos_entry):
    assert open_split(backend_for(tmp_path, photos_entry)).kind == "parquet (local)"
    ds = datasets.Dataset.from_list(photo_rows(4, corrupt=())).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "saved"))
    saved = {**photos_entry, "id": "s", "dataset_name": "saved"}
    assert open_split(backend_for(tmp_path, saved)).kind == "datasets (save_to_disk)"
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x.jpg").write_bytes(encode_image(40, 30))
    local = {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "filename"}
    split = open_split(backend_for(tmp_path, local))
    assert split.kind == "image_folder" and split.name_column == "filename"


def test_local_folder_is_just_another_source_and_the_index_never_asks_the_backend_type():
    import inspect

    from hf_assets.data import buckets, index, local_folder

    assert "hf_assets.data.sources" not in inspect.getsource(local_folder)
    assert all("backend.type" not in inspect.getsource(module) for module in (index, buckets))
