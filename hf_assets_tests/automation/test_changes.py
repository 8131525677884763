"""Change detection without Dagster: digests of a backend's config entry and of its data's identities."""

import os

import fsspec
import pytest

from hf_assets.automation.changes import config_digest, folder_identities, fsspec_identities, source_kind, what_changed
from hf_assets.config import parse_config


def backend(tmp_path, **entry):
    base = {"id": "b", "type": "huggingface", "dataset_name": "user/photos", "caption_column": "caption"}
    return parse_config([{**base, **entry}], tmp_path / "dataloader.json").backends[0]


def test_any_setting_changes_the_config_digest_and_nothing_else_does(tmp_path):
    assert config_digest(backend(tmp_path)) == config_digest(backend(tmp_path))
    assert config_digest(backend(tmp_path)) != config_digest(backend(tmp_path, resolution=512))
    assert config_digest(backend(tmp_path)) != config_digest(backend(tmp_path, revision="v2"))


def test_folder_identity_follows_names_sizes_and_mtimes_not_listing_order(tmp_path):
    root = tmp_path / "shards"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train-0.parquet").write_bytes(b"x" * 10)
    (root / ".cache").mkdir()
    first = folder_identities(root)
    assert first[1] == 1
    (root / ".cache" / "lock").write_text("ignored")
    assert folder_identities(root) == first
    part = root / "data" / "train-0.parquet"
    part.write_bytes(b"y" * 10)  # same size, new mtime
    os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 10**9))
    assert folder_identities(root)[0] != first[0]


def test_fsspec_listing_identity_changes_when_a_file_is_added():
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/photos/train-0.parquet", b"abc")
    first = fsspec_identities("memory://bucket/photos")
    assert first[1] == 1 and fsspec_identities("memory://bucket/photos") == first
    fs.pipe("/bucket/photos/train-1.parquet", b"defg")
    assert fsspec_identities("memory://bucket/photos")[1] == 2
    assert fsspec_identities("memory://bucket/photos")[0] != first[0]


@pytest.mark.parametrize("name,kind", [("user/photos", "hub"), ("s3://bucket/photos", "fsspec"), (".", "folder")])
def test_source_kind_follows_the_dataset_name(tmp_path, name, kind):
    assert source_kind(backend(tmp_path, dataset_name=name)) == kind


def test_nothing_to_compare_with_means_no_reason():
    state = {"config": "c", "source": "s", "described": "x"}
    assert what_changed(None, state) == [] and what_changed(state, dict(state)) == []
    assert what_changed(state, {**state, "config": "d"}) == ["its config entry changed"]
