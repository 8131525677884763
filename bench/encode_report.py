"""The encode benchmark's report: the machine, rates and ratios, and one markdown table from an EncodeResults."""

import os
import platform
from dataclasses import dataclass, field

import torch

from bench.machine import cpu_model

# stage -> (what is timed, decode path): the table's rows, in order
STAGES = {
    "bare_nchw": ("bare forward, eager, NCHW input and model", ""),
    "bare_channels_last": ("bare forward, eager, channels-last input and model", ""),
    "bare_compiled": ("bare forward, torch.compile (a static graph per size), NCHW", ""),
    "pipeline_eager_pillow": ("pipeline `update_latents`, eager", "pillow"),
    "pipeline_compiled_pillow": ("pipeline `update_latents`, compiled", "pillow"),
    "pipeline_eager_nvjpeg": ("pipeline `update_latents`, eager", "nvjpeg"),
    "pipeline_compiled_nvjpeg": ("pipeline `update_latents`, compiled", "nvjpeg"),
    "naive": ("naive loop: PIL decode, LANCZOS, crop, encode batch 1, `save_file` each", "pillow"),
    "decode_pillow": ("(diag) decode threads only, no VAE", "pillow"),
    "decode_nvjpeg": ("(diag) header threads + nvJPEG on the device, no VAE", "nvjpeg"),
    "null": ("(diag) pipeline with an avg-pool stand-in for the VAE", "pillow"),
}
BARE = ("bare_nchw", "bare_channels_last", "bare_compiled")
VAE_STAGES = BARE + tuple(s for s in STAGES if s.startswith("pipeline_")) + ("naive",)


def machine_info(device: torch.device) -> dict:
    """CPU, cores, load, library versions and, on cuda, the GPU: printed under the table."""
    import PIL

    try:
        import diffusers

        diffusers_version = diffusers.__version__
    except Exception as error:  # noqa: BLE001 - reported, not fatal
        diffusers_version = f"unavailable ({type(error).__name__})"
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
        "diffusers": diffusers_version,
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


@dataclass
class EncodeResults:
    """Everything one benchmark run found, with the settings that explain it."""

    command: str
    device: torch.device
    resolution: int
    aspect: str
    dtype: str
    latent_dtype: str
    batch: int  # 0: the runner's automatic batch per size
    workers: int
    compile: str
    warmup: int
    bare_iters: int
    images: int
    vae: str  # description
    parameters_m: tuple[float, float]  # whole VAE, the encoder that runs
    sizes: str  # target sizes and their counts
    fill: str  # how full the encoder's batches are
    machine: dict
    runs: dict[str, list[dict]] = field(default_factory=lambda: {s: [] for s in STAGES})
    problems: dict[str, str] = field(default_factory=dict)  # stage -> why it has no figures (skipped, error)
    flops: dict[str, float] = field(default_factory=dict)  # target size -> FLOPs of one image's forward
    flops_per_image: float = 0.0  # over the shape mix
    peak_tflops: float = 0.0  # measured matmul peak in the model dtype
    naive_agreement: float | None = None  # max |pipeline - naive| latent mean over the first images
    decode_agreement: dict = field(default_factory=dict)  # PSNR of nvJPEG pixels against Pillow's
    latent_differences: dict[str, dict] = field(default_factory=dict)  # "a vs b" -> latent_difference()

    def best(self, stage: str) -> dict | None:
        return max(self.runs[stage], key=rate) if self.runs.get(stage) else None

    def best_bare(self) -> tuple[str, float]:
        """The fastest bare forward: (stage, images/s)."""
        rates = {s: rate(self.best(s)) for s in BARE}
        stage = max(rates, key=rates.get)
        return stage, rates[stage]

    def default_pipeline(self) -> str:
        """The pipeline the default settings run: compiled where compile is on, Pillow decode."""
        return f"pipeline_{'eager' if self.compile == 'off' else 'compiled'}_pillow"

    def headline(self) -> dict:
        """The figures the targets are stated in."""
        pipeline = rate(self.best(self.default_pipeline())) or None
        best_stage, best = self.best_bare()
        compiled, naive = rate(self.best("bare_compiled")), rate(self.best("naive"))
        return {
            "pipeline": self.default_pipeline(),
            "pipeline_images_per_s": pipeline,
            "best_bare": best_stage,
            "pipeline_over_best_bare": pipeline / best if pipeline and best else None,
            "pipeline_over_compiled_bare": pipeline / compiled if pipeline and compiled else None,
            "pipeline_over_naive": pipeline / naive if pipeline and naive else None,
            "flop_limit_images_per_s": self.peak_tflops * 1e12 / self.flops_per_image if self.flops_per_image else None,
            "compile_seconds": (self.best("bare_compiled") or {}).get("compile_seconds"),
        }

    def as_json(self) -> dict:
        settings = {k: v for k, v in vars(self).items() if k not in ("runs", "machine")}
        runs = {name: [{k: v for k, v in r.items() if k != "filenames"} for r in rs] for name, rs in self.runs.items()}
        best_rates = {name: rate(self.best(name)) if rs else None for name, rs in self.runs.items()}
        return {
            "settings": settings,
            "machine": self.machine,
            "runs": runs,
            "best_images_per_s": best_rates,
            "headline": self.headline(),
        }


def stage_row(r: EncodeResults, name: str, best_bare: float) -> str:
    what, decode = STAGES[name]
    stage = r.best(name)
    if stage is None:
        return f"| {what} | {decode} | | | {r.problems.get(name, 'not run')} | | | | |"
    vae = name in VAE_STAGES
    tflops = rate(stage) * r.flops_per_image / 1e12 if vae and r.flops_per_image else 0.0
    cells = [
        what,
        decode,
        str(stage["images"]),
        f"{stage['seconds']:.2f}",
        f"**{rate(stage):.2f}**",
        f"{rate(stage) / best_bare:.3f}" if vae and best_bare else "",
        f"{tflops:.3g}" if tflops else "",
        f"{100 * tflops / r.peak_tflops:.1f}%" if tflops and r.peak_tflops else "",
        f"{stage['cpu_seconds']:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def stage_table(r: EncodeResults) -> list[str]:
    repeats = max((len(v) for v in r.runs.values()), default=0)
    best_of = f" (best of {repeats} interleaved runs)" if repeats > 1 else ""
    _, best_bare = r.best_bare()
    lines = [
        f"| stage{best_of} | decode | images | seconds | images/s | ÷ best bare | TFLOP/s | of peak | CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return lines + [stage_row(r, name, best_bare) for name in STAGES if r.runs[name] or name in r.problems]


def ratio_table(r: EncodeResults) -> list[str]:
    cuda = r.device.type == "cuda"
    h = r.headline()

    def value(x, fmt):
        return format(x, fmt) if x is not None else "n/a"

    lines = [
        "| figure | value | target |",
        "|---|---:|---|",
        f"| {h['pipeline']} images/s | {value(h['pipeline_images_per_s'], '.2f')} | "
        + ("≥ 55 at 1024² mixed, bf16, H200" if cuda else "(GPU target)")
        + " |",
        f"| {h['pipeline']} ÷ best bare ({h['best_bare']}) | {value(h['pipeline_over_best_bare'], '.3f')} | ≥ 0.9 |",
        f"| {h['pipeline']} ÷ compiled bare | {value(h['pipeline_over_compiled_bare'], '.3f')} | ≥ 0.9 |",
        f"| {h['pipeline']} ÷ naive loop | {value(h['pipeline_over_naive'], '.2f')}x | ≥ 3x |",
    ]
    if h["flop_limit_images_per_s"]:
        lines.append(
            f"| FLOP limit: measured matmul peak {r.peak_tflops:.3g} TFLOP/s ÷ {r.flops_per_image / 1e12:.3g} TFLOP "
            "per image "
            f"| {h['flop_limit_images_per_s']:.1f} images/s | |"
        )
    if h["compile_seconds"] is not None:
        lines.append(f"| compile (first call of each size, in bare_compiled) | {h['compile_seconds']:.1f} s | |")
    if r.decode_agreement:
        a = r.decode_agreement
        lines.append(f"| nvJPEG path pixels vs Pillow, {a['images']} images | PSNR {a['psnr_db']:.1f} dB | |")
    for pair, d in r.latent_differences.items():
        share = f"{100 * d['relative']:.2f}% of mean abs μ"
        lines.append(f"| latent means, {pair} ({d['latents']} images) | mean abs Δ {d['mean_abs']:.3g} ({share}) | |")
    return lines


def notes(r: EncodeResults) -> list[str]:
    lines = [
        f"- images: {r.images} distinct JPEGs of crops of a real photograph (q90, 1.0-1.6x the target area, 1 in 4 "
        f"with EXIF orientation 6); targets: {r.sizes}; {r.fill}",
        f"- VAE: {r.vae}; {r.parameters_m[0]:.3g}M parameters, {r.parameters_m[1]:.3g}M in the encoder that runs; "
        f"model dtype {r.dtype}, stored {r.latent_dtype}; batch {r.batch or 'automatic'}; {r.workers} decode workers; "
        f"compile {r.compile}",
    ]
    for name in BARE:
        stage = r.best(name)
        if stage:
            shapes = ", ".join(f"{s['size']} x{s['batch']}: {s['images_per_s']:.1f}/s" for s in stage["per_shape"])
            lines.append(f"- {name} per size (batch, images/s): {shapes}; output finite: {stage['finite']}")
    pipe = r.best(r.default_pipeline())
    if pipe:
        lines.append(
            f"- {r.default_pipeline()}: encode loop {pipe['encode_seconds']:.2f}s of {pipe['seconds']:.2f}s "
            f"(plan + commit {pipe['seconds'] - pipe['encode_seconds']:.2f}s); cache {pipe['size_bytes'] / 2**20:.1f} "
            f"MiB; dropped {pipe['dropped']}"
        )
    if r.naive_agreement is not None:
        lines.append(f"- max |pipeline - naive| latent mean, first 4 images: {r.naive_agreement:.3g}")
    if r.flops:
        lines.append("- FLOPs per image: " + ", ".join(f"{k} {v / 1e12:.3g} T" for k, v in r.flops.items()))
    if any(len(v) > 1 for v in r.runs.values()):
        each = (f"{name} " + " ".join(f"{rate(x):.2f}" for x in results) for name, results in r.runs.items() if results)
        lines.append("- every run, images/s: " + "; ".join(each))
    lines.append("- machine: " + ", ".join(f"{k} {v}" for k, v in r.machine.items()))
    return lines


def render(results: EncodeResults) -> str:
    """The markdown report: stage table, ratio table, notes and machine."""
    r = results
    title = f"## VAE encode throughput: {r.resolution}² ({r.aspect}), {r.dtype}, {r.device}"
    lines = [title, "", f"Command: `{r.command}`", "", *stage_table(r), "", *ratio_table(r), "", *notes(r)]
    return "\n".join(lines) + "\n"
