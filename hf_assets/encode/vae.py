"""VAE latent distributions (mean, std) and an encode loop that halves the batch on out-of-memory."""

import gc
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

logger = logging.getLogger(__name__)


def encode_latents(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of vae.encode(pixels).latent_dist, unscaled, on the VAE's device and dtype."""
    # pixels: (B, 3, H, W) in [-1, 1]. No scaling here: a trainer draws sample = mean + std * randn and
    # feeds (sample - shift_factor) * scaling_factor, both from vae_factors (stored in the manifest).
    param = next(vae.parameters())
    x = pixels.to(device=param.device, dtype=param.dtype, non_blocking=True)
    with torch.inference_mode():
        dist = vae.encode(x).latent_dist
    return dist.mean, dist.std


def vae_factors_from_config(config) -> dict:
    """scaling_factor, shift_factor (0.0 when unset), spatial downscale and latent channels of a VAE config."""
    config = dict(config)
    shift = config.get("shift_factor")
    return {
        "scaling_factor": float(config.get("scaling_factor", 0.18215)),
        "shift_factor": float(shift) if shift is not None else 0.0,
        "downscale": 2 ** (len(config.get("block_out_channels", [0, 0, 0, 0])) - 1),
        "latent_channels": int(config.get("latent_channels", 4)),
    }


def is_oom(error: BaseException) -> bool:
    """True for torch's OutOfMemoryError and for RuntimeErrors that say 'out of memory'."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(error, oom_type):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def encode_with_oom_backoff(
    fn: Callable[[Any], Any],
    batch: Sequence | torch.Tensor,
    log: Callable[[str], None] | None = None,
    chunk: int | None = None,
    on_shrink: Callable[[int], None] | None = None,
) -> Any:
    """fn over the batch (in chunks of `chunk`, default all of it); on OOM retry in halves (then quarters...) so
    every sample comes back in order. `on_shrink(size)` hears each smaller chunk size, to remember what fits."""
    # batch is sliceable (tensor or list); fn returns a tensor, a tuple/dict of tensors or a per-sample list,
    # and the chunks' results are joined. The OOM is re-raised when a single sample does not fit.
    log = log or logger.warning
    total = len(batch)
    if total == 0:
        return fn(batch)
    size, start, parts = max(1, min(chunk or total, total)), 0, []
    while start < total:
        end = min(start + size, total)
        try:
            parts.append(fn(batch[start:end]))
            start = end
            continue
        except Exception as error:
            if not is_oom(error) or size == 1:
                raise
            size = (size + 1) // 2
            message = f"out of memory encoding {end - start} samples; retrying in chunks of {size}"
            if on_shrink is not None:
                on_shrink(size)
        _free_memory()
        log(message)
    return parts[0] if len(parts) == 1 else _concat(parts)


def _free_memory() -> None:
    """Drop the failed attempt's tensors and return cached blocks to the allocator."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _concat(parts: list) -> Any:
    """Join per-chunk results: tensors on dim 0, tuples elementwise, lists end to end."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts, dim=0)
    if isinstance(first, tuple):
        return tuple(_concat([p[i] for p in parts]) for i in range(len(first)))
    if isinstance(first, list):
        return [item for part in parts for item in part]
    if isinstance(first, dict):
        return {key: _concat([p[key] for p in parts]) for key in first}
    raise TypeError(f"cannot join results of type {type(first).__name__}")
