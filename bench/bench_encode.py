"""VAE encode throughput, side by side in one process: bare VAE forward vs the real pipeline vs a naive loop.

    python -m bench.bench_encode [--device auto|cpu|cuda] [--resolution R] [--dtype fp32|bf16|fp16]
                                 [--batch B] [--images N] [--vae FOLDER|tiny] [--aspect square|mixed] ...

The stages, the data and the ratios are described in bench/README.md; the modules are encode_data (the images and
their buckets), encode_stages (what is timed) and encode_report (the table). The markdown goes to stdout (and
--out; --json for the raw figures); progress goes to stderr.
"""

import argparse
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import encode_data, encode_stages
from bench.encode_report import EncodeResults, machine_info, rate, render
from hf_assets import env


def log(message: str) -> None:
    print(f"[bench_encode {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_encode",
        description="Bare VAE forward vs update_latents vs a naive per-image loop, in one process.",
    )
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    p.add_argument("--resolution", type=int, default=None, help="R: targets of about R*R pixels (cuda 512, cpu 256)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"], help="VAE dtype (cuda bf16, cpu fp32)")
    p.add_argument(
        "--latent-dtype",
        default=None,
        choices=["fp32", "bf16", "fp16"],
        help="stored latent dtype (as the encoder resource: cuda bf16, cpu fp32)",
    )
    p.add_argument("--batch", type=int, default=None, help="B, the VAE batch size (cuda 16, or 4 above 512; cpu 4)")
    p.add_argument("--images", type=int, default=None, help="N distinct images (cuda 512, or 160 above 512; cpu 16)")
    p.add_argument("--naive-images", type=int, default=None, help="images for the naive loop (default N)")
    p.add_argument(
        "--vae",
        default=None,
        help="a diffusers pipeline folder or AutoencoderKL folder; 'tiny' for build_tiny_pipeline's VAE; "
        "default: real SD/SDXL architecture with random weights",
    )
    p.add_argument(
        "--aspect",
        default="square",
        choices=["square", "mixed"],
        help="square: every target is R x R (crop_aspect square); mixed: aspect buckets of ~R*R pixels",
    )
    p.add_argument("--workers", type=int, default=4, help="decode threads of update_latents (the resource's: 4)")
    p.add_argument("--warmup", type=int, default=None, help="untimed bare iterations first (cuda 5, cpu 1)")
    p.add_argument("--bare-iters", type=int, default=None, help="timed bare iterations (default ceil(N/B), >= 3)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--bare-nchw", action="store_true", help="also time the bare forward on a contiguous NCHW tensor")
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="vae.to(memory_format=torch.channels_last) for all stages (not what the pipeline does)",
    )
    p.add_argument("--skip", default="", help="comma list of stages to skip: naive, decode, null")
    p.add_argument("--repeat", type=int, default=1, help="run every stage K times, interleaved; report the fastest")
    p.add_argument(
        "--profile",
        default=None,
        choices=["pipeline", "null"],
        help="cProfile update_latents' main thread in the first repeat; top functions to stderr",
    )
    p.add_argument("--keep", action="store_true", help="keep the run folder (caches, naive files)")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=encode_data.DEFAULT_WORK_DIR,
        help="generated data, VAE folders and run folders (default: bench/out/encode)",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from hf_assets.encode.encoders import resolve_device

    try:
        args.device = resolve_device(args.device)
    except ValueError as error:
        p.error(str(error))
    cuda, tiny = args.device.type == "cuda", args.vae == "tiny"
    if tiny and cuda:
        log("note: --vae tiny on cuda measures launch overhead, not a real VAE")
    args.resolution = args.resolution or (512 if cuda else 256)
    big = args.resolution > 512
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    args.latent_dtype = args.latent_dtype or ("bf16" if cuda else "fp32")
    args.batch = args.batch or ((4 if big else 16) if cuda else (8 if tiny else 4))
    args.images = args.images or ((160 if big else 512) if cuda else (32 if tiny else 16))
    args.naive_images = min(args.naive_images or args.images, args.images)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    args.bare_iters = args.bare_iters or max(3, math.ceil(args.images / args.batch))
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.resolution % 64:
        p.error(f"--resolution {args.resolution}: use a multiple of 64")
    return args


def run_stages(args, results: EncodeResults, vae, encoders, data, settings, run_dir: Path) -> None:
    """Every stage `--repeat` times, interleaved, into results.runs."""
    null_vae = encode_stages.NullVAE(encoders.vae_config(), args.device, settings.model_dtype)
    for k in range(args.repeat):
        tag = f"[{k + 1}/{args.repeat}] " if args.repeat > 1 else ""
        profile = args.profile if k == 0 else None
        stages = [
            (
                "bare",
                lambda k=k: encode_stages.bench_bare(
                    vae, settings, args.resolution, args.warmup if k == 0 else min(args.warmup, 1), args.bare_iters
                ),
            )
        ]
        if args.bare_nchw:
            stages.append(
                (
                    "bare_nchw",
                    lambda: encode_stages.bench_bare(
                        vae, settings, args.resolution, min(args.warmup, 1), args.bare_iters, nchw=True
                    ),
                )
            )
        stages.append(
            (
                "pipeline",
                lambda p=profile: encode_stages.bench_pipeline(
                    vae, encoders, data, settings, data.backend.vae_dir, p == "pipeline"
                ),
            )
        )
        if "naive" not in args.skip:
            stages.append(("naive", lambda: encode_stages.bench_naive(vae, data, settings, run_dir / "naive")))
        if "decode" not in args.skip:
            stages.append(("decode", lambda: encode_stages.bench_decode_only(data, settings)))
        if "null" not in args.skip:
            stages.append(
                (
                    "null",
                    lambda p=profile: encode_stages.bench_pipeline(
                        null_vae, encoders, data, settings, run_dir / "null_cache", p == "null"
                    ),
                )
            )
        for name, stage in stages:
            log(f"{tag}{name}")
            results.runs[name].append(stage())
            log(f"    {rate(results.runs[name][-1]):.2f} images/s")
            if name == "naive" and results.agreement is None:
                names = results.runs["naive"][-1]["filenames"]
                results.agreement = encode_stages.agreement(data.backend.vae_dir, run_dir / "naive", names)


def main(argv=None) -> int:
    os.environ.setdefault(env.HUB_OFFLINE, "1")
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join([Path(sys.executable).name, "-m", "bench.bench_encode", *given])
    from hf_assets.encode.models import as_dtype

    settings = encode_stages.StageSettings(
        args.device, args.batch, args.workers, as_dtype(args.dtype), as_dtype(args.latent_dtype), args.naive_images
    )
    folder, vae_desc = encode_stages.vae_folder(args.vae, args.work_dir, log)
    encoders = encode_stages.load_encoders(folder, args.device, settings.model_dtype, log)
    started = time.perf_counter()
    vae = encoders.vae()
    if args.channels_last:
        vae = vae.to(memory_format=torch.channels_last)
    encode_stages.sync(args.device)
    log(f"VAE loaded from {folder} in {time.perf_counter() - started:.1f}s")
    encoder_parts = [m for m in (getattr(vae, "encoder", None), getattr(vae, "quant_conv", None)) if m is not None]
    parameters = (
        sum(p.numel() for p in vae.parameters()) / 1e6,
        sum(p.numel() for m in encoder_parts for p in m.parameters()) / 1e6,
    )

    dataset = encode_data.bench_dataset(args.images, args.resolution, args.seed, args.work_dir, log)
    (args.work_dir / "runs").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=args.work_dir / "runs"))
    try:
        data = encode_data.prepare(run_dir, dataset, args.resolution, args.aspect)
        if data.buckets.num_rows != args.images:
            log(f"warning: {data.buckets.num_rows} of {args.images} images survived filtering and bucketing")
        results = EncodeResults(
            command=command,
            device=args.device,
            resolution=args.resolution,
            aspect=args.aspect,
            dtype=args.dtype,
            latent_dtype=args.latent_dtype,
            batch=args.batch,
            workers=args.workers,
            warmup=args.warmup,
            bare_iters=args.bare_iters,
            images=args.images,
            channels_last=args.channels_last,
            vae=vae_desc,
            parameters_m=parameters,
            sizes=encode_data.size_summary(data.buckets),
            fill=encode_data.batch_fill(data.buckets, args.batch),
            machine={},
        )
        run_stages(args, results, vae, encoders, data, settings, run_dir)
        results.machine = machine_info(args.device)
        text = render(results)
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
        import json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results.as_json(), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
