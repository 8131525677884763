"""Caption sidecars: UTF-8 with any BOM stripped; other encodings only when declared, else dropped with a reason."""

import codecs

import pytest

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sidecars import decode_caption
from hf_assets.data.sources import open_split
from hf_assets_tests.imagegen import encode_image

CAFE = "un café à Noël"


@pytest.mark.parametrize(
    "bom,encoding",
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
    ],
)
def test_a_byte_order_mark_names_the_encoding_and_is_stripped(bom, encoding):
    caption = decode_caption(bom + CAFE.encode(encoding))
    assert caption.text == CAFE and caption.problem is None


def test_latin1_without_a_declared_encoding_gives_no_text_and_a_reason_naming_the_byte():
    caption = decode_caption(CAFE.encode("latin-1"), name="caption file 'a.txt'")
    assert caption.text is None
    assert caption.problem.startswith("caption file 'a.txt' is not UTF-8 (byte 0xe9 at offset 6)")
    assert "caption_encoding" in caption.problem


def test_a_declared_encoding_decodes_what_utf8_cannot_and_never_alters_utf8():
    assert decode_caption(CAFE.encode("cp1252"), "cp1252").text == CAFE
    assert decode_caption(CAFE.encode("utf-8"), "cp1252").text == CAFE  # valid UTF-8 is read as UTF-8


def test_bytes_the_declared_encoding_cannot_decode_either_are_reported():
    caption = decode_caption(b"caf\xe9 \x81", "cp1252")
    assert caption.text is None and "neither UTF-8" in caption.problem and "cp1252" in caption.problem


def local_index(tmp_path, **settings):
    root = tmp_path / "imgs"
    root.mkdir(exist_ok=True)
    for i, (name, data) in enumerate(
        [("bom", codecs.BOM_UTF8 + b"a red bike"), ("latin", CAFE.encode("latin-1")), ("plain", b"a dog")]
    ):
        (root / f"{name}.jpg").write_bytes(encode_image(256, 192, seed=i))
        (root / f"{name}.txt").write_bytes(data)
    entry = {"id": "loc", "type": "local", "instance_data_dir": "imgs", "caption_strategy": "textfile", **settings}
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    return build_filtered_index(open_split(backend), backend)


def test_a_local_folder_drops_an_undecodable_sidecar_with_its_reason_in_the_dropped_rows(tmp_path):
    index, dropped = local_index(tmp_path)
    assert dict(zip(index.column("filename").to_pylist(), index.column("caption").to_pylist())) == {
        "bom.jpg": "a red bike",
        "plain.jpg": "a dog",
    }
    assert dropped["no_caption"] == 1
    (row,) = dropped.rows.to_pylist()
    assert row["filename"] == "latin.jpg" and row["row"] == 1
    assert row["reason"].startswith("no_caption: caption file 'latin.txt' is not UTF-8 (byte 0xe9")


def test_caption_encoding_in_the_config_reads_the_latin1_sidecar(tmp_path):
    index, dropped = local_index(tmp_path, caption_encoding="latin-1")
    assert CAFE in index.column("caption").to_pylist() and dropped.rows.num_rows == 0


def test_an_unknown_caption_encoding_is_refused_by_the_loader(tmp_path):
    entry = {
        "id": "loc",
        "type": "local",
        "instance_data_dir": "imgs",
        "caption_strategy": "textfile",
        "caption_encoding": "latin-9000",
    }
    with pytest.raises(ValueError, match="caption_encoding.*text encoding"):
        parse_config([entry], tmp_path / "dataloader.json")
