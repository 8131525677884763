"""A `type: "aws"` backend read from a real S3 server on 127.0.0.1 (moto in server mode, through s3fs): listing,
caption files, sizes from the images' own bytes, and pieces that change only where files change."""

import logging

import numpy as np

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.encode.image_source import content_hashes, iter_images
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.s3_server import KEY_ID, SECRET, fill_bucket


def backend(tmp_path, server, bucket, **settings):
    entry = server.entry("bucket", bucket, "train/", caption_strategy="textfile", caption_encoding="cp1252", **settings)
    return parse_config([entry], tmp_path / "dataloader.json").backends[0]


def test_an_s3_folder_lists_its_images_with_caption_files_and_header_sizes(tmp_path, s3_server, caplog):
    fill_bucket(s3_server, "pictures")
    b = backend(tmp_path, s3_server, "pictures")
    with caplog.at_level(logging.DEBUG):
        split = open_split(b)
        index, dropped = build_filtered_index(split, b)
    assert split.kind == "s3_folder" and split.source == "s3://pictures/train"
    assert split.num_rows == 5  # README.md is no image; elsewhere/ is outside the prefix
    rows = {r["filename"]: r for r in index.to_pylist()}
    assert rows["cats/tabby_on_a_sofa.jpg"]["captions"] == ["a tabby cat on a sofa", "a cat indoors"]
    assert rows["dogs/corgi.jpg"]["captions"] == ["un corgi \u00e0 la plage"]  # caption_encoding for a cp1252 file
    assert (rows["cats/black_cat.png"]["width"], rows["cats/black_cat.png"]["height"]) == (200, 300)
    assert dropped["no_caption"] == 1 and dropped["unreadable_image"] == 1  # the pug has no caption file
    logged = "\n".join(r.getMessage() for r in caplog.records) + repr(b) + repr(split)
    assert SECRET not in logged


def test_filename_and_instance_prompt_captions_need_no_caption_files(tmp_path, s3_server):
    fill_bucket(s3_server, "names")
    index, _ = build_filtered_index(*_split(tmp_path, s3_server, "names", caption_strategy="filename"))
    captions = dict(zip(index["filename"].to_pylist(), index["caption"].to_pylist()))
    assert captions["cats/tabby_on_a_sofa.jpg"] == "tabby on a sofa" and len(captions) == 4
    prompt = {"caption_strategy": "instanceprompt", "instance_prompt": "sks pet"}
    index, _ = build_filtered_index(*_split(tmp_path, s3_server, "names", **prompt))
    assert set(index["caption"].to_pylist()) == {"sks pet"} and index.num_rows == 4


def _split(tmp_path, server, bucket, **settings):
    entry = server.entry("bucket", bucket, "train/", **settings)
    b = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    return open_split(b), b


def test_encoders_read_the_bytes_and_a_new_file_rereads_only_its_piece(tmp_path, s3_server, monkeypatch):
    monkeypatch.setattr("hf_assets.data.s3_folder.PIECE_BOUNDARY", 2)  # pieces of about 2 files in this small bucket
    fill_bucket(s3_server, "grow")
    b = backend(tmp_path, s3_server, "grow")
    split = open_split(b)
    rows = np.arange(split.num_rows)
    blobs = list(iter_images(split, "image", rows))
    assert all(isinstance(x, bytes) and x for x in blobs)
    memo = tmp_path / "memo"
    hashes = content_hashes(split, "image", rows, memo).to_pylist()
    assert len(set(hashes)) == 5 and all(hashes)

    for i in range(6):
        s3_server.put("grow", f"train/more/{i:03d}.jpg", encode_image(96, 64, "JPEG", seed=100 + i))
    grown = open_split(b)
    assert grown.num_rows == 11 and grown.fingerprint != split.fingerprint
    kept = {p.key for p in split.pieces} & {p.key for p in grown.pieces}
    assert kept, "pieces of unchanged files keep their identity"
    first = next(p for p in grown.pieces if p.key in kept)
    untouched = first.table.column("filename").to_pylist()[0]
    s3_server.client().delete_object(Bucket="grow", Key="train/" + untouched)  # a re-read would find nothing
    names = grown.table.column("filename").to_pylist()
    again = content_hashes(grown, "image", np.arange(grown.num_rows), memo).to_pylist()
    old = dict(zip(split.table.column("filename").to_pylist(), hashes))
    assert again[names.index(untouched)] == old[untouched]  # reused from the memo, not fetched again
    assert all(again[names.index(f"more/{i:03d}.jpg")] for i in range(6))


def test_a_wrong_bucket_or_key_is_a_clear_error_without_the_secret(tmp_path, s3_server):
    import pytest

    from hf_assets.data.split import DatasetNotFound

    fill_bucket(s3_server, "empty-prefix")
    with pytest.raises(DatasetNotFound, match="no images under s3://empty-prefix/nothing") as info:
        open_split(parse_config([s3_server.entry("b", "empty-prefix", "nothing/")], tmp_path / "d.json").backends[0])
    assert SECRET not in str(info.value) and KEY_ID not in str(info.value)


def test_the_change_sensor_sees_a_new_object_in_the_bucket(tmp_path, s3_server):
    from hf_assets.automation.changes import source_state

    fill_bucket(s3_server, "watched")
    b = backend(tmp_path, s3_server, "watched")
    state = source_state(b, hub_api=None)
    assert state["described"].endswith("files under s3://watched/train") and SECRET not in state["described"]
    assert source_state(b, hub_api=None)["source"] == state["source"]
    s3_server.put("watched", "train/new.jpg", encode_image(64, 48, "JPEG", seed=7))
    after = source_state(b, hub_api=None)
    assert after["source"] != state["source"] and "watched/train/new.jpg" in after["files"]
