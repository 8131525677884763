"""VAE encode throughput, side by side in one process: the bare VAE forward (eager NCHW, eager channels-last,
compiled) vs the real pipeline (eager and compiled; Pillow and nvJPEG decode) vs a naive loop.

    python -m bench.bench_encode [--device auto|cpu|cuda] [--resolution R] [--aspect square|mixed]
                                 [--compile auto|off|MODE] [--decode pillow,nvjpeg] [--batch B] [--images N] ...

The stages, the data and the ratios are described in bench/README.md; the modules are encode_data (the images and
their buckets), encode_stages (what is timed), encode_diagnostics (decode-only, FLOPs, the decode paths compared)
and encode_report (the table). The markdown goes to stdout (and --out; --json for the figures, rewritten after
every stage so that a run stopped early still leaves them); progress goes to stderr. A stage that fails or does
not fit --time-budget is a line of the table, not the end of the run.
"""

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from bench import encode_data, encode_diagnostics, encode_stages
from bench.encode_report import STAGES, EncodeResults, machine_info, rate, render
from hf_assets import env

# The order stages run in (the table keeps STAGES' order): under a time budget the figures the targets are stated in
# come first, the known-slower layout and the diagnostics last.
PRIORITY = (
    "bare_nchw",
    "bare_compiled",
    "pipeline_compiled_pillow",
    "naive",
    "pipeline_eager_pillow",
    "pipeline_compiled_nvjpeg",
    "pipeline_eager_nvjpeg",
    "decode_pillow",
    "decode_nvjpeg",
    "bare_channels_last",
    "null",
)


def log(message: str) -> None:
    print(f"[bench_encode {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_encode",
        description="Bare VAE forward (eager, channels-last, compiled) vs update_latents vs a naive loop, in one "
        "process.",
    )
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    p.add_argument("--resolution", type=int, default=None, help="R: targets of about R*R pixels (cuda 512, cpu 256)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"], help="VAE dtype (cuda bf16, cpu fp32)")
    p.add_argument(
        "--latent-dtype", default=None, choices=["fp32", "bf16", "fp16"], help="stored (cuda bf16, cpu fp32)"
    )
    p.add_argument("--batch", type=int, default=0, help="B images per forward; 0 (default): the encoder's automatic")
    p.add_argument("--images", type=int, default=None, help="N distinct images (cuda 512, or 160 above 512; cpu 16)")
    p.add_argument("--naive-images", type=int, default=None, help="images for the naive loop (default N, at most 32)")
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
    p.add_argument("--aspects", default=None, help="mixed: comma list of aspect ratios (default: 12 from 0.5 to 2)")
    p.add_argument("--jitter", type=float, default=0.03, help="relative spread of each image's aspect (0: exact)")
    p.add_argument("--workers", type=int, default=0, help="decode threads; 0 (default): the encoder's from the cores")
    p.add_argument(
        "--compile", default="auto", help="the compiled stages' mode: auto (cuda default, cpu off), off, MODE"
    )
    p.add_argument("--decode", default=None, help="comma list of decode paths for the pipeline (cuda pillow,nvjpeg)")
    p.add_argument("--decode-standin", action="store_true", help="nvjpeg path with Pillow's decode (CPU comparisons)")
    p.add_argument("--compile-cache", default="", help="compiled graphs' folder (default the encoder's)")
    p.add_argument("--warmup", type=int, default=None, help="untimed bare calls per size first (cuda 3, cpu 1)")
    p.add_argument("--bare-iters", type=int, default=None, help="timed bare calls per size (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--stages", default="", help="comma list of stages to run (default all): " + ", ".join(STAGES))
    p.add_argument("--skip", default="", help="comma list of stages (or naive, decode, null, nvjpeg) to skip")
    p.add_argument("--repeat", type=int, default=1, help="run every stage K times, interleaved; report the fastest")
    p.add_argument("--time-budget", type=float, default=0, help="seconds; stages that would start later are skipped")
    p.add_argument("--profile", default=None, help="cProfile this pipeline stage's main thread (e.g. null)")
    p.add_argument("--keep", action="store_true", help="keep the run folder (caches, naive files)")
    p.add_argument("--work-dir", type=Path, default=encode_data.DEFAULT_WORK_DIR, help="data, VAEs and runs")
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from hf_assets.cores import usable_cores
    from hf_assets.encode.compiled import resolve_compile
    from hf_assets.encode.decode_workers import default_decode_workers
    from hf_assets.encode.encoder_set import resolve_device

    try:
        args.device = resolve_device(args.device)
        args.compile = resolve_compile(args.compile, args.device)
    except ValueError as error:
        p.error(str(error))
    cuda = args.device.type == "cuda"
    if args.vae == "tiny" and cuda:
        log("note: --vae tiny on cuda measures launch overhead, not a real VAE")
    args.resolution = args.resolution or (512 if cuda else 256)
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    args.latent_dtype = args.latent_dtype or ("bf16" if cuda else "fp32")
    args.images = args.images or ((160 if args.resolution > 512 else 512) if cuda else 16)
    args.naive_images = min(args.naive_images or 32, args.images)
    args.workers = args.workers or default_decode_workers(usable_cores(), 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    args.bare_iters = args.bare_iters or 3
    args.decode = [d.strip() for d in (args.decode or ("pillow,nvjpeg" if cuda else "pillow")).split(",") if d.strip()]
    args.aspects = tuple(float(a) for a in args.aspects.split(",")) if args.aspects else encode_data.ASPECTS
    args.stages = {s.strip() for s in args.stages.split(",") if s.strip()} or set(STAGES)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.resolution % 64:
        p.error(f"--resolution {args.resolution}: use a multiple of 64")
    return args


def wanted(args, name: str) -> bool:
    """Whether stage `name` runs: chosen by --stages and not skipped by --skip (a stage or a word of its name)."""
    return name in args.stages and not (args.skip & {name, *name.split("_")})


def stages_to_run(args, results: EncodeResults, vae, encoders, data, settings, run_dir: Path) -> list:
    """(name, run(round) -> figures) of every stage to run, in the table's order."""
    from hf_assets.encode.vae_runner import runner_for

    mix = encode_stages.shape_mix(data.buckets)

    def runner(layout: str, compile: str = "off"):
        return runner_for(vae, layout, compile, settings.batch, log, args.compile_cache)

    def bare(layout: str, compile: str = "off"):
        return lambda k: encode_stages.bench_bare(runner(layout, compile), mix, args.warmup if k == 0 else 1, iters)

    def pipeline(name: str, compile: str, decode: str):
        job = settings.job(compile=compile, memory_format="nchw", decode=decode)
        profile = args.profile == name
        return lambda k: encode_stages.bench_pipeline(
            vae, encoders, data, settings, job, run_dir / name, profile and k == 0
        )

    iters = args.bare_iters
    stages = [("bare_nchw", bare("nchw")), ("bare_channels_last", bare("channels_last"))]
    if args.compile != "off":
        stages.append(("bare_compiled", bare("nchw", args.compile)))
    modes = [("eager", "off")] + ([("compiled", args.compile)] if args.compile != "off" else [])
    default_mode = modes[-1]
    for decode in args.decode:
        for mode, compile in modes if decode == "pillow" else [default_mode]:
            stages.append((f"pipeline_{mode}_{decode}", pipeline(f"pipeline_{mode}_{decode}", compile, decode)))
    stages.append(("naive", lambda k: encode_stages.bench_naive(vae, data, settings, run_dir / "naive")))
    for decode in args.decode:
        stages.append((f"decode_{decode}", lambda k, d=decode: encode_diagnostics.bench_decode_only(data, settings, d)))
    null_vae = encode_stages.NullVAE(encoders.vae_config(), args.device, settings.model_dtype)
    null_job = settings.job()
    stages.append(
        (
            "null",
            lambda k: encode_stages.bench_pipeline(
                null_vae, encoders, data, settings, null_job, run_dir / "null", args.profile == "null" and k == 0
            ),
        )
    )
    stages = [(name, run) for name, run in stages if wanted(args, name)]
    return sorted(stages, key=lambda stage: PRIORITY.index(stage[0]) if stage[0] in PRIORITY else len(PRIORITY))


def run_stages(args, results: EncodeResults, stages: list, started: float, save) -> None:
    """Every stage `--repeat` times, interleaved; a failure or an exhausted time budget is recorded, not raised."""
    for k in range(args.repeat):
        tag = f"[{k + 1}/{args.repeat}] " if args.repeat > 1 else ""
        for name, stage in stages:
            spent = time.monotonic() - started
            if args.time_budget and spent > args.time_budget:
                results.problems.setdefault(name, f"skipped: the {args.time_budget:.0f} s time budget was spent")
                continue
            log(f"{tag}{name}")
            try:
                results.runs[name].append(stage(k))
            except Exception as error:  # noqa: BLE001 - one failed stage is a line of the table
                traceback.print_exc(file=sys.stderr)
                first = (str(error).splitlines() or [""])[0][:160]
                results.problems[name] = f"error: {type(error).__name__}: {first}"
                if args.device.type == "cuda":
                    torch.cuda.empty_cache()
                save()
                continue
            log(f"    {rate(results.runs[name][-1]):.2f} images/s")
            save()


def main(argv=None) -> int:
    os.environ.setdefault(env.HUB_OFFLINE, "1")
    started = time.monotonic()
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.decode_standin:
        from hf_assets.encode import gpu_decode

        gpu_decode.torchvision_decode = lambda: encode_diagnostics.stored_pixels
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join([Path(sys.executable).name, "-m", "bench.bench_encode", *given])
    from hf_assets.encode.model_loading import as_dtype

    settings = encode_stages.StageSettings(
        args.device,
        args.batch,
        args.workers,
        as_dtype(args.dtype),
        as_dtype(args.latent_dtype),
        args.naive_images,
        args.compile,
    )
    folder, vae_desc = encode_stages.vae_folder(args.vae, args.work_dir, log)
    encoders = encode_stages.load_encoders(folder, args.device, settings.model_dtype, log)
    vae = encoders.vae()
    encode_stages.sync(args.device)
    log(f"VAE loaded from {folder}")
    encoder_parts = [m for m in (getattr(vae, "encoder", None), getattr(vae, "quant_conv", None)) if m is not None]
    parameters = (
        sum(p.numel() for p in vae.parameters()) / 1e6,
        sum(p.numel() for m in encoder_parts for p in m.parameters()) / 1e6,
    )
    aspects = args.aspects if args.aspect == "mixed" else encode_data.ASPECTS
    dataset = encode_data.bench_dataset(
        args.images, args.resolution, args.seed, args.work_dir, log, aspects, args.jitter
    )
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
            compile=args.compile,
            warmup=args.warmup,
            bare_iters=args.bare_iters,
            images=data.buckets.num_rows,
            vae=vae_desc,
            parameters_m=parameters,
            sizes=encode_data.size_summary(data.buckets),
            fill=encode_data.batch_fill(data.buckets, args.batch or 8) if args.batch else "automatic batches",
            machine=machine_info(args.device),
        )

        def save() -> None:
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results.as_json(), indent=2, default=str) + "\n")

        stages = stages_to_run(args, results, vae, encoders, data, settings, run_dir)
        run_stages(args, results, stages, started, save)
        encode_diagnostics.run_all(args, results, vae, data, settings, run_dir, log)
        results.machine = machine_info(args.device)
        save()
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
