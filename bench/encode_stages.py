"""The encode benchmark's stages, each on the same loaded VAE: bare forward, pipeline, naive loop, diagnostics.

Every stage returns a dict with `images`, `seconds` (wall clock), `cpu_seconds` (process CPU time, all threads) and,
where it applies, `pixels`. Only public functions of hf_assets are called.
"""

import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image, ImageOps

from bench.encode_data import Prepared

# SD 1.x / SD 2.x / SDXL AutoencoderKL architecture (the SDXL scaling factor).
SDXL_VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,
)


@dataclass(frozen=True)
class StageSettings:
    """What every stage shares: device, batch and decode threads, dtypes, and how many images the naive loop takes."""

    device: torch.device
    batch: int
    workers: int
    model_dtype: torch.dtype
    latent_dtype: torch.dtype
    naive_images: int


def vae_folder(spec: str | None, work_dir: Path, log: Callable[[str], None]) -> tuple[Path, str]:
    """(folder, description) for --vae: a given folder, the tiny pipeline, or the real-size random VAE."""
    if spec == "tiny":
        from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

        folder = work_dir / "tiny_sdxl"
        if not (folder / "model_index.json").is_file():
            log(f"building tiny pipeline in {folder}")
            build_tiny_pipeline(folder, "sdxl", seed=0)
        return folder, "tiny (build_tiny_pipeline sdxl: 4 levels (downscale 8), 8-16 channels, random weights)"
    if spec:
        folder = Path(spec).expanduser().resolve()
        if not folder.is_dir():
            raise SystemExit(f"--vae {spec}: not a folder")
        return folder, str(folder)
    folder = work_dir / "vae_sd_arch_random"
    config = folder / "config.json"
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in SDXL_VAE_CONFIG.items()}
    written = config.is_file() and any(folder.glob("*.safetensors"))
    if not (written and all(json.loads(config.read_text()).get(k) == v for k, v in wanted.items())):
        from diffusers import AutoencoderKL

        log(f"building the SD/SDXL-architecture AutoencoderKL with random weights in {folder}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            vae = AutoencoderKL(**SDXL_VAE_CONFIG)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        vae.save_pretrained(tmp)
        (tmp / "RANDOM_WEIGHTS").write_text("seeded random weights; real architecture, for timing only\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    return folder, "SD/SDXL AutoencoderKL architecture (128/256/512/512, 2 layers/block, 4 latent ch), random weights"


def load_encoders(folder: Path, device: torch.device, dtype: torch.dtype, log: Callable[[str], None]):
    """hf_assets' encoders for a pipeline folder (model=) or a bare AutoencoderKL folder (vae_path=)."""
    from hf_assets.encode.encoders import Encoders

    if (folder / "model_index.json").is_file():
        return Encoders(str(folder), device=device, dtype=dtype, log=log)
    return Encoders("", vae_path=str(folder), device=device, dtype=dtype, log=log)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, run: Callable[[], dict]) -> dict:
    """run()'s figures plus its wall-clock and process CPU seconds, the device synchronised on both sides."""
    sync(device)
    cpu, started = time.process_time(), time.perf_counter()
    figures = run()
    sync(device)
    return {**figures, "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def device_batch(arrays: list[np.ndarray], vae) -> torch.Tensor:
    """uint8 HWC images as the encoder hands them to the VAE: stacked, permuted (channels_last strides), [-1, 1]."""
    param = next(vae.parameters())
    stacked = torch.from_numpy(np.stack(arrays)).to(param.device)
    return stacked.permute(0, 3, 1, 2).to(param.dtype).div_(127.5).sub_(1.0)


def bench_bare(vae, settings: StageSettings, resolution: int, warmup: int, iters: int, nchw: bool = False) -> dict:
    """encode_latents on a device-resident (B, 3, R, R) tensor in a loop: the ceiling for this VAE and batch."""
    from hf_assets.encode.vae import encode_latents

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8) for _ in range(settings.batch)]
    x = device_batch(arrays, vae)
    if nchw:
        x = x.contiguous()
    for _ in range(warmup):
        encode_latents(vae, x)
    outputs = []

    def loop() -> dict:
        for _ in range(iters):
            outputs[:] = encode_latents(vae, x)
        return {"images": settings.batch * iters, "pixels": settings.batch * iters * resolution**2}

    figures = timed(settings.device, loop)
    return {**figures, "finite": bool(all(torch.isfinite(t).all() for t in outputs))}


class NullVAE(torch.nn.Module):
    """The VAE's interface and output shapes at almost no cost (an average pool): the pipeline minus its VAE."""

    def __init__(self, vae_config: dict, device: torch.device, dtype: torch.dtype):
        super().__init__()
        from hf_assets.encode.vae import vae_factors_from_config

        factors = vae_factors_from_config(vae_config)
        self.downscale, self.channels = factors["downscale"], factors["latent_channels"]
        self.anchor = torch.nn.Parameter(torch.zeros(1, device=device, dtype=dtype), requires_grad=False)

    def encode(self, x: torch.Tensor):
        pooled = torch.nn.functional.avg_pool2d(x, self.downscale)
        mean = pooled[:, :1].repeat(1, self.channels, 1, 1)
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=mean, std=torch.ones_like(mean)))


def bench_pipeline(vae, encoders, data: Prepared, settings: StageSettings, directory: Path, profile: bool) -> dict:
    """wanted_latents (not timed), then update_latents into a fresh cache folder (timed) with the loaded VAE."""
    from hf_assets.encode.engine import update_latents
    from hf_assets.encode.engine_types import EncodeSettings
    from hf_assets.encode.image_media import wanted_latents
    from hf_assets.encode.vae import vae_factors_from_config

    job = EncodeSettings(
        batch_size=settings.batch,
        decode_workers=settings.workers,
        model_dtype=str(settings.model_dtype),
        latent_dtype=str(settings.latent_dtype),
    )
    identity = job.latent_settings(encoders.vae_identity())
    wanted = wanted_latents(data.buckets, data.split, data.backend.image_column, identity, data.backend.metadata_dir)
    meta = {**vae_factors_from_config(encoders.vae_config()), "vae": identity.vae_identity}
    shutil.rmtree(directory, ignore_errors=True)
    profiler = cProfile.Profile() if profile else None
    reports = []

    def run() -> dict:
        if profiler:
            profiler.enable()
        reports.append(
            update_latents(
                wanted,
                data.split,
                data.backend.image_column,
                lambda: vae,
                directory,
                meta,
                job,
            )
        )
        if profiler:
            profiler.disable()
        return {}

    figures = timed(settings.device, run)
    if profiler:
        print_profile(profiler, "null VAE" if isinstance(vae, NullVAE) else "VAE")
    (report,) = reports
    widths = data.buckets.column("target_width").to_numpy().astype(np.int64)
    heights = data.buckets.column("target_height").to_numpy().astype(np.int64)
    return {
        **figures,
        "images": report.encoded,
        "encode_seconds": report.encode_seconds,
        "pixels": int(np.sum(widths * heights)),
        "dropped": len(report.dropped),
        "size_bytes": report.size_bytes,
    }


def print_profile(profiler: cProfile.Profile, what: str) -> None:
    print(f"\n--- cProfile of update_latents with the {what} (main thread), by cumulative time ---", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    print("--- by own time ---", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)


def bench_decode_only(data: Prepared, settings: StageSettings) -> dict:
    """The encoder's decode path without a VAE: iter_images, prefetch threads, load_pixels, batches of one size."""
    from hf_assets.encode.image_source import iter_images
    from hf_assets.encode.images import load_pixels
    from hf_assets.encode.prefetch import prefetch

    table = data.buckets.sort_by([("target_height", "ascending"), ("target_width", "ascending")])
    records = table.to_pylist()
    sources = iter_images(data.split, data.backend.image_column, table.column("row").to_numpy())

    def load(job):
        record, source = job
        left, top = record["crop_left"], record["crop_top"]
        crop = (left, top, left + record["target_width"], top + record["target_height"])
        tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
        return load_pixels(source, tile, (record["resize_width"], record["resize_height"]), crop)

    def run() -> dict:
        images, batch = 0, []
        for item in prefetch(zip(records, sources), load, workers=settings.workers, max_in_flight=2 * settings.batch):
            if not item.ok:
                continue
            if batch and (len(batch) == settings.batch or batch[0].shape != item.value.shape):
                np.stack(batch)
                batch = []
            batch.append(item.value)
            images += 1
        if batch:
            np.stack(batch)
        return {"images": images}

    return timed(settings.device, run)


def bench_naive(vae, data: Prepared, settings: StageSettings, out_dir: Path) -> dict:
    """One image at a time: decode, exif_transpose, RGB, resize, crop, to tensor, encode at batch 1, save_file."""
    from safetensors.torch import save_file

    from hf_assets.encode.image_source import iter_images

    records = data.buckets.slice(0, settings.naive_images).to_pylist()
    rows = np.array([r["row"] for r in records], dtype=np.int64)
    sources = list(iter_images(data.split, data.backend.image_column, rows))
    param = next(vae.parameters())
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(record, source, path):
        img = ImageOps.exif_transpose(Image.open(io.BytesIO(source))).convert("RGB")
        img = img.resize((record["resize_width"], record["resize_height"]), Image.Resampling.LANCZOS)
        left, top = record["crop_left"], record["crop_top"]
        img = img.crop((left, top, left + record["target_width"], top + record["target_height"]))
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].to(param.device, param.dtype) / 127.5 - 1
        with torch.inference_mode():
            dist = vae.encode(x).latent_dist
            tensors = {
                "mean": dist.mean[0].to(settings.latent_dtype).cpu().contiguous(),
                "std": dist.std[0].to(settings.latent_dtype).cpu().contiguous(),
            }
        if path is not None:
            save_file(tensors, str(path))

    one(records[0], sources[0], None)  # warm-up at batch 1, untimed

    def run() -> dict:
        for i, (record, source) in enumerate(zip(records, sources)):
            one(record, source, out_dir / f"{i:06d}.safetensors")
        return {"images": len(records), "pixels": sum(r["target_width"] * r["target_height"] for r in records)}

    return {**timed(settings.device, run), "filenames": [r["filename"] for r in records]}


def agreement(latent_dir: Path, naive_dir: Path, filenames: list[str], limit: int = 4) -> float:
    """Largest |mean difference| between the pipeline's cached latents and the naive loop's, first few images."""
    from safetensors.torch import load_file

    from hf_assets.cache.latents import open_latents

    cache = open_latents(latent_dir)
    worst = 0.0
    for i, name in enumerate(filenames[:limit]):
        naive = load_file(str(naive_dir / f"{i:06d}.safetensors"))["mean"].float()
        worst = max(worst, float((cache[name].float() - naive).abs().max()))
    return worst
