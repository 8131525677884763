"""The encode benchmark's diagnostics: can the decode path feed the device (Pillow threads, nvJPEG), how far the
forward is from the device's arithmetic limit (the VAE's FLOPs, a measured matmul peak), and how far nvJPEG's
pixels and latents are from Pillow's."""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.encode_data import Prepared
from bench.encode_stages import StageSettings, agreement, shape_mix, timed


def decode_records(data: Prepared, limit: int | None = None) -> tuple[list[dict], list]:
    """The bucket table's records, sorted by size as the encoder batches them, with each row's image bytes."""
    from hf_assets.encode.image_source import iter_images

    table = data.buckets.sort_by([("target_height", "ascending"), ("target_width", "ascending")])
    if limit is not None:
        table = table.slice(0, limit)
    records = table.to_pylist()
    return records, list(iter_images(data.split, data.backend.image_column, table.column("row").to_numpy()))


def boxes(record: dict) -> tuple[tuple, tuple, tuple]:
    """(tile box, resize size, crop box) of a bucket-table record, as load_pixels takes them."""
    tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
    left, top = record["crop_left"], record["crop_top"]
    crop = (left, top, left + record["target_width"], top + record["target_height"])
    return tile, (record["resize_width"], record["resize_height"]), crop


def bench_decode_only(data: Prepared, settings: StageSettings, decode: str = "pillow") -> dict:
    """The encoder's decode path without a VAE: `prefetch` threads running load_pixels (pillow) or reading JPEG
    headers for the device decoder (nvjpeg), batches of one size stacked as the encoder stacks them."""
    from hf_assets.encode.decode_workers import prefetch_depth
    from hf_assets.encode.gpu_decode import DeviceDecoder, prepare_decode
    from hf_assets.encode.images import load_pixels
    from hf_assets.encode.overlap import stack_host
    from hf_assets.encode.prefetch import prefetch

    records, sources = decode_records(data)
    decoder = DeviceDecoder(settings.device) if decode == "nvjpeg" else None
    batch = settings.batch or 8
    read = prepare_decode if decoder is not None else load_pixels

    def load(job):
        record, source = job
        return read(source, *boxes(record))

    def flush(items: list) -> None:
        if decoder is not None:
            torch.stack(decoder(items))
        else:
            stack_host(items, pin=settings.device.type == "cuda")

    def run() -> dict:
        images, pending, shape = 0, [], None
        depth = prefetch_depth(batch, settings.workers)
        for item in prefetch(zip(records, sources), load, workers=settings.workers, max_in_flight=depth):
            if not item.ok:
                continue
            size = (item.job[0]["target_width"], item.job[0]["target_height"])
            if pending and (len(pending) == batch or size != shape):
                flush(pending)
                pending = []
            pending.append(item.value)
            shape = size
            images += 1
        if pending:
            flush(pending)
        return {"images": images}

    return {**timed(settings.device, run), "decode": decode}


def stored_pixels(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """A CPU stand-in for nvJPEG (`--decode-standin`): Pillow's decode of the stored pixels, no EXIF turn, as
    uint8 (3, H, W). With it the device path's orientation, crops and resize run and can be compared on CPU."""
    images = []
    for data in datas:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
            pixels = np.array(img.convert("RGB"))
        images.append(torch.from_numpy(pixels).permute(2, 0, 1).contiguous().to(device))
    return images


def flops_per_image(runner, mix: list[tuple[tuple[int, int], int]]) -> dict[str, float]:
    """FLOPs of one image's encoder forward at each target size (torch's FLOP counter: convolutions and matrix
    products), counted on the runner's device at batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    for (width, height), _ in mix:
        pixels = runner.pixels(torch.zeros((1, height, width, 3), dtype=torch.uint8))
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            runner._moments(pixels)
        flops[f"{width}x{height}"] = float(counter.get_total_flops())
    return flops


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """TFLOP/s of a large matrix product in `dtype` on `device`: the arithmetic ceiling the forward is held to."""
    cuda = device.type == "cuda"
    size, iters = (8192, 10) if cuda else (2048, 2)
    if not cuda:
        dtype = torch.float32  # CPU bf16 products are emulated: fp32 is the CPU's ceiling
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=dtype, generator=gen)
    b = torch.randn(size, size, device=device, dtype=dtype, generator=gen)
    for _ in range(3):
        a @ b
    rounds = [timed(device, lambda: [a @ b for _ in range(iters)] and {})["seconds"] for _ in range(3)]
    return 2 * size**3 * iters / min(rounds) / 1e12  # the best round: other work on the machine only slows it


def decode_agreement(data: Prepared, device: torch.device, limit: int = 16) -> dict:
    """PSNR of the device decode path's pixels against Pillow's over the first `limit` images (JPEGs the device
    decodes; other formats are Pillow's on both paths)."""
    from hf_assets.encode.gpu_decode import DeviceDecoder, prepare_decode
    from hf_assets.encode.images import load_pixels

    records, sources = decode_records(data, limit)
    decoder = DeviceDecoder(device)
    squared, count = 0.0, 0
    for record, source in zip(records, sources):
        pillow = load_pixels(source, *boxes(record)).astype(np.float64)
        (device_pixels,) = decoder([prepare_decode(source, *boxes(record))])
        difference = device_pixels.cpu().numpy().astype(np.float64) - pillow
        squared += float(np.sum(difference**2))
        count += difference.size
    mse = squared / max(1, count)
    return {
        "images": len(records),
        "psnr_db": float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse),
        "fallbacks": decoder.fallbacks,
    }


def latent_difference(directory_a: str | Path, directory_b: str | Path) -> dict:
    """Mean |mean_a - mean_b| over the latents two caches share, and that over the mean |mean_a|."""
    from hf_assets.cache.latents import open_latents

    a, b = open_latents(Path(directory_a)), open_latents(Path(directory_b))
    names = sorted(set(a) & set(b))
    total, scale = 0.0, 0.0
    for name in names:
        x, y = a[name].float(), b[name].float()
        total += float((x - y).abs().mean())
        scale += float(x.abs().mean())
    n = max(1, len(names))
    return {"latents": len(names), "mean_abs": total / n, "relative": (total / scale) if scale else 0.0}


def run_all(args, results, vae, data: Prepared, settings: StageSettings, run_dir: Path, log) -> None:
    """Into `results`: FLOPs, the matmul peak, the naive loop's agreement and the decode paths compared, after the
    stages ran (their caches are still in `run_dir`); each may fail alone."""
    from hf_assets.encode.vae_runner import runner_for

    mix = shape_mix(data.buckets)
    checks = {
        "flops": lambda: results.flops.update(
            flops_per_image(runner_for(vae, "nchw", "off", settings.batch, log), mix)
        ),
        "peak": lambda: setattr(results, "peak_tflops", matmul_peak_tflops(args.device, settings.model_dtype)),
    }
    if results.runs["naive"] and results.runs["pipeline_eager_pillow"]:
        names = results.runs["naive"][-1]["filenames"]
        pipe = results.runs["pipeline_eager_pillow"][-1]["directory"]
        checks["naive"] = lambda: setattr(results, "naive_agreement", agreement(Path(pipe), run_dir / "naive", names))
    if any(results.runs[s] for s in ("pipeline_compiled_nvjpeg", "pipeline_eager_nvjpeg", "decode_nvjpeg")):
        checks["decode"] = lambda: results.decode_agreement.update(decode_agreement(data, args.device))
    pairs = [
        ("pipeline_compiled_nvjpeg", "pipeline_compiled_pillow", "nvJPEG vs Pillow (compiled)"),
        ("pipeline_eager_nvjpeg", "pipeline_eager_pillow", "nvJPEG vs Pillow (eager)"),
        ("pipeline_compiled_pillow", "pipeline_eager_pillow", "compiled vs eager (Pillow)"),
    ]
    for a, b, label in pairs:
        if results.runs[a] and results.runs[b]:
            checks[label] = lambda a=a, b=b, label=label: results.latent_differences.update(
                {label: latent_difference(run_dir / a, run_dir / b)}
            )
    for name, check in checks.items():
        try:
            check()
        except Exception as error:  # noqa: BLE001 - a missing figure is noted, the report goes on
            log(f"diagnostic {name} failed: {type(error).__name__}: {error}")
    counts = dict(mix)
    total = sum(counts.values())
    if results.flops and total:
        results.flops_per_image = sum(results.flops[f"{w}x{h}"] * n for (w, h), n in counts.items()) / total
