"""Change detection without Dagster: digests of a backend's config entry and of its data's identities."""

import os

import fsspec
import pytest

from hf_assets.automation.changes import (
    NAMES_SHOWN,
    config_digest,
    config_settings,
    files_digest,
    folder_files,
    fsspec_files,
    source_kind,
    what_changed,
)
from hf_assets.config import parse_config


def backend(tmp_path, **entry):
    base = {"id": "b", "type": "huggingface", "dataset_name": "user/photos", "caption_column": "caption"}
    return parse_config([{**base, **entry}], tmp_path / "dataloader.json").backends[0]


def test_a_generated_conditioning_datasets_parameters_are_in_its_config_digest(tmp_path):
    def generated(**params):
        entry = {"id": "b", "type": "huggingface", "dataset_name": "user/photos", "caption_column": "caption"}
        config = parse_config([{**entry, "conditioning": {"type": "canny", **params}}], tmp_path / "dataloader.json")
        return config.backend("b_conditioning_canny")  # its parameters are a read-only mapping

    assert config_digest(generated()) == config_digest(generated())
    assert config_digest(generated()) != config_digest(generated(low_threshold=20))


def test_any_setting_changes_the_config_digest_and_nothing_else_does(tmp_path):
    assert config_digest(backend(tmp_path)) == config_digest(backend(tmp_path))
    assert config_digest(backend(tmp_path)) != config_digest(backend(tmp_path, resolution=512))
    assert config_digest(backend(tmp_path)) != config_digest(backend(tmp_path, revision="v2"))


def test_folder_identity_follows_names_sizes_and_mtimes_not_listing_order(tmp_path):
    root = tmp_path / "shards"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train-0.parquet").write_bytes(b"x" * 10)
    (root / ".cache").mkdir()
    first = folder_files(root)
    assert list(first) == ["data/train-0.parquet"]
    (root / ".cache" / "lock").write_text("ignored")
    assert folder_files(root) == first
    assert files_digest(dict(reversed(list({**first, "b": "1|2"}.items())))) == files_digest({**first, "b": "1|2"})
    part = root / "data" / "train-0.parquet"
    part.write_bytes(b"y" * 10)  # same size, new mtime
    os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 10**9))
    assert files_digest(folder_files(root)) != files_digest(first)


def test_fsspec_listing_identity_changes_when_a_file_is_added():
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/photos/train-0.parquet", b"abc")
    first = fsspec_files("memory://bucket/photos")
    assert len(first) == 1 and fsspec_files("memory://bucket/photos") == first
    fs.pipe("/bucket/photos/train-1.parquet", b"defg")
    assert len(fsspec_files("memory://bucket/photos")) == 2
    assert files_digest(fsspec_files("memory://bucket/photos")) != files_digest(first)


def test_a_parquet_url_is_listed_as_raw_split_lists_it_and_a_rewritten_file_counts_as_a_change(tmp_path):
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from hf_assets.automation.changes import parquet_files
    from hf_assets_tests.range_server import serve

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"n": [1, 2]}), tmp_path / "data" / "train-0.parquet")
    (tmp_path / "data" / "README.md").write_text("not data")
    with serve(tmp_path) as (url, traffic):
        first = parquet_files(f"{url}/data/*.parquet")
        assert len(first) == 1 and traffic.listings() == 1  # one listing of the folder, then the file's identity
        assert parquet_files(f"{url}/data/*.parquet") == first
        (tmp_path / "data" / "README.md").write_text("edited: still not data")
        assert parquet_files(f"{url}/data/*.parquet") == first
        pq.write_table(pa.table({"n": [1, 3]}), tmp_path / "data" / "train-0.parquet")
        os.utime(tmp_path / "data" / "train-0.parquet", ns=(1, 10**18))
        assert parquet_files(f"{url}/data/*.parquet") != first


@pytest.mark.parametrize("name,kind", [("user/photos", "hub"), ("s3://bucket/photos", "fsspec"), (".", "folder")])
def test_source_kind_follows_the_dataset_name(tmp_path, name, kind):
    assert source_kind(backend(tmp_path, dataset_name=name)) == kind


def test_nothing_to_compare_with_means_no_reason():
    state = {"config": "c", "source": "s", "described": "x"}
    assert what_changed(None, state) == [] and what_changed(state, dict(state)) == []


def files_state(files: dict[str, str], where: str = "/data/imgs") -> dict:
    return {
        "config": "c",
        "settings": {},
        "source": files_digest(files),
        "where": where,
        "files": files,
        "count": len(files),
        "described": f"{len(files)} files under {where}",
    }


def test_a_files_change_names_the_files_added_changed_and_removed():
    before = files_state({"a.jpg": "10|1", "a.txt": "5|1", "b.jpg": "12|1"})
    after = files_state({"a.jpg": "10|1", "a.txt": "7|2", "c.jpg": "9|3", "d.png": "9|3"})
    assert what_changed(before, after) == [
        "files under /data/imgs: 2 added (c.jpg, d.png); 1 changed (a.txt); 1 removed (b.jpg)"
    ]


def test_many_changed_files_are_named_up_to_a_few_and_counted():
    before = files_state({})
    after = files_state({f"img{i:02d}.jpg": "1|1" for i in range(12)})
    (reason,) = what_changed(before, after)
    assert reason.startswith("files under /data/imgs: 12 added (img00.jpg, img01.jpg")
    assert reason.endswith(f"img04.jpg, … ({12 - NAMES_SHOWN} more))")


def test_a_listing_too_large_to_keep_is_reported_by_counts():
    before, after = files_state({"a": "1|1"}), files_state({"a": "1|1", "b": "1|1"})
    del before["files"], after["files"]
    assert what_changed(before, after) == ["files under /data/imgs changed (1 files before, 2 now)"]


def test_a_moved_revision_names_both_commits():
    state = {"config": "c", "settings": {}, "where": "user/photos@v1", "described": "x"}
    before, after = {**state, "source": "a" * 40, "commit": "a" * 40}, {**state, "source": "b" * 40, "commit": "b" * 40}
    assert what_changed(before, after) == ["user/photos@v1 moved from commit aaaaaaaaaaaa to bbbbbbbbbbbb"]


def test_an_edited_entry_names_each_changed_setting_with_its_old_and_new_value(tmp_path):
    old, new = backend(tmp_path), backend(tmp_path, resolution=512, revision="v2")
    before = {"config": config_digest(old), "settings": config_settings(old), "source": "s", "described": "x"}
    after = {"config": config_digest(new), "settings": config_settings(new), "source": "s", "described": "x"}
    (reason,) = what_changed(before, after)
    assert reason.startswith("its config entry changed: ")
    assert '; revision null → "v2"' in reason and "buckets.resolution " in reason and "→ 512" in reason


def test_a_credential_is_kept_and_reported_without_its_value(tmp_path):
    entry = {
        "type": "aws",
        "dataset_name": None,
        "aws_bucket_name": "pictures",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI-secret",
        "caption_strategy": "textfile",
    }
    old, new = backend(tmp_path, **entry), backend(tmp_path, **{**entry, "aws_secret_access_key": "other-secret"})
    settings = config_settings(old)
    assert settings["s3.secret"] == "(set)" and "wJalrXUtnFEMI" not in str(settings)
    before = {"config": config_digest(old), "settings": settings, "source": "s", "described": "x"}
    after = {"config": config_digest(new), "settings": config_settings(new), "source": "s", "described": "x"}
    assert what_changed(before, after) == ["its config entry changed: a credential"]
