"""Decode an image and apply its tile box, resize and crop box exactly as the bucket table says."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from hf_assets.data.header_sizes import SWAPPING_ORIENTATIONS, exif_orientation, orientation_transpose

Box = tuple[int, int, int, int]
WHITE = (255, 255, 255)


class CorruptImage(ValueError):
    """The bytes do not decode to an image, its size is not the dataset's, or the stored boxes do not fit it."""


def load_pixels(
    data: bytes | str | Path | dict,
    tile_box: Box | None = None,
    resize_wh: tuple[int, int] | None = None,
    crop_box: Box | None = None,
    expected_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """uint8 (H, W, 3): decode, EXIF-orient, RGB (alpha over white), crop tile, LANCZOS resize, crop box."""
    # Boxes are (left, top, right, bottom): tile_box in the oriented full image, crop_box in the resized tile.
    # The orientation is read from the header before decoding, exactly as data/header_sizes.py reads it for the scan
    # (a PNG eXIf chunk after the pixel data is ignored by both), so the boxes and the pixels agree.
    # expected_size: the oriented (width, height) the boxes were computed from (the dataset's size columns);
    # an image of another size raises CorruptImage instead of being cropped to the wrong region.
    try:
        with Image.open(_as_stream(data)) as src:
            orientation = exif_orientation(src)
            if expected_size is not None:  # the header size is the decoded size: check before decoding
                check_size(oriented_size(src.size, orientation), expected_size)
            src.load()
            transpose = orientation_transpose(orientation)
            img = src.transpose(transpose) if transpose is not None else src.copy()  # outlives closing src
    except CorruptImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as error:
        raise CorruptImage(f"cannot decode image: {error}") from error
    img = to_rgb(img)
    if tile_box is not None and tuple(tile_box) != (0, 0) + img.size:
        img = img.crop(checked_box(tile_box, img.size, "tile box"))
    if resize_wh is not None and tuple(resize_wh) != img.size:
        img = img.resize(tuple(int(v) for v in resize_wh), Image.Resampling.LANCZOS)
    if crop_box is not None and tuple(crop_box) != (0, 0) + img.size:
        img = img.crop(checked_box(crop_box, img.size, "crop box"))
    return np.asarray(img, dtype=np.uint8)


def _as_stream(data) -> io.BytesIO | str:
    """A file-like object or path for Image.open: bytes, a path, or a datasets Image struct dict."""
    if isinstance(data, dict):
        data = data.get("bytes") or data.get("path")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data))
    if isinstance(data, (str, Path)):
        return str(data)
    raise CorruptImage(f"no image data (got {type(data).__name__})")


def oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The displayed (width, height) of a stored size under an EXIF orientation."""
    return (size[1], size[0]) if orientation in SWAPPING_ORIENTATIONS else (size[0], size[1])


def check_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """CorruptImage when the oriented image size is not the size the dataset's columns give."""
    w, h = (int(v) for v in expected)
    if (w, h) != tuple(size):
        raise CorruptImage(
            f"image is {size[0]}x{size[1]} but the dataset's size columns say {w}x{h}; "
            "fix width_column/height_column or remove them to read sizes from the image headers"
        )


def checked_box(box, size: tuple[int, int], what: str) -> Box:
    """The box as ints, or CorruptImage when it leaves the image (the metadata does not match the bytes)."""
    left, top, right, bottom = (int(v) for v in box)
    if not (0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]):
        raise CorruptImage(f"{what} {(left, top, right, bottom)} does not fit the {size[0]}x{size[1]} image")
    return left, top, right, bottom


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB image: transparency composited over white, 16-bit and float modes scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        arr = arr / 257.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else arr
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
