"""Header-only image sizes: formats, EXIF orientation, broken rows, and every Arrow column shape."""

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageFile, ImageOps

from hf_assets.data import header_sizes
from hf_assets.data.header_sizes import (
    HEADER_PREFIX_BYTES,
    UnreadableImage,
    image_size,
    image_sizes,
    orientation_transpose,
)
from hf_assets_tests.imagegen import FORMATS, corrupt_bytes, encode_image, pixels, truncated_jpeg

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SHAPES = [(640, 480), (333, 777), (1920, 64), (1, 1), (1023, 1024)]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries a few bytes of bogus pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x00" * 16) + chunk(b"IEND", b"")


def image_column(rows: list[dict | None]) -> pa.StructArray:
    """The Arrow storage of a `datasets.Image(decode=False)` column."""
    return pa.array(rows, type=IMAGE_STRUCT)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("width,height", SHAPES)
def test_size_of_jpeg_png_webp_is_width_then_height(fmt, width, height):
    assert image_size(encode_image(width, height, fmt, seed=width)) == (width, height)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_5_to_8_swap_width_and_height(fmt, orientation):
    size = image_size(encode_image(120, 50, fmt, exif_orientation=orientation))
    assert size == ((50, 120) if orientation >= 5 else (120, 50))


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_out_of_range_exif_orientation_counts_as_upright(orientation):
    assert image_size(encode_image(120, 50, "JPEG", exif_orientation=orientation)) == (120, 50)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_orientation_transpose_matches_pillow_exif_transpose(orientation):
    stored = Image.open(io.BytesIO(encode_image(37, 21, "PNG", seed=orientation, exif_orientation=orientation)))
    stored.load()
    ours = np.asarray(stored.transpose(orientation_transpose(orientation)))
    assert np.array_equal(ours, np.asarray(ImageOps.exif_transpose(stored)))
    assert ours.shape[:2][::-1] == image_size(encode_image(37, 21, "PNG", exif_orientation=orientation))


@pytest.mark.parametrize("orientation", [1, None, 0, 9])
def test_orientation_transpose_is_none_when_upright_or_missing(orientation):
    assert orientation_transpose(orientation) is None


@pytest.mark.parametrize(
    "data",
    [corrupt_bytes(0), corrupt_bytes(7), b"", b"not an image at all", np.arange(300, dtype=np.uint8).tobytes()],
    ids=["jpeg-soi-then-garbage", "jpeg-soi-then-garbage-2", "empty", "text", "byte-ramp"],
)
def test_bytes_pillow_cannot_identify_raise_unreadable_image(data):
    with pytest.raises(UnreadableImage) as excinfo:
        image_size(data)
    assert isinstance(excinfo.value, ValueError) and str(excinfo.value)


def test_truncated_jpeg_with_intact_header_still_gives_its_size():
    data = truncated_jpeg(640, 480)
    assert image_size(data) == (640, 480)
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()  # the pixels really are gone


def test_jpeg_cut_inside_its_header_is_unreadable():
    data = encode_image(640, 480, "JPEG")
    with pytest.raises(UnreadableImage):
        image_size(data[: data.find(b"\xff\xc4") + 4])  # ends inside the first Huffman table


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("orientation", [None, 6])
def test_image_size_never_decodes_pixels(monkeypatch, fmt, orientation):
    decodes = []

    def refuse_to_decode(self):
        decodes.append(self.format)
        raise AssertionError("image_size decoded pixels")

    data = encode_image(300, 200, fmt, exif_orientation=orientation)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)
    monkeypatch.setattr(Image.Image, "load", refuse_to_decode)
    assert image_size(data) == ((200, 300) if orientation else (300, 200))
    assert decodes == []


def test_huge_declared_png_is_sized_from_its_header_alone():
    data = png_header_only(9000, 9000)  # 243 MB of RGB if decoded; the file is 80 bytes
    assert len(data) < 100
    assert image_size(data) == (9000, 9000)


def test_decompression_bomb_is_unreadable():
    with pytest.raises(UnreadableImage, match="DecompressionBomb"):
        image_size(png_header_only(40000, 40000))


def test_header_longer_than_the_copied_prefix_is_read_whole():
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels(64, 48)).save(buf, "JPEG", exif=exif.tobytes(), icc_profile=bytes(3 * HEADER_PREFIX_BYTES))
    data = buf.getvalue()
    assert data.find(b"\xff\xc0") > HEADER_PREFIX_BYTES  # the frame header lies past the prefix
    widths, heights = image_sizes(pa.array([data], type=pa.binary()))
    assert (widths.to_pylist(), heights.to_pylist()) == ([48], [64])


def test_struct_column_with_bytes_gives_int32_displayed_sizes():
    shapes_and_formats = zip(SHAPES, FORMATS * 2)
    rows = [{"bytes": encode_image(w, h, fmt), "path": None} for (w, h), fmt in shapes_and_formats]
    rows.append({"bytes": encode_image(90, 30, "JPEG", exif_orientation=8), "path": "x.jpg"})
    widths, heights = image_sizes(image_column(rows))
    assert widths.type == pa.int32() and heights.type == pa.int32()
    assert list(zip(widths.to_pylist(), heights.to_pylist())) == SHAPES + [(30, 90)]


def test_struct_column_with_path_only_reads_files_relative_to_base_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(encode_image(200, 100, "PNG"))
    (tmp_path / "b.jpg").write_bytes(encode_image(64, 96, "JPEG", exif_orientation=6))
    rows = [{"bytes": None, "path": "sub/a.png"}, {"bytes": None, "path": "b.jpg"}]
    widths, heights = image_sizes(image_column(rows), base_dir=tmp_path)
    assert (widths.to_pylist(), heights.to_pylist()) == ([200, 96], [100, 64])


def test_path_column_whose_bytes_field_inferred_as_null_type_is_read(tmp_path):
    (tmp_path / "c.png").write_bytes(encode_image(33, 44, "PNG"))
    column = pa.array([{"bytes": None, "path": "c.png"}])  # pyarrow infers struct<bytes: null, path: string>
    widths, heights = image_sizes(column, base_dir=tmp_path)
    assert (widths.to_pylist(), heights.to_pylist()) == ([33], [44])


def test_absolute_paths_ignore_base_dir(tmp_path):
    target = tmp_path / "abs.webp"
    target.write_bytes(encode_image(50, 70, "WEBP"))
    widths, heights = image_sizes(image_column([{"bytes": None, "path": str(target)}]), base_dir=tmp_path / "elsewhere")
    assert (widths.to_pylist(), heights.to_pylist()) == ([50], [70])


def test_missing_or_unreadable_files_give_null_sizes(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(corrupt_bytes(3))
    rows = [{"bytes": None, "path": "missing.jpg"}, {"bytes": None, "path": "bad.jpg"}, {"bytes": None, "path": None}]
    widths, heights = image_sizes(image_column(rows), base_dir=tmp_path)
    assert widths.null_count == heights.null_count == 3


def test_bytes_win_over_path_when_both_are_set(tmp_path):
    (tmp_path / "other.jpg").write_bytes(encode_image(10, 10, "JPEG"))
    rows = [{"bytes": encode_image(80, 40, "PNG"), "path": "other.jpg"}]
    widths, heights = image_sizes(image_column(rows), base_dir=tmp_path)
    assert (widths.to_pylist(), heights.to_pylist()) == ([80], [40])


@pytest.mark.parametrize("binary_type", [pa.binary(), pa.large_binary(), pa.binary_view()], ids=str)
def test_plain_binary_columns_are_sized_like_struct_columns(binary_type):
    data = [encode_image(128, 72, "JPEG"), None, corrupt_bytes(1), encode_image(72, 128, "WEBP", exif_orientation=5)]
    widths, heights = image_sizes(pa.array(data, type=binary_type))
    assert widths.to_pylist() == [128, None, None, 128]
    assert heights.to_pylist() == [72, None, None, 72]


def test_null_images_and_corrupt_rows_give_null_sizes_without_stopping_the_scan():
    good = encode_image(64, 48, "JPEG")
    rows = [
        None,
        {"bytes": corrupt_bytes(2), "path": None},
        {"bytes": truncated_jpeg(64, 48), "path": None},
        {"bytes": b"", "path": None},
        {"bytes": good, "path": None},
    ]
    widths, heights = image_sizes(image_column(rows))
    assert widths.to_pylist() == [None, None, None, None, 64]
    assert heights.to_pylist() == [None, None, None, None, 48]


def test_null_struct_rows_are_null_even_when_their_child_holds_bytes():
    children = [pa.array([encode_image(32, 16, "PNG")] * 2, type=pa.binary()), pa.array([None, None], type=pa.string())]
    column = pa.StructArray.from_arrays(children, names=["bytes", "path"], mask=pa.array([True, False]))
    widths, _ = image_sizes(column)
    assert widths.to_pylist() == [None, 32]


def test_chunked_array_of_many_rows_keeps_row_order_across_threads():
    rng = np.random.default_rng(0)
    blobs = []
    for i in range(1200):
        if i % 97 == 0:
            blobs.append(corrupt_bytes(i))
        elif i % 89 == 0:
            blobs.append(None)
        else:
            w, h = (int(v) for v in rng.integers(1, 48, 2))
            blobs.append(encode_image(w, h, FORMATS[i % 3], seed=i, exif_orientation=int(rng.integers(1, 9))))
    cuts = [0, 1, 300, 301, 777, 1200]
    chunks = [
        image_column([{"bytes": b, "path": None} if b is not None else None for b in blobs[a:b]])
        for a, b in zip(cuts, cuts[1:])
    ]
    widths, heights = image_sizes(pa.chunked_array(chunks, type=IMAGE_STRUCT), threads=4)
    expected = []
    for b in blobs:
        try:
            expected.append(image_size(b) if b is not None else (None, None))
        except UnreadableImage:
            expected.append((None, None))
    assert list(zip(widths.to_pylist(), heights.to_pylist())) == expected
    assert widths.null_count == sum(b is None or i % 97 == 0 for i, b in enumerate(blobs))


def test_sliced_arrays_are_read_at_their_offset():
    column = pa.array([encode_image(10 + i, 20 + i, "PNG") for i in range(6)], type=pa.binary())
    widths, heights = image_sizes(column.slice(2, 3))
    assert (widths.to_pylist(), heights.to_pylist()) == ([12, 13, 14], [22, 23, 24])


def test_datasets_image_feature_storage_is_accepted():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {
            "image": [
                {"bytes": encode_image(300, 150, "JPEG", exif_orientation=6), "path": None},
                {"bytes": encode_image(64, 64, "PNG"), "path": None},
            ]
        },
        features=datasets.Features({"image": datasets.Image(decode=False)}),
    )
    widths, heights = image_sizes(ds.data.column("image"))
    assert (widths.to_pylist(), heights.to_pylist()) == ([150, 64], [300, 64])


def test_empty_column_gives_empty_int32_arrays():
    widths, heights = image_sizes(pa.array([], type=IMAGE_STRUCT))
    assert len(widths) == len(heights) == 0 and widths.type == pa.int32()


@pytest.mark.parametrize(
    "column",
    [pa.array([1, 2]), pa.array([{"url": "x"}]), pa.array([], type=pa.string())],
    ids=["int", "struct-without-bytes", "empty-string"],
)
def test_columns_that_hold_no_images_raise_type_error(column):
    with pytest.raises(TypeError):
        image_sizes(column)


def test_default_threads_read_files_in_parallel_and_keep_bytes_on_one_thread(tmp_path, monkeypatch):
    pool_sizes = []

    def recording_pool(max_workers, **kwargs):
        pool_sizes.append(max_workers)
        return ThreadPoolExecutor(max_workers, **kwargs)

    monkeypatch.setattr(header_sizes, "ROWS_PER_TASK", 2)
    monkeypatch.setattr(header_sizes.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(header_sizes, "ThreadPoolExecutor", recording_pool)
    for i in range(8):
        (tmp_path / f"{i}.jpg").write_bytes(encode_image(20 + i, 10, "JPEG"))
    from_files = image_column([{"bytes": None, "path": f"{i}.jpg"} for i in range(8)])
    from_bytes = image_column([{"bytes": encode_image(20 + i, 10, "JPEG"), "path": None} for i in range(8)])
    assert image_sizes(from_files, base_dir=tmp_path)[0].to_pylist() == list(range(20, 28))
    assert image_sizes(from_bytes)[0].to_pylist() == list(range(20, 28))
    assert pool_sizes == [4]  # the file column used a pool of 4; the bytes column ran inline
