"""Video VAEs (Wan, LTX-Video, HunyuanVideo, CogVideoX): their compression factors, their latent normalisation,
and a clip-batch encode that returns the latent distribution (mean, std) of shape (B, C, T', H/f, W/f)."""

from pathlib import Path

import torch

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


def _log2_sum(flags) -> int:
    return 2 ** sum(bool(f) for f in (flags or ()))


def video_vae_factors(config: dict, folder: Path | None = None) -> dict:
    """latent_channels, spatial `downscale`, `temporal_downscale`, scaling/shift and per-channel
    latents_mean/latents_std (None when the model has none) of a video VAE, from its config (and, for LTX,
    the statistics buffers stored beside its weights)."""
    name = config.get("_class_name")
    mean, std = config.get("latents_mean"), config.get("latents_std")
    if name == "AutoencoderKLWan":
        channels = int(config.get("z_dim", 16))
        patch = int(config.get("patch_size") or 1)
        spatial = config.get("scale_factor_spatial") or 2 ** (len(config.get("dim_mult", [1, 2, 4, 4])) - 1) * patch
        temporal = config.get("scale_factor_temporal") or _log2_sum(config.get("temperal_downsample", [0, 1, 1]))
    elif name == "AutoencoderKLLTXVideo":
        channels = int(config.get("latent_channels", 128))
        scaling = config.get("spatio_temporal_scaling", (True, True, True, False))
        spatial = config.get("spatial_compression_ratio") or int(config.get("patch_size", 4)) * _log2_sum(scaling)
        temporal = config.get("temporal_compression_ratio") or int(config.get("patch_size_t", 1)) * _log2_sum(scaling)
        if mean is None and folder is not None:
            mean, std = _stored_statistics(Path(folder))
    elif name == "AutoencoderKLHunyuanVideo":
        channels = int(config.get("latent_channels", 16))
        spatial = config.get("spatial_compression_ratio", 8)
        temporal = config.get("temporal_compression_ratio", 4)
    elif name == "AutoencoderKLCogVideoX":
        channels = int(config.get("latent_channels", 16))
        spatial = 2 ** (len(config.get("block_out_channels", [0, 0, 0, 0])) - 1)
        temporal = config.get("temporal_compression_ratio", 4)
    else:
        raise ValueError(
            f"{name!r} is not a video VAE; expected AutoencoderKLWan, AutoencoderKLLTXVideo, "
            "AutoencoderKLHunyuanVideo or AutoencoderKLCogVideoX"
        )
    shift = config.get("shift_factor")
    return {
        "vae_class": name,
        "latent_channels": channels,
        "downscale": int(spatial),
        "temporal_downscale": int(temporal),
        "scaling_factor": float(config.get("scaling_factor") or 1.0),
        "shift_factor": float(shift) if shift is not None else 0.0,
        "latents_mean": [float(v) for v in mean] if mean is not None else None,
        "latents_std": [float(v) for v in std] if std is not None else None,
    }


def _stored_statistics(folder: Path) -> tuple[list | None, list | None]:
    """LTX's latents_mean / latents_std buffers, read from its safetensors weights without loading the model."""
    from safetensors import safe_open

    path = folder / WEIGHTS_FILE
    if not path.is_file():
        return None, None
    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
        if not {"latents_mean", "latents_std"} <= names:
            return None, None
        return f.get_tensor("latents_mean").tolist(), f.get_tensor("latents_std").tolist()


def prepare_video_vae(vae, tiled: bool) -> None:
    """Slicing (one clip at a time inside a batch; same results) always, tiling when asked, where the VAE offers it."""
    if hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if tiled and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    elif hasattr(vae, "disable_tiling"):
        vae.disable_tiling()


def encode_clips(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of vae.encode(pixels).latent_dist for (B, 3, T, H, W) pixels in [-1, 1], unscaled."""
    param = next(vae.parameters())
    with torch.inference_mode():
        dist = vae.encode(pixels.to(device=param.device, dtype=param.dtype)).latent_dist
    return dist.mean, dist.std
