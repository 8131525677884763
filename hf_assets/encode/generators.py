"""Conditioning images generated from a source sample's pixels: edges, degradations, masks, SDR proxies.

Each generator maps the exact pixels the encoder gets for the source sample (decoded, oriented, tiled, resized and
cropped: uint8 (H, W, 3)) to an image of the same size, so a generated sample is aligned with its source pixel for
pixel. Every random choice comes from a generator seeded by (source backend id, sample, parameters) (`sample_rng`),
so a rerun reproduces it and a changed parameter changes only its own dataset; parameters that only change how a draw
is shown (a mask's output mode) are left out of the seed, so two datasets of one source can share their masks.
Parameter names and defaults are SimpleTuner's (`hf_assets.config.conditioning_generators`).
Depth needs a model: `encode.depth`.

Edge detector: OpenCV's `cv2.Canny` (opencv-python-headless). It is the detector ControlNet canny models are trained
and used with (diffusers' and SimpleTuner's examples call `cv2.Canny(image, 100, 200)`), so `low_threshold` and
`high_threshold` mean what a user's inference script means by them; scikit-image's `feature.canny` smooths first and
takes thresholds on another scale. Measured here: the headless wheel is 64 MB (173 MB installed) and imports in
0.02 s; scikit-image with scipy is 50 MB of wheels (180 MB installed) and imports in 0.4 s. OpenCV also gives the
distance transform that feathers the masks (`encode.masks`).
"""

import hashlib
import io
import json

import numpy as np
from PIL import Image, ImageFilter

from hf_assets.config.conditioning_generators import GeneratorConfig

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}  # Pillow's JPEG `subsampling` values
JPEG_BLOCK = 8


def sample_rng(source_id: str, sample: str, generator: GeneratorConfig) -> np.random.Generator:
    """The random stream of one generated sample: the same for the same source backend, sample and parameters."""
    key = json.dumps([source_id, sample, generator.seed_settings()], sort_keys=True, separators=(",", ":"))
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def generate(generator: GeneratorConfig, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The conditioning image (uint8 (H, W, 3), the size of `pixels`) that `generator` makes from `pixels`."""
    from hf_assets.encode.masks import random_masks

    pixels = _rgb(pixels)
    run = {
        "canny": canny_edges,
        "superresolution": degrade_resolution,
        "jpeg_artifacts": jpeg_artifacts,
        "random_masks": random_masks,
        "sdr": sdr,
    }.get(generator.kind)
    if run is None:
        raise ValueError(f"generator {generator.kind!r} needs a model: use encode.depth for depth maps")
    out = run(pixels, rng, **generator.params)
    if out.shape != pixels.shape or out.dtype != np.uint8:
        raise AssertionError(f"{generator.kind} returned {out.shape} {out.dtype} for {pixels.shape} uint8")
    return out


def canny_edges(pixels: np.ndarray, rng=None, *, low_threshold: float = 50, high_threshold: float = 100) -> np.ndarray:
    """Canny edges of the luma (255 on edges, 0 elsewhere) as RGB; OpenCV's detector with L1 gradients."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, float(low_threshold), float(high_threshold))
    return np.repeat(edges[:, :, None], 3, axis=2)


def degrade_resolution(
    pixels: np.ndarray,
    rng: np.random.Generator,
    *,
    blur_radius: float = 2.0,
    blur_type: str = "gaussian",
    add_noise: bool = True,
    noise_level: float = 0.02,
    jpeg_quality: int | None = None,
    downscale_factor: float | None = None,
) -> np.ndarray:
    """A low-quality copy for super-resolution: optional down-and-up scale, blur, Gaussian noise, JPEG round trip."""
    img = Image.fromarray(pixels)
    if downscale_factor is not None and downscale_factor > 1:
        small = (max(1, int(img.width / downscale_factor)), max(1, int(img.height / downscale_factor)))
        img = img.resize(small, Image.Resampling.BILINEAR).resize(pixels.shape[1::-1], Image.Resampling.BILINEAR)
    if blur_type == "gaussian":
        img = img.filter(ImageFilter.GaussianBlur(radius=blur_radius))
    elif blur_type == "box":
        img = img.filter(ImageFilter.BoxBlur(radius=blur_radius))
    else:  # both, each at 70% as SimpleTuner does
        img = img.filter(ImageFilter.BoxBlur(radius=blur_radius * 0.7))
        img = img.filter(ImageFilter.GaussianBlur(radius=blur_radius * 0.7))
    out = np.asarray(img)
    if add_noise and noise_level > 0:
        out = add_gaussian_noise(out, rng, noise_level)
    if jpeg_quality is not None:
        out = jpeg_round_trip(out, jpeg_quality)
    return out


def jpeg_artifacts(
    pixels: np.ndarray,
    rng: np.random.Generator,
    *,
    quality_mode: str = "fixed",
    quality: int = 25,
    quality_range=(10, 50),
    quality_list=(10, 20, 30, 40),
    compression_rounds: int = 1,
    round_quality_decay: float = 0.9,
    subsampling: str | None = None,
    optimize: bool = False,
    progressive: bool = False,
    pre_blur: bool = False,
    pre_blur_radius: float = 0.5,
    add_noise: bool = False,
    noise_level: float = 0.01,
    enhance_blocks: bool = False,
    block_noise_level: float = 0.02,
) -> np.ndarray:
    """JPEG compression artifacts: optional blur and noise, then `compression_rounds` JPEG round trips whose quality
    decays by `round_quality_decay` per round, then optional noise on the 8x8 block boundaries."""
    out = pixels
    if pre_blur:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(radius=pre_blur_radius)))
    if add_noise and noise_level > 0:
        out = add_gaussian_noise(out, rng, noise_level)
    if quality_mode == "range":
        base = int(rng.integers(quality_range[0], quality_range[1] + 1))
    elif quality_mode == "random":
        base = int(quality_list[int(rng.integers(len(quality_list)))])
    else:
        base = int(quality)
    for round_index in range(compression_rounds):
        q = base if round_index == 0 else max(1, min(95, int(base * round_quality_decay**round_index)))
        out = jpeg_round_trip(out, q, subsampling=subsampling, optimize=optimize, progressive=progressive)
    if enhance_blocks:
        boundary = np.zeros(out.shape[:2], bool)
        boundary[::JPEG_BLOCK, :] = True
        boundary[:, ::JPEG_BLOCK] = True
        noise = rng.normal(0.0, block_noise_level, out.shape) * boundary[:, :, None]
        out = _to_uint8(out.astype(np.float64) / 255.0 + noise)
    return out


def sdr(
    pixels: np.ndarray, rng=None, *, transform: str = "rec709", input_scale: float = 1.0, exposure: float = 0.0
) -> np.ndarray:
    """An SDR reference: values scaled by `input_scale * 2**exposure`, then clamped (rec709), encoded as sRGB from
    linear (srgb), or compressed with ARRI's LogC3 curve (logc3)."""
    x = pixels.astype(np.float32) / 255.0 * np.float32(input_scale * 2.0**exposure)
    if transform == "logc3":
        x = np.clip(x, 0.0, None)
        log_part = 0.247190 * np.log10(5.555556 * x + 0.052272) + 0.385537
        x = np.where(x >= 0.010591, log_part, 5.367655 * x + 0.092809)
    elif transform == "srgb":
        x = np.clip(x, 0.0, 1.0)
        x = np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return _to_uint8(x)


def add_gaussian_noise(pixels: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Zero-mean Gaussian noise of standard deviation `level` (in units of full scale), clipped, rounded."""
    noisy = rng.standard_normal(pixels.shape, dtype=np.float32)
    noisy *= np.float32(level * 255.0)
    noisy += pixels  # float32 throughout: half the time of float64 at 1024² (bench/bench_generators.py)
    np.clip(noisy, 0.0, 255.0, out=noisy)
    noisy += 0.5
    return noisy.astype(np.uint8)


def jpeg_round_trip(pixels: np.ndarray, quality: int, **options) -> np.ndarray:
    """The pixels after saving as JPEG at `quality` (Pillow's options: subsampling, optimize, progressive) and
    decoding again."""
    kwargs = {
        "quality": int(quality),
        "optimize": bool(options.get("optimize")),
        "progressive": bool(options.get("progressive")),
    }
    if options.get("subsampling") is not None:
        kwargs["subsampling"] = SUBSAMPLING[options["subsampling"]]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **kwargs)
    buffer.seek(0)
    with Image.open(buffer) as img:
        return np.asarray(img.convert("RGB"))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) pixels, got {pixels.dtype} {pixels.shape}")
    return pixels
