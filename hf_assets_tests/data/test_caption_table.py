"""SimpleTuner's `parquet` caption strategy: a local folder's (or an S3 folder's) captions from one Parquet or
JSON-lines table, joined on the file name, with its fallback column and list captions."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.s3_server import fill_bucket


def folder(tmp_path, names):
    root = tmp_path / "downloads"
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(encode_image(96 + 16 * i, 80, "PNG", seed=i))
    return root


def scan(tmp_path, entry):
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    return build_filtered_index(open_split(backend), backend)


def entry(**parquet):
    return {
        "id": "concepts",
        "type": "local",
        "instance_data_dir": "downloads",
        "caption_strategy": "parquet",
        "metadata_backend": "parquet",
        "parquet": {"path": "captions.parquet", "filename_column": "id", "caption_column": "cogvlm_caption", **parquet},
    }


def test_captions_come_from_the_table_by_name_without_extension_with_fallback_and_lists(tmp_path):
    folder(tmp_path, ["1001.png", "1002.png", "sub/1003.png", "1004.png"])
    table = pa.table(
        {
            "id": pa.array(["1001", "1002", "sub/1003", "9999", "1001"]),
            "cogvlm_caption": pa.array(["a lighthouse at dusk", "", "a red barn", "unused", "a later duplicate"]),
            "tags": pa.array(["sea, light", "field, tractor", None, None, None]),
        }
    )
    pq.write_table(table, tmp_path / "captions.parquet")
    index, dropped = scan(tmp_path, entry(fallback_caption_column="tags"))
    captions = dict(zip(index["filename"].to_pylist(), index["captions"].to_pylist()))
    assert captions == {
        "1001.png": ["a lighthouse at dusk"],  # the first row of a name wins
        "1002.png": ["field, tractor"],  # an empty caption falls back
        "sub/1003.png": ["a red barn"],
    }
    assert dropped["no_caption"] == 1
    reason = dropped.rows.filter(pa.compute.equal(dropped.rows["filename"], "1004.png"))["reason"][0].as_py()
    assert reason == f"no_caption: not in the caption table {tmp_path / 'captions.parquet'}"


def test_a_jsonl_table_with_extensions_in_its_names_and_list_captions(tmp_path):
    folder(tmp_path, ["a.png", "b.png"])
    lines = [{"file": "a.png", "captions": ["one", "two"]}, {"file": "b.png", "captions": ["three"]}]
    (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    settings = {"path": "captions.jsonl", "filename_column": "file", "caption_column": "captions"}
    index, _ = scan(tmp_path, entry(identifier_includes_extension=True, **settings))
    assert index["captions"].to_pylist() == [["one", "two"], ["three"]]


def test_an_s3_folder_reads_its_caption_table_from_the_bucket(tmp_path, s3_server):
    names = fill_bucket(s3_server, "tables")
    keys = [n.rsplit(".", 1)[0] for n in names]
    body = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": keys, "text": [f"caption of {k}" for k in keys]}), body)
    s3_server.put("tables", "train/meta/captions.parquet", body.getvalue().to_pybytes())
    aws = s3_server.entry(
        "bucket",
        "tables",
        "train/",
        caption_strategy="parquet",
        parquet={"path": "train/meta/captions.parquet", "filename_column": "id", "caption_column": "text"},
    )
    index, dropped = scan(tmp_path, aws)
    assert index.num_rows == 4 and dropped["unreadable_image"] == 1 and dropped["no_caption"] == 0
    assert set(index["caption"].to_pylist()) == {f"caption of {k}" for k in keys if k != "broken"}
