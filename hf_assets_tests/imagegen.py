"""Realistic test images: real JPEG/PNG/WebP bytes with texture, optional EXIF orientation, and corrupt rows."""

import io

import numpy as np
from PIL import Image

FORMATS = ("JPEG", "PNG", "WEBP")


def pixels(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An RGB uint8 array with gradients and noise, so codecs do real work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 127 + 100 * np.sin((x + y) / 17.0 + seed)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def encode_image(
    width: int,
    height: int,
    fmt: str = "JPEG",
    seed: int = 0,
    exif_orientation: int | None = None,
    mode: str = "RGB",
    quality: int = 85,
) -> bytes:
    """Encoded bytes of a width x height image (stored size; EXIF may rotate the displayed one)."""
    img = Image.fromarray(pixels(width, height, seed))
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    kwargs = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def corrupt_bytes(seed: int = 0) -> bytes:
    """Bytes that no image codec accepts: a JPEG header followed by garbage."""
    rng = np.random.default_rng(seed)
    return b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 64, dtype=np.uint8).tobytes()


def truncated_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A JPEG cut short after its header: its size is readable, its pixels are not."""
    data = encode_image(width, height, "JPEG")
    return data[: len(data) // 3]
