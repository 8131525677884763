"""Shard scaling: the same latent plan encoded by 1 worker process and by N worker processes, side by side.

Each worker is a process encoding whole shards (what one Dagster step does), with one torch thread on CPU or one GPU
each (`--device cuda`: worker i uses cuda:i). The ratio is throughput(N) / throughput(1) on the same plan.

    .venv/bin/python -m bench.bench_scaling --images 160 --workers 1 2          # CPU, tiny VAE
    bash bench/gpu_scaling.sh                                                  # every GPU of the machine
"""

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def _encode_shards(args: tuple) -> tuple[int, float, float]:
    """Worker process: encode the given shards of the plan; (latents encoded, loop start, loop end) in epoch s."""
    plan_dict, shards, model, device, config_path, batch, barrier = args
    import torch

    torch.set_num_threads(1)
    from hf_assets.config.loader import load_config
    from hf_assets.data.sources import open_split
    from hf_assets.encode.encoder_set import Encoders
    from hf_assets.encode.engine_types import LatentPlan
    from hf_assets.encode.image_media import IMAGES
    from hf_assets.encode.latents_shard import encode_shard

    backend = load_config(config_path).backends[0]
    split = open_split(backend)
    encoders = Encoders(model, device=torch.device(device))
    vae = encoders.vae()  # loaded before timing: a step loads its model once, whatever its shard count
    plan = LatentPlan.from_dict(plan_dict)
    barrier.wait()  # every worker has started and loaded its model: they begin encoding together
    started = time.time()
    encoded = sum(
        encode_shard(
            plan,
            k,
            split,
            lambda: vae,
            IMAGES,
            log=lambda _m: None,
        ).encoded
        for k in shards
    )
    return encoded, started, time.time()


def run(workers: int, prepared, model: str, device: str, out: Path, shards: int, batch: int) -> tuple[int, float]:
    """Plan into a fresh cache, encode its shards on `workers` processes at once; (encoded, wall seconds)."""
    from hf_assets.encode.encoder_set import Encoders
    from hf_assets.encode.engine_types import EncodeSettings, LatentSettings
    from hf_assets.encode.image_media import IMAGES, wanted_latents
    from hf_assets.encode.latents_plan import plan_latents

    cache = out / f"cache-{workers}"
    shutil.rmtree(cache, ignore_errors=True)
    settings = LatentSettings(Encoders(model).vae_identity(), "torch.float32", "torch.float32")
    wanted = wanted_latents(prepared.buckets, prepared.split, prepared.backend.image_column, settings)
    job = EncodeSettings(batch_size=batch, decode_workers=1)
    plan = plan_latents(
        wanted,
        cache,
        shards,
        media=IMAGES,
        column=prepared.backend.image_column,
        settings=job,
        meta={},
        log=lambda _m: None,
    )
    groups = [plan.busy_shards[i::workers] for i in range(workers)]
    devices = [f"cuda:{i}" if device == "cuda" else "cpu" for i in range(workers)]
    context = mp.get_context("spawn")
    with context.Manager() as manager, context.Pool(workers) as pool:
        barrier = manager.Barrier(workers)
        jobs = [(plan.to_dict(), g, model, d, str(prepared.config), batch, barrier) for g, d in zip(groups, devices)]
        results = pool.map(_encode_shards, jobs, chunksize=1)
    # pool start-up (imports, model load: once per step process) is left out: from the first worker's first batch
    # to the last worker's last one
    return sum(r[0] for r in results), max(r[2] for r in results) - min(r[1] for r in results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=160)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=2, help="rounds of the worker counts, alternated")
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--model", default="", help="a diffusers pipeline folder (default: the tiny SDXL pipeline)")
    p.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "out" / "scaling")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bench.encode_data import bench_dataset, prepare
    from bench.machine import cpu_model

    args.work_dir.mkdir(parents=True, exist_ok=True)
    model = args.model
    if not model:
        from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

        model = str(args.work_dir / "tiny_sdxl")
        if not Path(model, "model_index.json").is_file():
            build_tiny_pipeline(Path(model), "sdxl", seed=0)
    data = bench_dataset(args.images, args.resolution, 0, args.work_dir, print)
    opened = prepare(args.work_dir, data, args.resolution, "square")
    prepared = SimpleNamespace(**opened._asdict(), config=args.work_dir / "dataloader.json")

    best: dict[int, tuple] = {}
    for round_ in range(args.repeats):
        for workers in args.workers:
            encoded, seconds = run(workers, prepared, model, args.device, args.work_dir, args.shards, args.batch)
            print(
                f"round {round_ + 1}, {workers} worker(s): {encoded} latents in {seconds:.2f}s = "
                f"{encoded / seconds:.1f} img/s",
                flush=True,
            )
            if workers not in best or seconds < best[workers][2]:
                best[workers] = (workers, encoded, seconds, encoded / seconds)
    rows = [best[w] for w in args.workers]
    base = rows[0][3]
    print("\nbest of the rounds for each worker count:")
    print(f"\n| workers | latents | seconds (first batch to last, all workers) | img/s | scaling vs {rows[0][0]} |")
    print("|---|---|---|---|---|")
    for workers, encoded, seconds, rate in rows:
        print(f"| {workers} | {encoded} | {seconds:.2f} | {rate:.1f} | {rate / base:.2f}x |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nmachine: {cpu_model()}, {os.cpu_count()} cores, load average {load:.1f} at the end; "
        f"device {args.device}; {args.images} images at {args.resolution}^2, {args.shards} shards, "
        f"batch {args.batch}, "
        "1 torch thread and 1 decode thread per worker"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
