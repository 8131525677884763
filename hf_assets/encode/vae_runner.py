"""Run an image VAE's encoder on batches of uint8 images at the device's pace: the memory layout the model runs in,
one compiled graph per bucket shape, the largest batch that fits each shape, partial batches padded or eager.

Layout: the input always takes the model's own memory layout (never channels-last pixels against an NCHW
model). On an H200 in bf16 the SD/SDXL encoder ran at 37-39 img/s in NCHW and 21-22 img/s channels-last, model
and input alike (issue 18), so `auto` is NCHW on cuda; on CPU `bench/bench_encode.py` measures both.
"""

import logging
import threading
from collections.abc import Callable

import torch

from hf_assets.encode.compiled import StaticCompiled, use_compile_cache
from hf_assets.encode.vae import encode_with_oom_backoff

MEMORY_FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
AUTO_MEMORY_FORMAT = {"cuda": "nchw", "cpu": "nchw"}  # measured defaults (module docstring, bench/README.md)
MAX_BATCH_PIXELS = 32 * 1024 * 1024  # automatic batches: at most 32 images of 1024x1024 (128 of 512x512)
CPU_BATCH = 8  # automatic batch size on CPU, where memory is not the limit and larger batches gain nothing
MEMORY_HEADROOM = 0.85  # of the device memory free for activations that automatic batches may fill


def resolve_memory_format(name: str, device: torch.device) -> str:
    """'auto' is the measured default of the device type (NCHW where unmeasured); 'nchw' and 'channels_last' stay."""
    if name in ("", "auto"):
        return AUTO_MEMORY_FORMAT.get(device.type, "nchw")
    if name not in MEMORY_FORMATS:
        raise ValueError(f"memory_format={name!r}: choose auto, {' or '.join(MEMORY_FORMATS)}")
    return name


def model_memory_format(module: torch.nn.Module) -> torch.memory_format:
    """channels_last when the module's convolution weights are stored channels-last, else contiguous (NCHW)."""
    for param in module.parameters():
        if param.dim() == 4 and param.shape[1] > 1 and param.shape[2:] != (1, 1):
            if param.is_contiguous(memory_format=torch.channels_last) and not param.is_contiguous():
                return torch.channels_last
            return torch.contiguous_format
    return torch.contiguous_format


class VaeRunner:
    """(mean, std) of the VAE's latent distribution for a batch of uint8 (B, H, W, 3) images, on the VAE's device."""

    def __init__(
        self,
        vae: torch.nn.Module,
        memory_format: str = "auto",
        compile: str = "off",
        batch_size: int = 0,
        log: Callable[[str], None] = logging.getLogger(__name__).info,
        backend: str = "inductor",
        compile_cache: str = "",
    ):
        param = next(vae.parameters())
        self.device, self.dtype, self.log = param.device, param.dtype, log
        self.layout = resolve_memory_format(memory_format, self.device)
        self.vae = vae.to(memory_format=MEMORY_FORMATS[self.layout])
        self.memory_format = model_memory_format(self.vae)  # what the input is given: the model's own layout
        self.batch_size = batch_size  # 0: the largest that fits each shape
        self.fits: dict[tuple[int, int], int] = {}  # (H, W) -> images per forward known to fit
        self.compiled = None
        if compile != "off":
            if backend == "inductor":
                use_compile_cache(compile_cache or None, log)
            self.compiled = StaticCompiled(self._moments, compile, "the VAE encoder", log, backend)

    def batch_limit(self, height: int, width: int) -> int:
        """The most images of one shape worth grouping for one call: the batch size, or the automatic cap."""
        if self.batch_size:
            return self.batch_size
        capped = max(1, MAX_BATCH_PIXELS // max(1, height * width))
        return min(CPU_BATCH, capped) if self.device.type != "cuda" else capped

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3), on the host or the device, to (B, 3, H, W) in [-1, 1] on the device, in the model's
        dtype and memory layout. Host tensors in pinned memory are copied without blocking."""
        with torch.inference_mode():
            x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            return x.to(self.dtype, memory_format=self.memory_format).div_(127.5).sub_(1.0)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode uint8 (B, H, W, 3) images; batches larger than what fits their shape are split."""
        if model_memory_format(self.vae) != self.memory_format:  # the shared model was converted elsewhere
            self.log(f"the VAE was converted to another memory layout; back to {self.layout}")
            self.vae.to(memory_format=self.memory_format)
        shape = (int(images.shape[1]), int(images.shape[2]))
        if shape not in self.fits:
            self.fits[shape] = self._first_fit(shape, images)

        def shrink(size: int) -> None:
            self.fits[shape] = size

        return encode_with_oom_backoff(
            lambda chunk: self.moments(self.pixels(chunk)), images, self.log, chunk=self.fits[shape], on_shrink=shrink
        )

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of ready pixels (B, 3, H, W): compiled for full batches, padded or eager for partial ones."""
        with torch.inference_mode():
            if not x.is_inference():  # one kind of input tensor, so compiled graphs are not traced twice
                x = x.clone(memory_format=self.memory_format)
            if self.compiled is None:
                return self._moments(x)
            n, shape = x.shape[0], (int(x.shape[2]), int(x.shape[3]))
            full = max(n, self.fits.get(shape, n))
            if n == full:
                return self.compiled(x)
            if 2 * n < full:  # less than half a batch: eager costs less than a padded full graph
                return self._moments(x)
            padded = torch.empty((full, *x.shape[1:]), dtype=x.dtype, device=x.device, memory_format=self.memory_format)
            padded[:n], padded[n:] = x, 0.0
            mean, std = self.compiled(padded)  # the encoder treats samples apart (GroupNorm, attention): rows unchanged
            return mean[:n], std[:n]

    def _moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.vae.encode(x).latent_dist
        return dist.mean, dist.std

    def _first_fit(self, shape: tuple[int, int], images: torch.Tensor) -> int:
        """Images per forward for a new shape: the batch size, or on cuda the most that fit the free memory
        (measured with one image), capped by `batch_limit`."""
        limit = self.batch_limit(*shape)
        if self.batch_size or self.device.type != "cuda":
            return limit
        device = self.device
        torch.cuda.synchronize(device)
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            self._moments(self.pixels(images[:1]))
        per_image = max(1, torch.cuda.max_memory_allocated(device) - base)
        fit = int(MEMORY_HEADROOM * (free + cached) // per_image)
        self.log(
            f"{shape[1]}x{shape[0]}: {per_image / 2**20:.0f} MiB per image, {fit} fit; batches of {min(fit, limit)}"
        )
        return max(1, min(fit, limit))


_RUNNERS_LOCK = threading.Lock()
RUNNERS_ATTRIBUTE = "_hf_assets_runners"  # kept on the VAE module: runners live and die with their model


def runner_for(
    vae: torch.nn.Module,
    memory_format: str = "auto",
    compile: str = "off",
    batch_size: int = 0,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    compile_cache: str = "",
) -> VaeRunner:
    """The process's runner of `vae` with these settings: the shard steps of one process share its compiled graphs
    and what it learnt of the batch sizes that fit."""
    with _RUNNERS_LOCK:
        runners = vae.__dict__.setdefault(RUNNERS_ATTRIBUTE, {})
        key = (resolve_memory_format(memory_format, next(vae.parameters()).device), compile, batch_size)
        if key not in runners:
            runners[key] = VaeRunner(vae, memory_format, compile, batch_size, log, compile_cache=compile_cache)
        runner = runners[key]
        runner.log = log  # the current step's logger
        if runner.compiled is not None:
            runner.compiled.log = log
        return runner
