"""load_pixels against Pillow step by step on real JPEG/PNG/WebP bytes, EXIF, alpha, tiles and corrupt data."""

import io
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from hf_assets.encode.images import CorruptImage, load_pixels
from hf_assets.encode.overlap import stack_host
from hf_assets.encode.vae_runner import VaeRunner
from hf_assets_tests.imagegen import corrupt_bytes, encode_image, pixels, truncated_jpeg


def reference(data: bytes, tile, resize, crop) -> np.ndarray:
    """Independent Pillow pipeline: open, exif_transpose, alpha over white, crop tile, resize, crop box."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if img.mode == "RGBA":
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    img = img.convert("RGB").crop(tile).resize(resize, Image.Resampling.LANCZOS).crop(crop)
    return np.asarray(img)


def rgba_png(width: int, height: int) -> bytes:
    """A PNG whose alpha runs from transparent to opaque across the image."""
    img = Image.fromarray(pixels(width, height, seed=5))
    img.putalpha(Image.linear_gradient("L").resize((width, height)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


CASES = [
    # (name, bytes, tile box in the oriented image, resize (w, h), crop box in the resized tile)
    ("jpeg", encode_image(320, 240, "JPEG", seed=1), (0, 0, 320, 240), (128, 96), (0, 16, 128, 80)),
    ("png", encode_image(300, 200, "PNG", seed=2), (0, 0, 300, 200), (192, 128), (32, 0, 160, 128)),
    ("webp", encode_image(256, 320, "WEBP", seed=3), (0, 0, 256, 320), (64, 80), (0, 8, 64, 72)),
    (
        "jpeg exif 6",
        encode_image(320, 200, "JPEG", seed=4, exif_orientation=6),
        (0, 0, 200, 320),
        (100, 160),
        (18, 0, 82, 128),
    ),
    (
        "png exif 8",
        encode_image(120, 90, "PNG", seed=6, exif_orientation=8),
        (0, 0, 90, 120),
        (96, 128),
        (0, 0, 96, 128),
    ),
    ("rgba png", rgba_png(200, 150), (0, 0, 200, 150), (96, 72), (16, 4, 80, 68)),
    ("composite tile 2 of 3", encode_image(600, 200, "JPEG", seed=7), (200, 0, 400, 200), (128, 128), (0, 0, 128, 128)),
    (
        "composite tile with exif 6",
        encode_image(300, 240, "PNG", seed=8, exif_orientation=6),
        (80, 0, 160, 300),
        (64, 240),
        (0, 40, 64, 200),
    ),
]


@pytest.mark.parametrize(("name", "data", "tile", "resize", "crop"), CASES, ids=[c[0] for c in CASES])
def test_matches_pillow_step_by_step(name, data, tile, resize, crop):
    out = load_pixels(data, tile, resize, crop)
    expected = reference(data, tile, resize, crop)
    assert out.dtype == np.uint8 and out.shape == (crop[3] - crop[1], crop[2] - crop[0], 3)
    np.testing.assert_array_equal(out, expected)


def test_exif_orientation_6_rotates_clockwise():
    stored = pixels(40, 30, seed=9)
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(buf, format="PNG", exif=exif.tobytes())
    np.testing.assert_array_equal(load_pixels(buf.getvalue()), np.rot90(stored, k=-1))


def test_rgba_is_composited_over_white():
    img = Image.new("RGBA", (4, 2), (10, 20, 30, 0))
    img.putpixel((0, 0), (10, 20, 30, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    out = load_pixels(buf.getvalue())
    assert out[0, 0].tolist() == [10, 20, 30] and out[1, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "LA", "I;16", "1"])
def test_other_modes_become_rgb(mode):
    img = Image.fromarray(pixels(32, 24, seed=1))
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    else:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if mode == "CMYK" else "PNG")
    out = load_pixels(buf.getvalue(), None, (16, 12))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8
    if mode == "I;16":
        gray = np.asarray(Image.fromarray(pixels(32, 24, seed=1)).convert("L").resize((16, 12), Image.LANCZOS))
        assert np.abs(out[..., 0].astype(int) - gray).max() <= 1


def test_path_and_datasets_struct_inputs(tmp_path):
    data = encode_image(64, 48, "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    expected = load_pixels(data)
    np.testing.assert_array_equal(load_pixels(path), expected)
    np.testing.assert_array_equal(load_pixels({"bytes": None, "path": str(path)}), expected)
    np.testing.assert_array_equal(load_pixels({"bytes": data, "path": None}), expected)


@pytest.mark.parametrize(
    "data", [corrupt_bytes(), truncated_jpeg(), b"", b"not an image"], ids=["garbage", "truncated", "empty", "text"]
)
def test_corrupt_bytes_raise_corrupt_image(data):
    with pytest.raises(CorruptImage, match="cannot decode image"):
        load_pixels(data, None, (32, 32))


def test_boxes_outside_the_image_raise_corrupt_image():
    data = encode_image(64, 48, "PNG")
    with pytest.raises(CorruptImage, match=r"tile box \(0, 0, 65, 48\) does not fit the 64x48 image"):
        load_pixels(data, (0, 0, 65, 48), (32, 24))
    with pytest.raises(CorruptImage, match="crop box"):
        load_pixels(data, None, (32, 24), (0, 0, 32, 25))


def test_encoder_batches_are_nchw_in_minus_one_to_one_in_the_vae_dtype():
    batch = [np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 255, np.uint8)]
    batch[0][1, 2] = (255, 0, 127)
    # the encoder's own conversion (stacked on the host, then converted on the device); any module gives the dtype
    tensor = VaeRunner(torch.nn.Linear(1, 1)).pixels(stack_host(batch, pin=False))
    assert tensor.shape == (2, 3, 4, 6) and tensor.dtype == torch.float32 and tensor.is_contiguous()
    assert tensor[0, :, 1, 2].tolist() == pytest.approx([1.0, -1.0, 127 / 127.5 - 1])
    assert tensor.min() == -1 and tensor.max() == 1
    assert VaeRunner(torch.nn.Linear(1, 1).to(torch.bfloat16)).pixels(stack_host(batch, False)).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        stack_host([np.zeros((4, 6, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)], pin=False)


def png_with_late_exif(width: int, height: int, orientation: int, seed: int = 0) -> bytes:
    """A PNG whose eXIf chunk (EXIF orientation) is written after the pixel data, just before IEND."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes().removeprefix(b"Exif\x00\x00")  # a PNG eXIf chunk holds the bare TIFF structure
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    data = encode_image(width, height, "PNG", seed=seed)
    iend = data.rindex(b"IEND") - 4  # the chunk starts with its 4-byte length
    assert data.index(b"IDAT") < iend
    return data[:iend] + chunk + data[iend:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(orientation):
    data = encode_image(48, 32, "JPEG", seed=orientation, exif_orientation=orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(load_pixels(data), expected)


def test_png_exif_chunk_after_pixel_data_is_ignored_so_scan_and_encode_agree():
    from hf_assets.data.header_sizes import image_size

    data = png_with_late_exif(60, 40, orientation=6, seed=3)
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (40, 60)  # Pillow alone would rotate
    assert image_size(data) == (60, 40)  # the header scan ignores the late chunk
    out = load_pixels(data, (0, 0, 60, 40), (30, 20), expected_size=image_size(data))
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((30, 20), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(load_pixels(data), pixels(60, 40, seed=3))


@pytest.mark.parametrize("columns", [(320, 240), (1280, 960)], ids=["image larger", "image smaller"])
def test_image_not_of_the_size_columns_size_raises_naming_the_columns(columns):
    data = encode_image(640, 480, "JPEG", seed=1)
    w, h = columns
    message = (
        f"image is 640x480 but the dataset's size columns say {w}x{h}; "
        "fix width_column/height_column or remove them to read sizes from the image headers"
    )
    with pytest.raises(CorruptImage, match=re.escape(message)):
        load_pixels(data, (0, 0, w, h), (w // 8, h // 8), expected_size=columns)


def test_expected_size_is_the_exif_oriented_size():
    data = encode_image(320, 200, "JPEG", seed=4, exif_orientation=6)  # displayed 200x320
    out = load_pixels(data, (0, 0, 200, 320), (100, 160), expected_size=(200, 320))
    np.testing.assert_array_equal(out, reference(data, (0, 0, 200, 320), (100, 160), (0, 0, 100, 160)))
    with pytest.raises(CorruptImage, match="image is 200x320 but the dataset's size columns say 320x200"):
        load_pixels(data, expected_size=(320, 200))
