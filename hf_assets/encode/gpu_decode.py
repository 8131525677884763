"""Decode JPEGs on the GPU (nvJPEG, through torchvision) and apply the bucket table's boxes there; every other image,
and any JPEG the device fails to decode, goes through Pillow (`images.load_pixels`), row by row.

Its pixels are not Pillow's (another IDCT, and an antialiased bicubic resize instead of LANCZOS), so the decode
path is part of the latent cache key (`engine_types.DECODE_PATHS`, `LatentSettings.decode`).
"""

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from hf_assets.data.header_sizes import exif_orientation
from hf_assets.encode.images import Box, CorruptImage, check_size, checked_box, load_pixels, oriented_size

DEVICE_FORMATS = {"JPEG", "MPO"}  # MPO: a camera's multi-picture JPEG; its first picture is the image
DEVICE_MODES = {"RGB", "L"}  # CMYK and YCCK JPEGs go through Pillow
# One decode call per batch: `decode(list of uint8 byte tensors, device)` -> list of uint8 (3, H, W) tensors.
Decode = Callable[[list[torch.Tensor], torch.device], list[torch.Tensor]]


@dataclass(frozen=True)
class JpegJob:
    """A JPEG left for the device: its bytes, EXIF orientation and the boxes to apply (as `load_pixels` takes)."""

    data: bytes
    orientation: int
    tile: Box | None
    resize: tuple[int, int] | None
    crop: Box | None


def prepare_decode(
    data: bytes,
    tile_box: Box | None = None,
    resize_wh: tuple[int, int] | None = None,
    crop_box: Box | None = None,
    expected_size: tuple[int, int] | None = None,
) -> "JpegJob | np.ndarray":
    """A `JpegJob` for an RGB or grey JPEG whose header fits the boxes; any other image decoded by Pillow now.

    Only the header is read here (on a decode thread); a size or box that does not fit raises `CorruptImage`
    exactly as `load_pixels` would.
    """
    try:
        with Image.open(io.BytesIO(data)) as src:
            kind, mode, stored = src.format, src.mode, src.size
            orientation = exif_orientation(src)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as error:
        raise CorruptImage(f"cannot decode image: {error}") from error
    if kind not in DEVICE_FORMATS or mode not in DEVICE_MODES:
        return load_pixels(data, tile_box, resize_wh, crop_box, expected_size)
    size = oriented_size(stored, orientation)
    if expected_size is not None:
        check_size(size, expected_size)
    tile = checked_box(tile_box, size, "tile box") if tile_box is not None else (0, 0, *size)
    resized = tuple(int(v) for v in resize_wh) if resize_wh is not None else (tile[2] - tile[0], tile[3] - tile[1])
    crop = checked_box(crop_box, resized, "crop box") if crop_box is not None else None
    return JpegJob(bytes(data), orientation, tile, resized, crop)


def torchvision_decode() -> Decode:
    """torchvision's batched nvJPEG decode (RGB), or ImportError naming the extra to install."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except Exception as error:  # ImportError, or a torchvision built for another torch
        raise ImportError(
            f"decode=nvjpeg needs torchvision built for this torch ({torch.__version__}): "
            "pip install 'hf_assets[gpu-decode]'"
        ) from error

    def decode(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
        return decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)

    return decode


class DeviceDecoder:
    """Images of one batch as uint8 (H, W, 3) tensors on `device`: JpegJobs decoded there in one call, arrays
    (already decoded by Pillow) copied there. A JPEG the device rejects is decoded by Pillow; an image that neither
    decodes comes back as its `CorruptImage`."""

    def __init__(self, device: torch.device, decode: Decode | None = None):
        self.device = device
        self.decode = decode or torchvision_decode()
        self.fallbacks = 0  # JPEGs the device could not decode, decoded by Pillow instead

    def __call__(self, items: Sequence["JpegJob | np.ndarray"]) -> list["torch.Tensor | CorruptImage"]:
        jobs = [i for i, item in enumerate(items) if isinstance(item, JpegJob)]
        decoded = dict(zip(jobs, self._decode_all([items[i] for i in jobs])))
        images: list[torch.Tensor | CorruptImage] = []
        for i, item in enumerate(items):
            if not isinstance(item, JpegJob):
                images.append(_to_device(item, self.device))
            elif isinstance(decoded[i], torch.Tensor):
                images.append(self.transform(decoded[i], item))
            else:
                images.append(self._pillow(item))
        return images

    def _decode_all(self, jobs: list[JpegJob]) -> list["torch.Tensor | Exception"]:
        """One batched decode; when it fails, each JPEG alone, so one bad file costs only itself."""
        if not jobs:
            return []
        datas = [torch.frombuffer(bytearray(job.data), dtype=torch.uint8) for job in jobs]
        try:
            return list(self.decode(datas, self.device))
        except Exception:  # noqa: BLE001 - retried one by one below
            pass
        results: list[torch.Tensor | Exception] = []
        for data in datas:
            try:
                results.append(self.decode([data], self.device)[0])
            except Exception as error:  # noqa: BLE001 - this JPEG goes through Pillow
                results.append(error)
        return results

    def _pillow(self, job: JpegJob) -> "torch.Tensor | CorruptImage":
        self.fallbacks += 1
        try:
            pixels = load_pixels(job.data, job.tile, job.resize, job.crop)
        except CorruptImage as error:
            return error
        return _to_device(pixels, self.device)

    def transform(self, chw: torch.Tensor, job: JpegJob) -> torch.Tensor:
        """Stored (3, H, W) pixels to displayed, tile-cropped, resized and cropped (H, W, 3), on their device."""
        x = orient(chw, job.orientation)
        left, top, right, bottom = job.tile
        if (left, top, right, bottom) != (0, 0, x.shape[2], x.shape[1]):
            x = x[:, top:bottom, left:right]
        if job.resize != (x.shape[2], x.shape[1]):
            x = resize(x, job.resize)
        if job.crop is not None:
            left, top, right, bottom = job.crop
            x = x[:, top:bottom, left:right]
        return x.permute(1, 2, 0)


def _to_device(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """A Pillow-decoded (H, W, 3) array on the device; through pinned memory on cuda, so the copy does not wait
    for the work already queued there."""
    if device.type != "cuda":
        return torch.from_numpy(np.require(pixels, requirements=["C", "W"])).to(device)
    host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
    host.numpy()[...] = pixels
    return host.to(device, non_blocking=True)


def orient(chw: torch.Tensor, orientation: int) -> torch.Tensor:
    """Stored (C, H, W) pixels turned as EXIF `orientation` says (the transposes of data.header_sizes, on tensors)."""
    if orientation in (2, 4, 3):
        return chw.flip({2: (2,), 4: (1,), 3: (1, 2)}[orientation])
    if orientation == 5:
        return chw.transpose(1, 2)
    if orientation == 6:
        return chw.transpose(1, 2).flip(2)
    if orientation == 7:
        return chw.transpose(1, 2).flip(1, 2)
    if orientation == 8:
        return chw.transpose(1, 2).flip(1)
    return chw


def resize(chw: torch.Tensor, size_wh: tuple[int, int]) -> torch.Tensor:
    """uint8 (C, H, W) resized to (width, height) with antialiased bicubic filtering, rounded back to uint8."""
    x = torch.nn.functional.interpolate(
        chw[None].float(), size=(size_wh[1], size_wh[0]), mode="bicubic", antialias=True, align_corners=False
    )
    return x[0].round_().clamp_(0, 255).to(torch.uint8)
