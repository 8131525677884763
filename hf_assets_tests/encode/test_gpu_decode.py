"""GPU decode: JPEGs through the device decoder (an injected stand-in here: PyPI's torchvision does not import beside
the CPU torch of CI), every other image and every failure through Pillow, row by row; the decode path keys the cache.
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from hf_assets.cache.hashing import settings_hash
from hf_assets.encode.engine_types import LatentSettings
from hf_assets.encode.gpu_decode import DeviceDecoder, JpegJob, prepare_decode
from hf_assets.encode.images import CorruptImage, load_pixels
from hf_assets_tests.imagegen import encode_image

CPU = torch.device("cpu")


def stored_pixels(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Stands in for nvJPEG: each JPEG's stored pixels (no EXIF turn), RGB, as uint8 (3, H, W) on `device`."""
    images = []
    for data in datas:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
            if img.format != "JPEG":
                raise RuntimeError("nvjpeg: not a JPEG")
            images.append(torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous().to(device))
    return images


class Rejecting:
    """A device decoder that fails every call holding one of the `bad` byte strings (a batch fails whole)."""

    def __init__(self, bad: set[bytes]):
        self.bad, self.calls = bad, []

    def __call__(self, datas, device):
        self.calls.append(len(datas))
        if any(d.numpy().tobytes() in self.bad for d in datas):
            raise RuntimeError("nvjpeg: unsupported stream")
        return stored_pixels(datas, device)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def decode(item, decoder: DeviceDecoder) -> np.ndarray:
    (image,) = decoder([item])
    if isinstance(image, Exception):
        raise image
    return image.numpy()


@pytest.mark.parametrize("orientation", [None, 3, 6, 8])
def test_a_jpeg_without_resize_is_pillows_pixels_exactly(orientation):
    data = encode_image(160, 96, "JPEG", seed=1, exif_orientation=orientation)
    shown = (96, 160) if orientation in (6, 8) else (160, 96)
    tile, crop = (4, 6, shown[0] - 2, shown[1] - 8), (3, 5, 3 + 64, 5 + 48)
    resize = (tile[2] - tile[0], tile[3] - tile[1])
    job = prepare_decode(data, tile, resize, crop, expected_size=shown)
    assert isinstance(job, JpegJob) and job.orientation == (orientation or 1)
    # the same decoder on both sides: orientation, tile and crop on the device must give Pillow's pixels
    np.testing.assert_array_equal(decode(job, DeviceDecoder(CPU, stored_pixels)), load_pixels(data, tile, resize, crop))


def test_a_resized_jpeg_is_close_to_pillows_lanczos():
    data = encode_image(640, 480, "JPEG", seed=2, exif_orientation=6)
    tile, resize, crop = (0, 40, 480, 600), (240, 280), (8, 12, 8 + 224, 12 + 256)
    device = decode(prepare_decode(data, tile, resize, crop, (480, 640)), DeviceDecoder(CPU, stored_pixels))
    pillow = load_pixels(data, tile, resize, crop)
    assert device.shape == pillow.shape == (256, 224, 3)
    assert 30 < psnr(device, pillow) < float("inf")  # antialiased bicubic, not LANCZOS: close, not equal


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_other_formats_are_decoded_by_pillow_on_the_thread(fmt):
    data = encode_image(120, 90, fmt, seed=3)
    item = prepare_decode(data, None, (60, 45), None)
    assert isinstance(item, np.ndarray)
    np.testing.assert_array_equal(item, load_pixels(data, None, (60, 45), None))
    np.testing.assert_array_equal(decode(item, DeviceDecoder(CPU, stored_pixels)), item)


def test_a_cmyk_jpeg_is_decoded_by_pillow():
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 48, 3), 200, np.uint8)).convert("CMYK").save(buf, format="JPEG")
    item = prepare_decode(buf.getvalue(), None, None, None)
    assert isinstance(item, np.ndarray) and item.shape == (32, 48, 3)


def test_a_jpeg_the_device_rejects_is_decoded_by_pillow_alone():
    datas = [encode_image(96, 64, "JPEG", seed=s) for s in range(4)]
    rejecting = Rejecting({datas[2]})
    decoder = DeviceDecoder(CPU, rejecting)
    images = decoder([prepare_decode(d, None, (48, 32), None) for d in datas])
    assert rejecting.calls == [4, 1, 1, 1, 1]  # the batch, then each JPEG alone
    assert decoder.fallbacks == 1
    for data, image in zip(datas, images):
        pillow = load_pixels(data, None, (48, 32), None)
        assert image.shape == (32, 48, 3)
        if data == datas[2]:
            np.testing.assert_array_equal(image.numpy(), pillow)  # Pillow's own pixels
        else:
            assert psnr(image.numpy(), pillow) > 30


def test_a_jpeg_neither_decodes_comes_back_as_its_error():
    whole = encode_image(64, 48, "JPEG", seed=1)
    broken = whole[: len(whole) * 2 // 3]  # a valid header, pixel data cut short
    job = prepare_decode(broken, None, None, None)
    assert isinstance(job, JpegJob)
    decoder = DeviceDecoder(CPU, Rejecting({broken}))
    good = prepare_decode(encode_image(64, 48, "JPEG", seed=0), None, None, None)
    images = decoder([good, job])
    assert isinstance(images[0], torch.Tensor) and isinstance(images[1], CorruptImage)


def test_header_problems_are_raised_before_any_decode():
    data = encode_image(64, 48, "JPEG", seed=0)
    with pytest.raises(CorruptImage, match="dataset's size columns say 60x48"):
        prepare_decode(data, None, None, None, expected_size=(60, 48))
    with pytest.raises(CorruptImage, match="crop box"):
        prepare_decode(data, None, (32, 24), (0, 0, 40, 24))
    with pytest.raises(CorruptImage, match="cannot decode"):
        prepare_decode(b"not an image", None, None, None)


def test_the_decode_path_is_part_of_the_cache_key_and_pillow_keeps_old_keys():
    pillow = LatentSettings("vae-id", "torch.float32", "torch.float32")
    nvjpeg = LatentSettings("vae-id", "torch.float32", "torch.float32", decode="nvjpeg")
    before = {"vae_identity": "vae-id", "model_dtype": "torch.float32", "latent_dtype": "torch.float32"}
    before.update(resample="lanczos", format=pillow.format)  # the fields before the decode setting existed
    assert settings_hash(pillow.key_fields()) == settings_hash(before)
    assert settings_hash(nvjpeg.key_fields()) != settings_hash(pillow.key_fields())
