"""The encode benchmark's report: the machine, rates and ratios, and one markdown table from an EncodeResults."""

import os
import platform
from dataclasses import dataclass, field

import torch

from bench.machine import cpu_model

STAGES = ("bare", "bare_nchw", "pipeline", "naive", "decode", "null")


def machine_info(device: torch.device) -> dict:
    """CPU, cores, load, library versions and, on cuda, the GPU: printed under the table."""
    import diffusers
    import PIL

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "load_avg_1_5_15": " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=torch.cuda.get_device_name(device),
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            peak_gpu_memory_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
        )
    return info


def rate(stage: dict | None) -> float:
    """Images per wall-clock second."""
    return stage["images"] / stage["seconds"] if stage and stage.get("seconds") else 0.0


def cpu_rate(stage: dict | None) -> float:
    """Images per second of process CPU time: on a shared CPU-only machine, steadier than wall-clock rates."""
    return stage["images"] / stage["cpu_seconds"] if stage and stage.get("cpu_seconds") else 0.0


def mpx_rate(stage: dict | None) -> float:
    """Megapixels per wall-clock second."""
    return stage["pixels"] / 1e6 / stage["seconds"] if stage and stage.get("seconds") and stage.get("pixels") else 0.0


def best(results: list[dict]) -> dict | None:
    """The fastest of repeated measurements, or None when the stage did not run."""
    return max(results, key=rate) if results else None


@dataclass
class EncodeResults:
    """Everything one benchmark run found, with the settings that explain it."""

    command: str
    device: torch.device
    resolution: int
    aspect: str
    dtype: str
    latent_dtype: str
    batch: int
    workers: int
    warmup: int
    bare_iters: int
    images: int
    channels_last: bool
    vae: str  # description
    parameters_m: tuple[float, float]  # whole VAE, the encoder that runs
    sizes: str  # target sizes and their counts
    fill: str  # how full the encoder's batches are
    machine: dict
    runs: dict[str, list[dict]] = field(default_factory=lambda: {s: [] for s in STAGES})
    agreement: float | None = None  # max |pipeline - naive| latent mean over the first images

    def best(self, stage: str) -> dict | None:
        return best(self.runs[stage])

    def as_json(self) -> dict:
        settings = {k: v for k, v in vars(self).items() if k not in ("runs", "machine")}
        runs = {name: [{k: v for k, v in r.items() if k != "filenames"} for r in rs] for name, rs in self.runs.items()}
        best_rates = {name: rate(self.best(name)) if rs else None for name, rs in self.runs.items()}
        return {"settings": settings, "machine": self.machine, "runs": runs, "best_images_per_s": best_rates}


def stage_row(name: str, what: str, stage: dict | None) -> str:
    if stage is None:
        return f"| {name} | {what} | skipped | | | | | |"
    mpx = f"{mpx_rate(stage):.2f}" if stage.get("pixels") else ""
    return (
        f"| {name} | {what} | {stage['images']} | {stage['seconds']:.2f} | {rate(stage):.2f} | {mpx} "
        f"| {stage['cpu_seconds']:.1f} | {cpu_rate(stage):.3g} |"
    )


def stage_table(r: EncodeResults) -> list[str]:
    repeats = len(r.runs["bare"])
    R = r.resolution
    rows = [
        (
            "1. bare VAE forward",
            f"`encode_latents` on a device tensor {r.batch}x3x{R}x{R} laid out as the encoder's "
            f"(channels_last strides), {r.warmup} warm-up + {r.bare_iters} timed iters",
            "bare",
        ),
        ("(diag) bare, NCHW input", "as 1. with a contiguous NCHW input tensor", "bare_nchw"),
        (
            "2. pipeline",
            f"`update_latents` (fresh cache, VAE preloaded), {r.workers} decode workers, batch {r.batch}",
            "pipeline",
        ),
        (
            "3. naive per-image",
            "decode, exif_transpose, RGB, LANCZOS resize, crop, encode batch 1, `save_file` each",
            "naive",
        ),
        (
            "(diag) decode only",
            f"`iter_images` + `prefetch` + `load_pixels` + `np.stack`, {r.workers} workers, no VAE",
            "decode",
        ),
        (
            "(diag) pipeline, null VAE",
            "`update_latents` with an avg-pool stand-in for the VAE (all but the VAE)",
            "null",
        ),
    ]
    best_of = f", best of {repeats} interleaved runs" if repeats > 1 else ""
    lines = [
        f"| stage | what is timed{best_of} | images | seconds | images/s | Mpx/s | CPU s (all threads) "
        "| images per CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    return lines + [stage_row(name, what, r.best(key)) for name, what, key in rows if key != "bare_nchw" or r.runs[key]]


def ratio_table(r: EncodeResults) -> list[str]:
    cuda = r.device.type == "cuda"
    bare, pipe, naive, decode, null = (r.best(s) for s in ("bare", "pipeline", "naive", "decode", "null"))
    efficiency = rate(pipe) / rate(bare) if rate(bare) else 0.0
    lines = [
        "| ratio | value | |",
        "|---|---:|---|",
        f"| pipeline efficiency = pipeline / bare (images/s) | {efficiency:.3f} | target >= 0.9 on GPU"
        + ("" if cuda else "; on CPU decode and the VAE share the same cores")
        + " |",
    ]
    if r.aspect == "mixed" and mpx_rate(bare):
        lines.append(
            f"| pipeline efficiency per megapixel | {mpx_rate(pipe) / mpx_rate(bare):.3f} | targets vary "
            f"around {r.resolution}^2 px |"
        )
    if not cuda and cpu_rate(bare):
        lines.append(
            f"| pipeline efficiency per CPU second | {cpu_rate(pipe) / cpu_rate(bare):.3f} | steadier than "
            "wall-clock on a shared CPU |"
        )
    if rate(naive):
        lines.append(
            f"| speed-up = pipeline / naive (images/s) | {rate(pipe) / rate(naive):.2f}x | target >= 3x on GPU"
            + ("" if cuda else "; on CPU the VAE dominates both")
            + " |"
        )
        if not cuda and cpu_rate(naive):
            lines.append(f"| speed-up per CPU second | {cpu_rate(pipe) / cpu_rate(naive):.2f}x | |")
    if decode and rate(bare):
        lines.append(
            f"| decode only / bare (images/s) | {rate(decode) / rate(bare):.2f} | < 1: {r.workers} decode "
            "threads cannot feed this VAE |"
        )
    if null and rate(bare):
        lines.append(
            f"| null-VAE pipeline / bare (images/s) | {rate(null) / rate(bare):.2f} | < 1: the pipeline "
            "without its VAE is slower than the VAE alone |"
        )
    return lines


def notes(r: EncodeResults) -> list[str]:
    bare, pipe = r.best("bare"), r.best("pipeline")
    lines = [
        f"- pipeline detail: encode loop {pipe['encode_seconds']:.2f}s of {pipe['seconds']:.2f}s in update_latents "
        f"(plan + commit {pipe['seconds'] - pipe['encode_seconds']:.2f}s); cache {pipe['size_bytes'] / 2**20:.1f} "
        f"MiB; dropped {pipe['dropped']}; {r.fill}",
        f"- images: {r.images} distinct JPEGs of crops of a real photograph (q90, 1.0-1.6x the target area, "
        f"12 aspect ratios, 1 in 4 with EXIF orientation 6); targets: {r.sizes}",
        f"- VAE: {r.vae}; {r.parameters_m[0]:.3g}M parameters, {r.parameters_m[1]:.3g}M in the encoder that runs; "
        f"model dtype {r.dtype}, stored {r.latent_dtype}" + ("; channels_last" if r.channels_last else ""),
        f"- bare output finite: {bare['finite']}"
        + (
            f"; max |pipeline - naive| latent mean, first 4 images: {r.agreement:.3g}"
            if r.agreement is not None
            else ""
        ),
    ]
    if len(r.runs["bare"]) > 1:
        each = (f"{name} " + " ".join(f"{rate(x):.2f}" for x in results) for name, results in r.runs.items() if results)
        lines.append("- every run, images/s: " + "; ".join(each))
    lines.append("- machine: " + ", ".join(f"{k} {v}" for k, v in r.machine.items()))
    return lines


def render(results: EncodeResults) -> str:
    """The markdown report: stage table, ratio table, notes and machine."""
    r = results
    title = (
        f"## VAE encode throughput: {r.resolution}x{r.resolution} ({r.aspect}), {r.dtype}, batch {r.batch}, {r.device}"
    )
    lines = [title, "", f"Command: `{r.command}`", "", *stage_table(r), "", *ratio_table(r), "", *notes(r)]
    return "\n".join(lines) + "\n"
