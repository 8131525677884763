"""VAE encode throughput, side by side in one process: bare VAE forward vs the real pipeline vs a naive loop.

    python -m bench.bench_encode [--device auto|cpu|cuda] [--resolution R] [--dtype fp32|bf16|fp16]
                                 [--batch B] [--images N] [--vae FOLDER|tiny] [--aspect square|mixed] ...

Stages (the same VAE, the same N images, one process):

1. bare VAE forward: a (B, 3, R, R) tensor already on the device, made once by the pipeline's own `_to_device`
   (so it has the same channels_last strides update_latents feeds the VAE; --bare-nchw adds a row for a contiguous
   NCHW tensor), then `encode_latents` in a loop after a warm-up, cuda synchronised around the timed loop
   -> the ceiling for this VAE, dtype, batch and device.
2. pipeline: N distinct photo-like JPEGs in a Hub-style Parquet dataset -> the real config parser, filtered
   index and aspect buckets -> `wanted_latents` (not timed) -> `update_latents` into a fresh cache dir (timed;
   the VAE is already loaded: `vae_loader` returns it). Decode/EXIF/RGB/LANCZOS resize/crop run on
   `--workers` prefetch threads, batches of one target size, safetensors shards, manifest commit.
3. naive: one image at a time: PIL decode, exif_transpose, RGB, LANCZOS resize, crop (the same boxes as the
   bucket table), to tensor, `vae.encode` at batch 1, `safetensors.torch.save_file` one file per image.
Diagnostics: "decode only" runs the pipeline's batch iterator (`latents_update._batches`: prefetch threads,
   decode, resize, crop, batching) plus `np.stack`, without the VAE; "null VAE" runs `update_latents` with an
   average-pool stand-in for the VAE (same output shapes): everything but the VAE. When either is not well above
   the bare figure, the CPU side is what limits the pipeline.

Ratios: pipeline efficiency = pipeline / bare (target >= 0.9 on GPU); speed-up = pipeline / naive (target >= 3x
on GPU). With --aspect mixed, target sizes vary around R*R pixels, so efficiency is also given per megapixel.

--vae: a diffusers pipeline folder (its vae/ is used) or an AutoencoderKL folder. Default: an AutoencoderKL with
the real SD/SDXL architecture (block_out_channels 128/256/512/512, layers_per_block 2, latent_channels 4,
norm_num_groups 32) and seeded random weights, written once with save_pretrained under bench/out/encode/ and
loaded back with from_pretrained, so the FLOPs are realistic. `--vae tiny` (for quick CPU runs) uses
build_tiny_pipeline's VAE (four levels, downscale 8 as the real ones, 8-16 channels): a smoke test of the
machinery, not a model of a real VAE's cost.

Defaults depend on the device: cuda: R 512, B 16 (4 above 512), N 512 (160 above 512), bf16;
cpu: R 256, B 4, N 16, fp32 (`--vae tiny`: B 8, N 32). On cpu with the real-size VAE the default run takes a
few minutes on 2 cores: the VAE needs about 0.27 TFLOP per 256x256 image.

Generated datasets are cached under bench/out/encode/data/; each run's caches go to a temporary folder under
bench/out/encode/runs/ that is removed afterwards (--keep keeps it). The markdown table goes to stdout (and
--out; --json for the raw figures); progress goes to stderr. `--repeat K` runs every stage K times, interleaved,
and reports the fastest (useful on a shared machine; the "CPU s" column shows process CPU time, all threads).
`--profile pipeline|null` prints a cProfile of update_latents' main thread (worker threads are not profiled).
"""

import argparse
import cProfile
import concurrent.futures
import io
import json
import math
import os
import platform
import pstats
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench.machine import cpu_model  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageOps  # noqa: E402

OUT = REPO / "bench" / "out" / "encode"
DATA_VERSION = 1
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
ASPECTS = (0.5, 9 / 16, 2 / 3, 0.75, 0.8, 1.0, 1.0, 1.25, 4 / 3, 1.5, 16 / 9, 2.0)


def log(message: str) -> None:
    print(f"[bench_encode {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- arguments


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_encode",
        description="Bare VAE forward vs update_latents vs a naive per-image loop, in one process.",
    )
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    p.add_argument("--resolution", type=int, default=None, help="R: targets of about R*R pixels (cuda 512, cpu 256)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"], help="VAE dtype (cuda bf16, cpu fp32)")
    p.add_argument("--storage-dtype", default=None, choices=["fp32", "bf16", "fp16"],
                   help="stored latent dtype (as the EncoderResource: cuda bf16, cpu fp32)")
    p.add_argument("--batch", type=int, default=None, help="B, the VAE batch size (cuda 16, or 4 above 512; cpu 4)")
    p.add_argument("--images", type=int, default=None, help="N distinct images (cuda 512, or 160 above 512; cpu 16)")
    p.add_argument("--naive-images", type=int, default=None, help="images for the naive loop (default N)")
    p.add_argument("--vae", default=None,
                   help="a diffusers pipeline folder or AutoencoderKL folder; 'tiny' for build_tiny_pipeline's VAE; "
                        "default: real SD/SDXL architecture with random weights")
    p.add_argument("--aspect", default="square", choices=["square", "mixed"],
                   help="square: every target is R x R (crop_aspect square); mixed: aspect buckets of ~R*R pixels "
                        "(crop_aspect preserve, alignment 64)")
    p.add_argument("--workers", type=int, default=4, help="decode threads of update_latents (EncoderResource: 4)")
    p.add_argument("--warmup", type=int, default=None, help="untimed bare iterations first (cuda 5, cpu 1)")
    p.add_argument("--bare-iters", type=int, default=None, help="timed bare iterations (default ceil(N/B), >= 3)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--bare-nchw", action="store_true",
                   help="also time the bare forward on a contiguous NCHW tensor (the pipeline's input is channels_last)")
    p.add_argument("--channels-last", action="store_true",
                   help="vae.to(memory_format=torch.channels_last) for all stages (not what the pipeline does)")
    p.add_argument("--skip", default="", help="comma list of stages to skip: naive, decode, null")
    p.add_argument("--repeat", type=int, default=1, help="run every stage K times, interleaved; report the fastest")
    p.add_argument("--profile", default=None, choices=["pipeline", "null"],
                   help="cProfile update_latents' main thread (with the VAE, or the null VAE) in the first repeat; "
                        "top functions to stderr")
    p.add_argument("--keep", action="store_true", help="keep the run folder (caches, naive files)")
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from hf_assets.encode.encoders import resolve_device

    try:
        args.device = resolve_device(args.device)
    except ValueError as error:
        p.error(str(error))
    cuda = args.device.type == "cuda"
    tiny = args.vae == "tiny"
    if tiny and cuda:
        log("note: --vae tiny on cuda measures launch overhead, not a real VAE")
    args.resolution = args.resolution or (512 if cuda else 256)
    big = args.resolution > 512
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    args.storage_dtype = args.storage_dtype or ("bf16" if cuda else "fp32")
    args.batch = args.batch or ((4 if big else 16) if cuda else (8 if tiny else 4))
    args.images = args.images or ((160 if big else 512) if cuda else (32 if tiny else 16))
    args.naive_images = min(args.naive_images or args.images, args.images)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    args.bare_iters = args.bare_iters or max(3, math.ceil(args.images / args.batch))
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.resolution % 64:
        p.error(f"--resolution {args.resolution}: use a multiple of 64")
    return args


# --------------------------------------------------------------------------------------------------- VAE


def vae_folder(spec: str | None) -> tuple[Path, str]:
    """(folder, description) for --vae: a given folder, the tiny pipeline, or the real-size random VAE."""
    if spec == "tiny":
        from hf_assets.encode.tiny_pipeline import build_tiny_pipeline

        folder = OUT / "tiny_sdxl"
        if not (folder / "model_index.json").is_file():
            log(f"building tiny pipeline in {folder}")
            build_tiny_pipeline(folder, "sdxl", seed=0)
        return folder, "tiny (build_tiny_pipeline sdxl: 4 levels (downscale 8), 8-16 channels, random weights)"
    if spec:
        folder = Path(spec).expanduser().resolve()
        if not folder.is_dir():
            raise SystemExit(f"--vae {spec}: not a folder")
        return folder, str(folder)
    folder = OUT / "vae_sd_arch_random"
    config = folder / "config.json"
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in SDXL_VAE_CONFIG.items()}
    if not (config.is_file() and _matches(json.loads(config.read_text()), wanted)
            and any(folder.glob("*.safetensors"))):
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


def _matches(config: dict, wanted: dict) -> bool:
    return all(config.get(k) == v for k, v in wanted.items())


def load_encoders(folder: Path, device: torch.device, dtype: torch.dtype):
    """hf_assets' Encoders for a pipeline folder (model=) or a bare AutoencoderKL folder (vae_path=)."""
    from hf_assets.encode.encoders import Encoders

    if (folder / "model_index.json").is_file():
        return Encoders(str(folder), device=device, dtype=dtype, log=log)
    return Encoders("", vae_path=str(folder), device=device, dtype=dtype, log=log)


# ------------------------------------------------------------------------------------------------- dataset


def photo_jpeg(width: int, height: int, seed: int, orientation: int | None, quality: int = 90) -> bytes:
    """A photo-like JPEG: a smooth colour field, mid-frequency shading, hard-edged shapes and sensor noise."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    img = np.asarray(base, dtype=np.int16)
    shade = Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    img = img + (np.asarray(shade, dtype=np.int16)[..., None] - 128) // 4
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1 = x0 + int(rng.integers(width // 20, width // 3))
        y1 = y0 + int(rng.integers(height // 20, height // 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    noise = rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    pixels = np.clip(np.asarray(canvas, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    kwargs = {"quality": quality}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    Image.fromarray(pixels).save(buf, format="JPEG", **kwargs)
    return buf.getvalue()


def image_specs(n: int, resolution: int, seed: int) -> list[tuple[int, int, int | None]]:
    """(stored width, stored height, EXIF orientation): varied aspects, 1.0-1.6x the target area, 1 in 4 rotated."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        aspect = float(ASPECTS[i % len(ASPECTS)]) * float(rng.uniform(0.97, 1.03))
        area = resolution * resolution * float(rng.uniform(1.0, 1.6))
        w, h = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        orientation = 6 if i % 4 == 3 else None
        specs.append((h, w, orientation) if orientation else (w, h, None))  # stored rotated, shown w x h
    return specs


def bench_dataset(n: int, resolution: int, seed: int) -> Path:
    """A Hub-style Parquet dataset of n distinct photo-like JPEGs (cached under bench/out/encode/data)."""
    folder = OUT / "data" / f"photos-v{DATA_VERSION}-r{resolution}-n{n}-s{seed}"
    if (folder / "DONE").is_file():
        return folder
    import datasets

    log(f"generating {n} JPEGs of about {resolution}x{resolution}..{int(resolution * 1.26)}^2 px in {folder}")
    started = time.perf_counter()
    specs = image_specs(n, resolution, seed)
    with concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        blobs = list(pool.map(lambda a: photo_jpeg(a[1][0], a[1][1], seed * 100_003 + a[0], a[1][2]),
                              enumerate(specs)))
    rows = [
        {
            "image": {"bytes": blob, "path": None},
            "width": h if o else w,  # as shown, after EXIF orientation
            "height": w if o else h,
            "caption": f"a photo of item {i}",
        }
        for i, (blob, (w, h, o)) in enumerate(zip(blobs, specs))
    ]
    features = datasets.Features({"image": datasets.Image(), "width": datasets.Value("int32"),
                                  "height": datasets.Value("int32"), "caption": datasets.Value("string")})
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    ds = datasets.Dataset.from_list(rows, features=features)
    shards = max(1, math.ceil(sum(map(len, blobs)) / (256 << 20)))
    for k in range(shards):
        ds.shard(shards, k, contiguous=True).to_parquet(str(tmp / "data" / f"train-{k:05d}-of-{shards:05d}.parquet"))
    (tmp / "DONE").write_text(json.dumps({"images": n, "bytes": sum(map(len, blobs))}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    log(f"dataset ready in {time.perf_counter() - started:.1f}s ({sum(map(len, blobs)) / n / 1024:.0f} KiB/image)")
    return folder


def prepare(run_dir: Path, data: Path, resolution: int, aspect: str):
    """(backend, split, buckets) through the real config parser, index and bucketing."""
    from hf_assets.config.loader import parse_config
    from hf_assets.data.buckets import assign_buckets
    from hf_assets.data.index import build_filtered_index
    from hf_assets.data.sources import open_split

    entry = {
        "id": "bench", "type": "huggingface", "dataset_name": str(data), "caption_strategy": "huggingface",
        "metadata_backend": "huggingface", "caption_column": "caption", "width_column": "width",
        "height_column": "height", "resolution": resolution, "resolution_type": "pixel_area", "crop": True,
        "crop_aspect": "square" if aspect == "square" else "preserve", "crop_style": "center",
        "aspect_bucket_alignment": 64,
    }
    backend = parse_config([entry], run_dir / "dataloader.json").backends[0]
    split = open_split(backend)
    index, _ = build_filtered_index(split, backend)
    return backend, split, assign_buckets(index, backend.buckets, backend.id)


# -------------------------------------------------------------------------------------------------- stages


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_bare(vae, device, batch: int, resolution: int, warmup: int, iters: int, layout: str = "pipeline") -> dict:
    """encode_latents on a device-resident (B, 3, R, R) tensor in a loop.

    layout "pipeline": the tensor comes from the pipeline's own `_to_device` (uint8 HWC stacked, permuted, so its
    strides are channels_last), exactly what update_latents hands the VAE; "nchw": a contiguous NCHW tensor.
    """
    from hf_assets.encode.latents_update import _to_device
    from hf_assets.encode.vae import encode_latents

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8) for _ in range(batch)]
    x = _to_device(arrays, vae)
    if layout == "nchw":
        x = x.contiguous()
    for _ in range(warmup):
        encode_latents(vae, x)
    sync(device)
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(iters):
        mean, std = encode_latents(vae, x)
    sync(device)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finite = bool(torch.isfinite(mean).all() and torch.isfinite(std).all())
    return {"images": batch * iters, "seconds": seconds, "cpu_seconds": cpu, "pixels": batch * iters * resolution**2,
            "finite": finite}


class NullVAE(torch.nn.Module):
    """A stand-in with the VAE's interface and output shapes whose encode costs ~nothing (an average pool).

    update_latents with it measures everything but the VAE: decode threads, batching, host-to-device copy,
    device-to-host copy, shard writing and the manifest commit; the ceiling the pipeline could feed a VAE at.
    """

    def __init__(self, vae, device: torch.device, dtype: torch.dtype):
        super().__init__()
        from hf_assets.encode.vae import vae_factors

        factors = vae_factors(vae)
        self.downscale, self.channels = factors["downscale"], factors["latent_channels"]
        self.anchor = torch.nn.Parameter(torch.zeros(1, device=device, dtype=dtype), requires_grad=False)

    def encode(self, x: torch.Tensor):
        from types import SimpleNamespace

        pooled = torch.nn.functional.avg_pool2d(x, self.downscale)
        mean = pooled[:, :1].repeat(1, self.channels, 1, 1)
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=mean, std=torch.ones_like(mean)))


def bench_pipeline(vae, encoders, backend, split, buckets, args, model_dtype, storage_dtype, directory: Path,
                   profile: bool = False) -> dict:
    """wanted_latents (untimed), then update_latents into a fresh cache dir (timed) with the loaded VAE."""
    from hf_assets.encode.latents_update import LatentSettings, update_latents, wanted_latents
    from hf_assets.encode.vae import vae_factors_from_config

    settings = LatentSettings(encoders.vae_identity(), str(model_dtype), str(storage_dtype))
    wanted = wanted_latents(buckets, split, backend.image_column, settings, backend.metadata_dir)
    meta = {**vae_factors_from_config(encoders.vae_config()), "vae": settings.vae_identity}
    shutil.rmtree(directory, ignore_errors=True)
    profiler = cProfile.Profile() if profile else None
    sync(args.device)
    cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    report = update_latents(
        wanted, split, backend.image_column, lambda: vae, directory, meta, storage_dtype,
        batch_size=args.batch, workers=args.workers, shard_bytes=256 << 20, log=log,
    )
    sync(args.device)
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler:
        what = "null VAE" if isinstance(vae, NullVAE) else "VAE"
        print(f"\n--- cProfile of update_latents with the {what} (main thread), by cumulative time ---",
              file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        print("--- by own time ---", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    pixels = int(np.sum(buckets.column("target_width").to_numpy().astype(np.int64)
                        * buckets.column("target_height").to_numpy().astype(np.int64)))
    if report.dropped:
        log(f"pipeline dropped {len(report.dropped)}: {dict(list(report.dropped.items())[:3])}")
    return {"images": report.encoded, "seconds": seconds, "cpu_seconds": cpu, "encode_seconds": report.encode_seconds,
            "pixels": pixels, "dropped": len(report.dropped), "size_bytes": report.size_bytes}


def bench_decode_only(backend, split, buckets, args) -> dict:
    """The pipeline's own batch iterator (prefetch threads, decode/resize/crop, batching) plus np.stack; no VAE."""
    from hf_assets.encode.latents_update import _batches

    table = buckets.select(["filename", "row", *_geometry()]).append_column("key", buckets.column("filename"))
    table = table.sort_by([("target_height", "ascending"), ("target_width", "ascending")])
    cpu, started = time.process_time(), time.perf_counter()
    images = 0
    for batch in _batches(table, split, backend.image_column, args.batch, args.workers, {}):
        np.stack([array for _, array in batch])
        images += len(batch)
    return {"images": images, "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def _geometry() -> list[str]:
    from hf_assets.encode.latents_update import GEOMETRY

    return list(GEOMETRY)


def bench_naive(vae, backend, split, buckets, args, storage_dtype, out_dir: Path) -> dict:
    """One image at a time: decode, exif_transpose, RGB, resize, crop, to tensor, encode at batch 1, save_file."""
    from safetensors.torch import save_file

    from hf_assets.encode.image_source import iter_images

    records = buckets.slice(0, args.naive_images).to_pylist()
    sources = list(iter_images(split, backend.image_column, np.array([r["row"] for r in records], dtype=np.int64)))
    param = next(vae.parameters())
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(record, data, path):
        img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        img = img.resize((record["resize_width"], record["resize_height"]), Image.Resampling.LANCZOS)
        left, top = record["crop_left"], record["crop_top"]
        img = img.crop((left, top, left + record["target_width"], top + record["target_height"]))
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].to(param.device, param.dtype) / 127.5 - 1
        with torch.inference_mode():
            dist = vae.encode(x).latent_dist
        tensors = {"mean": dist.mean[0].to("cpu", storage_dtype).contiguous(),
                   "std": dist.std[0].to("cpu", storage_dtype).contiguous()}
        if path is not None:
            save_file(tensors, str(path))
        return tensors

    one(records[0], sources[0], None)  # warm-up at batch 1, untimed
    sync(args.device)
    cpu, started = time.process_time(), time.perf_counter()
    for i, (record, data) in enumerate(zip(records, sources)):
        one(record, data, out_dir / f"{i:06d}.safetensors")
    sync(args.device)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    pixels = sum(r["target_width"] * r["target_height"] for r in records)
    return {"images": len(records), "seconds": seconds, "cpu_seconds": cpu, "pixels": pixels, "filenames": [r["filename"] for r in records]}


def agreement(backend, naive_dir: Path, filenames: list[str], limit: int = 4) -> float | None:
    """Largest |mean difference| between the pipeline's cached latents and the naive loop's, first few images."""
    from safetensors.torch import load_file

    from hf_assets.cache.latents import open_latents

    try:
        cache = open_latents(backend.vae_dir)
        worst = 0.0
        for i, name in enumerate(filenames[:limit]):
            naive = load_file(str(naive_dir / f"{i:06d}.safetensors"))["mean"].float()
            worst = max(worst, float((cache[name].float() - naive).abs().max()))
        return worst
    except Exception as error:  # noqa: BLE001 - a diagnostic only
        log(f"could not compare latents: {error}")
        return None


# -------------------------------------------------------------------------------------------------- report


def machine_info(device: torch.device) -> dict:
    import diffusers
    import PIL

    cpu = cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu, "cpu_count": os.cpu_count(), "usable_cores": usable, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
        "pillow": PIL.__version__, "platform": platform.platform(), "device": str(device),
        "load_avg_1_5_15": " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=torch.cuda.get_device_name(device), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    cudnn_benchmark=torch.backends.cudnn.benchmark)
    return info


def rate(stage: dict) -> float:
    return stage["images"] / stage["seconds"] if stage.get("seconds") else 0.0


def cpu_rate(stage: dict | None) -> float:
    """Images per second of process CPU time: on a shared CPU-only machine, steadier than wall-clock rates."""
    return stage["images"] / stage["cpu_seconds"] if stage and stage.get("cpu_seconds") else 0.0


def mpx_rate(stage: dict) -> float:
    return stage["pixels"] / 1e6 / stage["seconds"] if stage.get("seconds") and stage.get("pixels") else 0.0


def render(args, info, vae_desc, params_m, buckets_summary, bare, pipe, naive, decode, null, check, command,
           runs, fill) -> str:
    cuda = args.device.type == "cuda"
    R = args.resolution
    repeats = f", best of {args.repeat} interleaved runs" if args.repeat > 1 else ""
    lines = [
        f"## VAE encode throughput: {R}x{R} ({args.aspect}), {args.dtype}, batch {args.batch}, {args.device}",
        "",
        f"Command: `{command}`",
        "",
        f"| stage | what is timed{repeats} | images | seconds | images/s | Mpx/s | CPU s (all threads) "
        "| images per CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name, what, stage):
        if stage is None:
            return f"| {name} | {what} | skipped | | | | | |"
        mpx = f"{mpx_rate(stage):.2f}" if stage.get("pixels") else ""
        return (f"| {name} | {what} | {stage['images']} | {stage['seconds']:.2f} | {rate(stage):.2f} | {mpx} "
                f"| {stage['cpu_seconds']:.1f} | {cpu_rate(stage):.3g} |")

    lines.append(row("1. bare VAE forward", f"`encode_latents` on a device tensor {args.batch}x3x{R}x{R} made by "
                     f"`_to_device` (channels_last strides, as the pipeline's), {args.warmup} warm-up + "
                     f"{args.bare_iters} timed iters", bare))
    if runs.get("bare_nchw"):
        lines.append(row("(diag) bare, NCHW input", "as 1. with a contiguous NCHW input tensor", best(runs["bare_nchw"])))
    lines.append(row("2. pipeline", f"`update_latents` (fresh cache, VAE preloaded), {args.workers} decode workers, "
                     f"batch {args.batch}", pipe))
    lines.append(row("3. naive per-image", "decode, exif_transpose, RGB, LANCZOS resize, crop, encode batch 1, "
                     "`save_file` per image", naive))
    lines.append(row("(diag) decode only", f"`_batches` + `np.stack`, {args.workers} workers, no VAE", decode))
    lines.append(row("(diag) pipeline, null VAE", "`update_latents` with an avg-pool stand-in for the VAE "
                     "(all but the VAE)", null))
    lines.append("")
    efficiency = rate(pipe) / rate(bare) if rate(bare) else 0.0
    efficiency_mpx = mpx_rate(pipe) / mpx_rate(bare) if mpx_rate(bare) else 0.0
    speedup = rate(pipe) / rate(naive) if naive and rate(naive) else None
    eff_target = "target >= 0.9 on GPU" + ("" if cuda else "; on CPU decode and the VAE share the same cores")
    sp_target = "target >= 3x on GPU" + ("" if cuda else "; on CPU the VAE dominates both")
    lines += [
        "| ratio | value | |",
        "|---|---:|---|",
        f"| pipeline efficiency = pipeline / bare (images/s) | {efficiency:.3f} | {eff_target} |",
    ]
    if args.aspect == "mixed":
        lines.append(f"| pipeline efficiency per megapixel | {efficiency_mpx:.3f} | targets vary around {R}^2 px |")
    if not cuda and cpu_rate(bare):
        lines.append(f"| pipeline efficiency per CPU second | {cpu_rate(pipe) / cpu_rate(bare):.3f} | "
                     "steadier than wall-clock on a shared CPU |")
    if speedup is not None:
        lines.append(f"| speed-up = pipeline / naive (images/s) | {speedup:.2f}x | {sp_target} |")
        if not cuda and cpu_rate(naive):
            lines.append(f"| speed-up per CPU second | {cpu_rate(pipe) / cpu_rate(naive):.2f}x | |")
    if decode:
        lines.append(f"| decode only / bare (images/s) | {rate(decode) / rate(bare):.2f} | "
                     f"< 1: {args.workers} decode threads cannot feed this VAE |")
    if null:
        lines.append(f"| null-VAE pipeline / bare (images/s) | {rate(null) / rate(bare):.2f} | "
                     "< 1: the pipeline without its VAE is slower than the VAE alone |")
    lines += [
        "",
        f"- pipeline detail: encode loop {pipe['encode_seconds']:.2f}s of {pipe['seconds']:.2f}s in update_latents "
        f"(plan + commit {pipe['seconds'] - pipe['encode_seconds']:.2f}s); cache {pipe['size_bytes'] / 2**20:.1f} MiB; "
        f"dropped {pipe['dropped']}; {fill}",
        f"- images: {args.images} distinct photo-like JPEGs (q90, 1.0-1.6x the target area, 12 aspect ratios, "
        f"1 in 4 with EXIF orientation 6); targets: {buckets_summary}",
        f"- VAE: {vae_desc}; {params_m[0]:.3g}M parameters, {params_m[1]:.3g}M in the encoder that runs; "
        f"model dtype {args.dtype}, stored {args.storage_dtype}" + ("; channels_last" if args.channels_last else ""),
        f"- bare output finite: {bare['finite']}" + (f"; max |pipeline - naive| latent mean over first 4 images: "
                                                     f"{check:.3g}" if check is not None else ""),
    ]
    if args.repeat > 1:
        lines.append("- every run, images/s: " + "; ".join(
            f"{name} " + " ".join(f"{rate(r):.2f}" for r in results) for name, results in runs.items() if results))
    lines.append("- machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if cuda:
        lines.append(f"- peak GPU memory allocated: {torch.cuda.max_memory_allocated(args.device) / 2**30:.2f} GiB")
    return "\n".join(lines) + "\n"


def batch_fill(buckets, batch: int) -> str:
    """How full update_latents' batches are: one target size per batch, so each size ends in a partial batch."""
    counts: dict[tuple[int, int], int] = {}
    for w, h in zip(buckets.column("target_width").to_pylist(), buckets.column("target_height").to_pylist()):
        counts[(w, h)] = counts.get((w, h), 0) + 1
    batches = sum(math.ceil(n / batch) for n in counts.values())
    full = sum(n // batch for n in counts.values())
    fill = buckets.num_rows / (batches * batch) if batches else 0.0
    return f"{batches} batches ({full} full, {len(counts)} target sizes), mean fill {fill:.0%}"


def best(results: list[dict | None]) -> dict | None:
    """The fastest of repeated measurements (or None when the stage was skipped)."""
    results = [r for r in results if r is not None]
    return max(results, key=rate) if results else None


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "bench.bench_encode",
                                                   *(sys.argv[1:] if argv is None else argv)])
    from hf_assets.encode.models import as_dtype

    model_dtype, storage_dtype = as_dtype(args.dtype), as_dtype(args.storage_dtype)
    folder, vae_desc = vae_folder(args.vae)
    encoders = load_encoders(folder, args.device, model_dtype)
    started = time.perf_counter()
    vae = encoders.vae()
    if args.channels_last:
        vae = vae.to(memory_format=torch.channels_last)
    sync(args.device)
    log(f"VAE loaded from {folder} in {time.perf_counter() - started:.1f}s")
    encoder_parts = [m for m in (getattr(vae, "encoder", None), getattr(vae, "quant_conv", None)) if m is not None]
    params_m = (sum(p.numel() for p in vae.parameters()) / 1e6,
                sum(p.numel() for m in encoder_parts for p in m.parameters()) / 1e6)
    null_vae = NullVAE(vae, args.device, model_dtype)

    data = bench_dataset(args.images, args.resolution, args.seed)
    OUT.joinpath("runs").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=OUT / "runs"))
    runs: dict[str, list] = {"bare": [], "bare_nchw": [], "pipeline": [], "naive": [], "decode": [], "null": []}
    check = None
    try:
        backend, split, buckets = prepare(run_dir, data, args.resolution, args.aspect)
        if buckets.num_rows != args.images:
            log(f"warning: {buckets.num_rows} of {args.images} images survived filtering and bucketing")
        sizes = {}
        for w, h in zip(buckets.column("target_width").to_pylist(), buckets.column("target_height").to_pylist()):
            sizes[f"{w}x{h}"] = sizes.get(f"{w}x{h}", 0) + 1
        buckets_summary = ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))

        for k in range(args.repeat):
            tag = f"[{k + 1}/{args.repeat}] " if args.repeat > 1 else ""
            profile = args.profile if k == 0 else None
            log(f"{tag}bare VAE forward: {args.warmup} warm-up + {args.bare_iters} x batch {args.batch}")
            runs["bare"].append(bench_bare(vae, args.device, args.batch, args.resolution,
                                           args.warmup if k == 0 else min(args.warmup, 1), args.bare_iters))
            log(f"    {rate(runs['bare'][-1]):.2f} images/s")
            if args.bare_nchw:
                log(f"{tag}bare VAE forward, contiguous NCHW input")
                runs["bare_nchw"].append(bench_bare(vae, args.device, args.batch, args.resolution,
                                                    min(args.warmup, 1), args.bare_iters, layout="nchw"))
                log(f"    {rate(runs['bare_nchw'][-1]):.2f} images/s")
            log(f"{tag}pipeline: update_latents on {buckets.num_rows} images")
            runs["pipeline"].append(bench_pipeline(vae, encoders, backend, split, buckets, args, model_dtype,
                                                   storage_dtype, backend.vae_dir, profile == "pipeline"))
            log(f"    {rate(runs['pipeline'][-1]):.2f} images/s")
            if "naive" not in args.skip:
                log(f"{tag}naive per-image loop on {args.naive_images} images")
                naive = bench_naive(vae, backend, split, buckets, args, storage_dtype, run_dir / "naive")
                runs["naive"].append(naive)
                log(f"    {rate(naive):.2f} images/s")
                if check is None:
                    check = agreement(backend, run_dir / "naive", naive["filenames"])
            if "decode" not in args.skip:
                log(f"{tag}decode only")
                runs["decode"].append(bench_decode_only(backend, split, buckets, args))
                log(f"    {rate(runs['decode'][-1]):.2f} images/s")
            if "null" not in args.skip:
                log(f"{tag}pipeline with a null VAE")
                runs["null"].append(bench_pipeline(null_vae, encoders, backend, split, buckets, args, model_dtype,
                                                   storage_dtype, run_dir / "null_cache", profile == "null"))
                log(f"    {rate(runs['null'][-1]):.2f} images/s")
        bare, pipe, naive, decode, null = (best(runs[s]) for s in ("bare", "pipeline", "naive", "decode", "null"))
        info = machine_info(args.device)
        text = render(args, info, vae_desc, params_m, buckets_summary, bare, pipe, naive, decode, null, check,
                      command, runs, batch_fill(buckets, args.batch))
    finally:
        if args.keep:
            log(f"kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        clean = {name: [{k: v for k, v in r.items() if k != "filenames"} for r in results]
                 for name, results in runs.items()}
        figures = {"args": {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                            for k, v in vars(args).items()},
                   "machine": info, "command": command, "runs": clean,
                   "best_images_per_s": {name: rate(best(results)) if results else None
                                         for name, results in runs.items()}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
