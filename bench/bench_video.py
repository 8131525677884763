"""Video encode throughput, side by side in one process: a bare video-VAE forward vs the whole clip pipeline.

    python -m bench.bench_video [--device auto|cpu|cuda] [--vae tiny|wan] [--dtype fp32|bf16]
                                [--width W] [--height H] [--frames T] [--clips N] [--batch B] [--workers K] [--repeat R]

Stages (the same VAE, the same clip shape, one process):

1. bare VAE forward: a (B, 3, T, H, W) tensor already on the device, `encode_clips` in a loop after a warm-up
   -> the ceiling for this VAE, dtype, batch and device.
2. pipeline: N distinct H.264 clips (PyAV-encoded, T frames at W x H) in a Hub-style Parquet dataset -> config,
   filtered index (stream headers), buckets, frames -> `wanted_video_latents` (not timed) -> `engine.update_latents`
   into a fresh cache (timed; the VAE is already loaded): PyAV decode + LANCZOS resize/crop on prefetch threads,
   batches of one (size, frame count), slicing/tiling where the VAE offers it, safetensors shards, manifest commit.

Reported: clips/s and frames/s of each, and pipeline / bare (the share of the VAE's ceiling the pipeline reaches).
--vae tiny: the tiny random-weight AutoencoderKLWan of build_tiny_pipeline (a smoke test of the machinery on CPU);
--vae wan: AutoencoderKLWan with Wan 2.1's real architecture (base_dim 96, z_dim 16) and random weights, for GPUs.
Clip T is trimmed to the VAE's rule (T % 4 == 1) by the pipeline; give such a T so both stages see the same frames.
"""

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import cpu_model  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--vae", choices=["tiny", "wan"], default=None, help="default: tiny on cpu, wan on cuda")
    p.add_argument("--dtype", default=None, help="default: fp32 on cpu, bf16 on cuda")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--clips", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="run both stages this many times, interleaved; best kept")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "video", help="models, clips and runs go here")
    args = p.parse_args(argv)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    args.device = "cuda" if cuda else "cpu"
    defaults = (
        dict(vae="wan", dtype="bf16", width=832, height=480, frames=33, clips=16, batch=1)
        if cuda
        else dict(vae="tiny", dtype="fp32", width=128, height=96, frames=17, clips=8, batch=2)
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_model(kind: str, folder: Path) -> Path:
    """A pipeline folder whose vae/ is the tiny Wan VAE or Wan 2.1's architecture, random weights (built once)."""
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    target = folder / f"wan-{kind}"
    if not (target / "model_index.json").is_file():
        build_tiny_pipeline(target, "wan")
        if kind == "wan":
            from diffusers import AutoencoderKLWan

            shutil.rmtree(target / "vae")
            torch.manual_seed(0)
            AutoencoderKLWan().save_pretrained(target / "vae")  # Wan 2.1's defaults: the real architecture
    return target


def clip_dataset(folder: Path, args) -> Path:
    """N distinct clips of W x H x T as a Hub-style Parquet dataset (cached by shape)."""
    import datasets

    from examples.demo_clips import encode_clip

    target = folder / f"clips-{args.width}x{args.height}x{args.frames}-{args.clips}"
    if not (target / "data" / "train.parquet").is_file():
        log(f"encoding {args.clips} clips of {args.width}x{args.height}x{args.frames} with PyAV ...")
        rows = {
            "video": [encode_clip(args.width, args.height, args.frames, seed=i) for i in range(args.clips)],
            "caption": [f"clip {i}" for i in range(args.clips)],
        }
        (target / "data").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows).to_parquet(str(target / "data" / "train.parquet"))
    return target


def prepare(data: Path, args, run_dir: Path):
    from hf_assets.config import parse_config
    from hf_assets.data.buckets import assign_buckets
    from hf_assets.data.frame_selection import assign_frames
    from hf_assets.data.index import build_filtered_index
    from hf_assets.data.sources import open_split

    entry = {
        "id": "bench",
        "type": "huggingface",
        "dataset_type": "video",
        "dataset_name": str(data),
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "image_column": "video",
        "caption_column": "caption",
        "resolution": min(args.width, args.height),
        "resolution_type": "pixel",
        "aspect_bucket_alignment": 16,
        "cache_dir": str(run_dir),
    }
    backend = parse_config([entry], run_dir / "dataloader.json").backends[0]
    split = open_split(backend)
    index, _ = build_filtered_index(split, backend)
    return backend, split, assign_frames(assign_buckets(index, backend.buckets, backend.id), backend.video)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench_bare(vae, args, shape) -> dict:
    from hf_assets.encode.video_vae import encode_clips, prepare_video_vae

    prepare_video_vae(vae, tiled=True)
    param = next(vae.parameters())
    x = torch.rand((args.batch, 3, *shape), device=param.device, dtype=param.dtype) * 2 - 1
    encode_clips(vae, x)  # warm-up
    sync(args.device)
    started, done = time.perf_counter(), 0
    while done < args.clips:
        encode_clips(vae, x)
        done += args.batch
    sync(args.device)
    return {"clips": done, "seconds": time.perf_counter() - started}


def bench_pipeline(vae, models, backend, split, buckets, args, directory: Path) -> dict:
    from hf_assets.encode.clip_media import CLIPS, CLIPS_PER_IMAGE_BATCH, video_factors_for, wanted_video_latents
    from hf_assets.encode.engine import update_latents
    from hf_assets.encode.engine_types import EncodeSettings, LatentSettings

    factors = video_factors_for(models)
    settings = LatentSettings(models.vae_identity(), str(vae.dtype), str(vae.dtype))
    wanted = wanted_video_latents(buckets, split, "video", settings, factors, tiled=True)
    sync(args.device)
    started = time.perf_counter()
    dtype = str(vae.dtype)  # a clip batch is a quarter of the image batch size: ask for args.batch clips
    job = EncodeSettings(args.batch * CLIPS_PER_IMAGE_BATCH, args.workers, model_dtype=dtype, latent_dtype=dtype)
    report = update_latents(wanted, split, "video", lambda: vae, directory, factors, job, CLIPS, log=lambda m: None)
    sync(args.device)
    return {"clips": report.encoded, "seconds": time.perf_counter() - started, "dropped": len(report.dropped)}


def main(argv=None) -> int:
    args = parse_args(argv)
    from hf_assets.encode.encoder_set import Encoders
    from hf_assets.encode.model_loading import as_dtype

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(args.vae, out)
    models = Encoders(str(model), device=torch.device(args.device), dtype=as_dtype(args.dtype), log=log)
    vae = models.vae()
    data = clip_dataset(out, args)
    run_root = Path(tempfile.mkdtemp(dir=out, prefix="run-"))
    try:
        backend, split, buckets = prepare(data, args, run_root)
        row = buckets.to_pylist()[0]
        frames = (row["frames"] - 1) // 4 * 4 + 1
        shape = (frames, row["target_height"], row["target_width"])
        bare = pipe = None
        for r in range(args.repeat):
            log(f"round {r + 1}: bare forward ...")
            b = bench_bare(vae, args, shape)
            log(f"round {r + 1}: pipeline ...")
            p = bench_pipeline(vae, models, backend, split, buckets, args, run_root / f"cache-{r}")
            bare = b if bare is None or b["seconds"] / b["clips"] < bare["seconds"] / bare["clips"] else bare
            pipe = p if pipe is None or p["seconds"] / p["clips"] < pipe["seconds"] / pipe["clips"] else pipe
    finally:
        shutil.rmtree(run_root, ignore_errors=True)
    rate = {k: v["clips"] / v["seconds"] for k, v in (("bare", bare), ("pipeline", pipe))}
    cpu = f"{cpu_model()}, {torch.get_num_threads()} threads"
    device = torch.cuda.get_device_name() if args.device == "cuda" else cpu
    print("| stage | clips/s | frames/s | clips | seconds |\n|---|---|---|---|---|")
    for name, stage in (("bare VAE forward", bare), ("pipeline (decode + encode + cache)", pipe)):
        r = stage["clips"] / stage["seconds"]
        print(f"| {name} | {r:.3f} | {r * frames:.1f} | {stage['clips']} | {stage['seconds']:.2f} |")
    print(
        f"\npipeline / bare: **{rate['pipeline'] / rate['bare']:.2f}**; clips {row['source_width']}x"
        f"{row['source_height']}x{row['num_frames']} -> {shape[2]}x{shape[1]}x{shape[0]}, VAE {args.vae} "
        f"({sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M params), {args.dtype}, batch {args.batch}, "
        f"{args.workers} decode threads, best of {args.repeat}; {device}; torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
