"""Displayed image sizes from encoded headers (never a pixel decode), one image or a whole Arrow column."""

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from hf_assets.data.columns import ColumnTypeError
from hf_assets.progress import ProgressLog, quiet

ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
ROWS_PER_TASK = 256  # rows one pool task sizes; small enough to balance threads, big enough to amortise
# Headers (JPEG markers up to SOS, PNG chunks up to IDAT) almost always fit here; copying only this
# much keeps multi-megabyte rows cheap. A header that runs past it fails to parse and is re-read whole.
HEADER_PREFIX_BYTES = 64 * 1024

_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class UnreadableImage(ValueError):
    """Raised when Pillow cannot identify an image or read its header."""


def orientation_transpose(orientation: int | None) -> Image.Transpose | None:
    """The Pillow transpose that turns stored pixels into displayed ones; None for 1, missing or invalid."""
    return _TRANSPOSE_FOR_ORIENTATION.get(orientation)


def exif_orientation(img: Image.Image) -> int:
    """EXIF orientation (1-8) of an opened image, read without decoding pixels; 1 when absent or invalid.

    Call it right after `Image.open`, before `load()`: a PNG eXIf chunk stored after the pixel
    data only appears once pixels are decoded, and is ignored here so that sizes and encodes agree.
    """
    if img.format == "PNG" and "exif" not in img.info:
        return 1  # PngImageFile.getexif() would decode the whole image to look for a trailing chunk
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
        orientation = int(value)
    except Exception:  # noqa: BLE001 - malformed EXIF, whatever Pillow raises, does not make the pixels unreadable
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _size_from_file(fp: BinaryIO) -> tuple[int, int]:
    """Displayed (width, height) of the image in an open binary file, from its header only."""
    try:
        with Image.open(fp) as img:
            width, height = img.size
            orientation = exif_orientation(img)
    except Exception as exc:  # Pillow plugins raise many types on malformed headers; also DecompressionBombError
        reason = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise UnreadableImage(f"{type(exc).__name__}: {reason}".rstrip(": ")) from exc
    if orientation in SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def image_size(data: bytes) -> tuple[int, int]:
    """Displayed (width, height) of encoded image bytes, from the header; raises UnreadableImage."""
    if not data:
        raise UnreadableImage("empty image bytes")
    return _size_from_file(io.BytesIO(data))


def _size_from_view(view: memoryview) -> tuple[int, int]:
    """Displayed size of one Arrow row: parse a copied prefix, and the whole row only if the header is longer."""
    try:
        return _size_from_file(io.BytesIO(view[:HEADER_PREFIX_BYTES]))
    except UnreadableImage:
        if len(view) <= HEADER_PREFIX_BYTES:
            raise
    return _size_from_file(io.BytesIO(view))


def _check_image_type(kind: pa.DataType) -> None:
    """Raise TypeError unless kind is a struct with a bytes or path field, or a binary type."""
    if pa.types.is_struct(kind):
        if kind.get_field_index("bytes") < 0 and kind.get_field_index("path") < 0:
            raise ColumnTypeError(f"image struct needs a 'bytes' or 'path' field, got {kind}", setting="image_column")
    elif not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)):
        raise ColumnTypeError(
            f"images must be an Image feature (struct<bytes, path>) or binary image bytes, got {kind}; "
            "set image_column to the column holding the images",
            setting="image_column",
        )


def _image_columns(images: pa.Array) -> tuple[pa.Array | None, pa.Array | None]:
    """The bytes and path columns of an image array (parent nulls applied); either may be None."""
    _check_image_type(images.type)
    if not pa.types.is_struct(images.type):
        return images, None
    fields = [name if images.type.get_field_index(name) >= 0 else None for name in ("bytes", "path")]
    return tuple(pc.struct_field(images, name) if name else None for name in fields)


def image_value(value) -> tuple[bytes | None, str | None]:
    """(bytes, path) of one row of an image column, of the types `_check_image_type` accepts: an Image feature
    struct (a dict with bytes and/or path) or raw image bytes. Either may be None."""
    if value is None:
        return None, None
    if isinstance(value, dict):
        return value.get("bytes") or None, value.get("path") or None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value) or None, None
    raise ColumnTypeError(
        f"images must be an Image feature (struct<bytes, path>) or binary image bytes, got a "
        f"{type(value).__name__}; set image_column to the column holding the images",
        setting="image_column",
    )


def _binary_views(data: pa.Array) -> list[memoryview | None]:
    """One zero-copy memoryview per row of a binary array (None for null rows)."""
    if pa.types.is_binary_view(data.type):
        data = data.cast(pa.large_binary())
    offset_type = np.int64 if pa.types.is_large_binary(data.type) else np.int32
    _, offsets_buf, values_buf = data.buffers()
    offsets = np.frombuffer(offsets_buf, offset_type)[data.offset : data.offset + len(data) + 1].tolist()
    values = memoryview(values_buf) if values_buf is not None else memoryview(b"")
    valid = data.is_valid().to_pylist() if data.null_count else [True] * len(data)
    return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(data))]


def resolve_image_path(path: str, base_dir: Path | None) -> Path:
    """An image path as stored in the column, made absolute against base_dir when relative."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() or base_dir is None else Path(base_dir) / candidate


def _piece_sizes(piece: pa.Array, base_dir: Path | None) -> np.ndarray:
    """An (n, 2) int32 array of displayed sizes for one slice of rows; -1 marks unreadable rows."""
    sizes = np.full((len(piece), 2), -1, dtype=np.int32)
    data, paths = _image_columns(piece)
    has_bytes = data is not None and not pa.types.is_null(data.type)  # all-null bytes may infer as type null
    views = _binary_views(data) if has_bytes else [None] * len(piece)
    path_values = paths.to_pylist() if paths is not None and paths.null_count < len(paths) else None
    for row, view in enumerate(views):
        try:
            if view is not None and len(view):
                sizes[row] = _size_from_view(view)
            elif view is None and path_values is not None and path_values[row]:
                with open(resolve_image_path(path_values[row], base_dir), "rb") as fp:
                    sizes[row] = _size_from_file(fp)
        except (UnreadableImage, OSError):
            continue
    return sizes


def _default_threads(images: pa.Array | pa.ChunkedArray) -> int:
    """1 for in-memory bytes (Pillow parses headers in Python, holding the GIL); more when files are read."""
    kind = images.type
    if not pa.types.is_struct(kind) or kind.get_field_index("path") < 0:
        return 1
    reads_files = kind.get_field_index("bytes") < 0 or (pc.struct_field(images, "bytes").null_count > images.null_count)
    return min(8, os.cpu_count() or 1) if reads_files else 1


def image_sizes(
    images: pa.Array | pa.ChunkedArray,
    base_dir: Path | None = None,
    threads: int | None = None,
    progress: ProgressLog | None = None,
) -> tuple[pa.Array, pa.Array]:
    """Displayed int32 widths and heights of an image column; null where a row is null or unreadable.

    `threads` defaults to 1 when every row carries bytes (header parsing holds the GIL, so more
    threads only add contention) and to min(8, cores) when rows are read from files.
    """
    _check_image_type(images.type)
    chunks = images.chunks if isinstance(images, pa.ChunkedArray) else [images]
    pieces = [chunk.slice(start, ROWS_PER_TASK) for chunk in chunks for start in range(0, len(chunk), ROWS_PER_TASK)]
    workers = max(1, min(threads or _default_threads(images), len(pieces)))
    with (progress or quiet()).step("scan", len(images), unit="images") as step:

        def sizes_of(piece: pa.Array) -> np.ndarray:
            sizes = _piece_sizes(piece, base_dir)
            step.advance(len(piece))
            return sizes

        if workers == 1:
            results = [sizes_of(piece) for piece in pieces]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-sizes") as pool:
                results = list(pool.map(sizes_of, pieces))
    sizes = np.concatenate(results) if results else np.empty((0, 2), dtype=np.int32)
    unreadable = sizes[:, 0] < 0
    widths = pa.array(sizes[:, 0], type=pa.int32(), mask=unreadable)
    heights = pa.array(sizes[:, 1], type=pa.int32(), mask=unreadable)
    return widths, heights
