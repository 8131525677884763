"""The encode benchmark's timed stages, each on the same loaded VAE: the bare forward (eager NCHW, eager
channels-last, compiled) over the dataset's shape mix, the pipeline (`update_latents`), and the naive loop.

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
    """What every stage shares: device, batch (0: the runner's automatic one) and decode threads, dtypes, the
    compile mode of the compiled stages, and how many images the naive loop takes."""

    device: torch.device
    batch: int
    workers: int
    model_dtype: torch.dtype
    latent_dtype: torch.dtype
    naive_images: int
    compile: str = "off"

    def job(self, compile: str = "off", memory_format: str = "auto", decode: str = "pillow"):
        """The EncodeSettings of a pipeline run with these speed options."""
        from hf_assets.encode.engine_types import EncodeSettings

        return EncodeSettings(
            batch_size=self.batch,
            decode_workers=self.workers,
            model_dtype=str(self.model_dtype),
            latent_dtype=str(self.latent_dtype),
            compile=compile,
            memory_format=memory_format,
            decode=decode,
        )


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
    from hf_assets.encode.encoder_set import Encoders

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


def shape_mix(buckets) -> list[tuple[tuple[int, int], int]]:
    """((width, height), images) of each target size of the bucket table, most images first."""
    from bench.encode_data import target_sizes

    return target_sizes(buckets).most_common()


def bench_bare(runner, mix: list[tuple[tuple[int, int], int]], warmup: int, iters: int) -> dict:
    """The runner's forward (`VaeRunner.moments`) on device-resident pixels of each target size, at the batch it
    runs that size with, after `warmup` calls (which compile, when it compiles). The images/s of the mix is what
    full batches would give: the mix's images over the sum of each size's images / its rate."""
    rng = np.random.default_rng(0)
    per_shape, seconds, cpu_seconds, finite = [], 0.0, 0.0, True
    compile_before = runner.compiled.total_compile_seconds if runner.compiled is not None else 0.0
    for (width, height), count in mix:
        batch = runner.batch_limit(height, width)
        images = torch.from_numpy(rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8))
        runner(images[:1] if batch == 1 else images)  # the first call fixes the batch that fits, and compiles
        batch = min(batch, runner.fits[(height, width)])
        pixels = runner.pixels(images[:batch])
        for _ in range(max(0, warmup - 1)):
            runner.moments(pixels)
        outputs: list = []

        def loop(pixels=pixels, outputs=outputs) -> dict:
            for _ in range(iters):
                outputs[:] = runner.moments(pixels)
            return {}

        figures = timed(runner.device, loop)
        rate = batch * iters / figures["seconds"]
        finite = finite and all(bool(torch.isfinite(t).all()) for t in outputs)
        per_shape.append({"size": f"{width}x{height}", "images": count, "batch": batch, "images_per_s": rate})
        seconds += count / rate
        cpu_seconds += figures["cpu_seconds"] * count / (batch * iters)
    images = sum(count for _, count in mix)
    compile_seconds = (runner.compiled.total_compile_seconds if runner.compiled is not None else 0.0) - compile_before
    return {
        "images": images,
        "pixels": sum(w * h * count for (w, h), count in mix),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "per_shape": per_shape,
        "finite": finite,
        "compile_seconds": compile_seconds,
    }


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


def bench_pipeline(vae, encoders, data: Prepared, settings: StageSettings, job, directory: Path, profile: bool) -> dict:
    """wanted_latents (not timed), then update_latents into a fresh cache folder (timed) with the loaded VAE."""
    from hf_assets.encode.engine import update_latents
    from hf_assets.encode.image_media import wanted_latents
    from hf_assets.encode.vae import vae_factors_from_config

    identity = job.latent_settings(encoders.vae_identity())
    wanted = wanted_latents(data.buckets, data.split, data.backend.image_column, identity, data.backend.metadata_dir)
    meta = {**vae_factors_from_config(encoders.vae_config()), "vae": identity.vae_identity}
    shutil.rmtree(directory, ignore_errors=True)
    profiler = cProfile.Profile() if profile else None
    reports = []

    def run() -> dict:
        if profiler:
            profiler.enable()
        reports.append(update_latents(wanted, data.split, data.backend.image_column, lambda: vae, directory, meta, job))
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
        "directory": str(directory),
    }


def print_profile(profiler: cProfile.Profile, what: str) -> None:
    print(f"\n--- cProfile of update_latents with the {what} (main thread), by cumulative time ---", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    print("--- by own time ---", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)


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
