"""Depth maps (SimpleTuner's `depth` / `depth_midas` generator) from a transformers DPT model, batched on its device.

The model is `DPTForDepthEstimation` loaded with `from_pretrained` from a folder or hub id (HF_ASSETS_DEPTH_MODEL,
default SimpleTuner's `Intel/dpt-large`). Its preprocessing follows the folder's `preprocessor_config.json` (size,
keep_aspect_ratio, ensure_multiple_of, mean and std, bicubic resize), done here with torch on the model's device so a
batch is resized there instead of image by image with Pillow. Each predicted depth is resized back to the input
size and scaled to 0-255 by its own minimum and maximum, as transformers' depth-estimation pipeline shows depth.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hf_assets import env
from hf_assets.encode.model_files import ModelNotFound, folder_identity, resolve_root

DEFAULT_DEPTH_MODEL = "Intel/dpt-large"  # the model SimpleTuner's depth generator loads
DEPTH_ARCHITECTURES = ("DPTForDepthEstimation",)
DPT_DEFAULT_SIZE = (384, 384)  # (height, width), DPTImageProcessor's default


@dataclass(frozen=True)
class DepthPreprocessing:
    """How the model wants its input: resized (bicubic) to `size`, or by one scale that keeps the aspect ratio
    (`keep_aspect_ratio`) with sides rounded to `multiple`, then (x / 255 - mean) / std."""

    size: tuple[int, int] = DPT_DEFAULT_SIZE
    keep_aspect_ratio: bool = False
    multiple: int = 1
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def from_folder(cls, folder: Path) -> "DepthPreprocessing":
        """Read `preprocessor_config.json` (transformers' DPTImageProcessor keys); the defaults when absent."""
        path = Path(folder) / "preprocessor_config.json"
        values = json.loads(path.read_text()) if path.is_file() else {}
        size = values.get("size") or {}
        return cls(
            size=(int(size.get("height", DPT_DEFAULT_SIZE[0])), int(size.get("width", DPT_DEFAULT_SIZE[1]))),
            keep_aspect_ratio=bool(values.get("keep_aspect_ratio", False)),
            multiple=int(values.get("ensure_multiple_of") or 1),
            mean=tuple(values.get("image_mean", cls.mean)),
            std=tuple(values.get("image_std", cls.std)),
        )

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) an image of this size is resized to (transformers' DPT rule)."""
        scale_h, scale_w = self.size[0] / height, self.size[1] / width
        if self.keep_aspect_ratio:  # scale as little as possible
            scale_h = scale_w = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h
        return _multiple_of(scale_h * height, self.multiple), _multiple_of(scale_w * width, self.multiple)


class DepthEstimator:
    """A loaded depth model: call it with images of one size, get their depth maps."""

    def __init__(self, model: torch.nn.Module, preprocessing: DepthPreprocessing, identity: str):
        self.model = model
        self.preprocessing = preprocessing
        self.identity = identity  # hashed into the cache key of depth samples

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 (H, W, 3) images of one size -> their depth maps, uint8 (H, W, 3) (near is bright for DPT)."""
        if not images:
            return []
        height, width = images[0].shape[:2]
        param = next(self.model.parameters())
        x = torch.from_numpy(np.stack(images)).to(param.device).permute(0, 3, 1, 2).float().div_(255.0)
        size = self.preprocessing.input_size(height, width)
        if size != (height, width):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
        mean = torch.tensor(self.preprocessing.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocessing.std, device=x.device).view(1, 3, 1, 1)
        depth = self.model(pixel_values=((x - mean) / std).to(param.dtype)).predicted_depth
        depth = F.interpolate(depth[:, None].float(), size=(height, width), mode="bicubic", align_corners=False)[:, 0]
        low = depth.amin(dim=(1, 2), keepdim=True)
        span = (depth.amax(dim=(1, 2), keepdim=True) - low).clamp_min(1e-12)
        scaled = ((depth - low) / span * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        return [np.repeat(d[:, :, None], 3, axis=2) for d in scaled]


def load_depth_model(
    path_or_id: str | Path = DEFAULT_DEPTH_MODEL, device: str | torch.device = "cpu", dtype=torch.float32
) -> DepthEstimator:
    """`DPTForDepthEstimation.from_pretrained` of a folder or hub id (HF_ASSETS_DEPTH_MODEL), in eval mode."""
    from transformers import DPTForDepthEstimation

    root = resolve_root(path_or_id, env.DEPTH_MODEL)
    config_path = root.path / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    if not set(config.get("architectures") or []) & set(DEPTH_ARCHITECTURES) and config.get("model_type") != "dpt":
        raise ModelNotFound(
            f"{env.DEPTH_MODEL}={str(path_or_id)!r}: {root.path} holds no DPT depth model (config.json names "
            f"{config.get('architectures') or 'no architecture'}); give a DPTForDepthEstimation folder or repo id "
            f"such as {DEFAULT_DEPTH_MODEL}"
        )
    model = DPTForDepthEstimation.from_pretrained(root.path, torch_dtype=dtype)
    model = model.to(device).eval().requires_grad_(False)
    return DepthEstimator(model, DepthPreprocessing.from_folder(root.path), folder_identity(root, None))


def _multiple_of(value: float, multiple: int) -> int:
    """`value` rounded to a multiple of `multiple` (at least one multiple), as transformers' DPT processor rounds."""
    return max(multiple, int(round(value / multiple)) * multiple) if multiple > 1 else max(1, int(round(value)))
