"""The pixels of a conditioning sample, for the encoder: its source sample's pixels through its generator (generated
datasets) or its own image (given datasets), and the tensors stored beside its latents.

Generation runs where it is cheapest: the pixel generators (canny, superresolution, jpeg_artifacts, random_masks,
sdr) per sample on the decode threads, depth per batch on the model's device. What is stored beside the latents
depends on the conditioning type: a ControlNet trainer feeds the control image itself (`pixels`, uint8 (3, H, W)), an
inpainting trainer the mask (`mask`, uint8 (1, H, W)); reference images are used as latents only.
"""

from collections.abc import Callable

import numpy as np
import torch

from hf_assets import env
from hf_assets.config.conditioning_generators import GeneratorConfig
from hf_assets.encode.generators import generate, sample_rng

STORED = {"controlnet": "pixels", "mask": "mask"}  # conditioning type -> the tensor stored beside the latents


class ConditioningPixels:
    """Turns a source sample's decoded, cropped pixels into its conditioning image, and names what is stored."""

    def __init__(
        self,
        conditioning_type: str,
        generator: GeneratorConfig | None = None,
        source_id: str = "",
        depth_loader: Callable[[], Callable[[list[np.ndarray]], list[np.ndarray]]] | None = None,
    ):
        self.conditioning_type = conditioning_type
        self.generator = generator
        self.source_id = source_id  # seeds the random draws, with the sample's file name
        self._depth_loader = depth_loader
        self._depth = None

    @property
    def batched(self) -> bool:
        """True when the conditioning image is made per batch on a model's device (depth)."""
        return self.generator is not None and self.generator.kind == "depth"

    def sample(self, filename: str, pixels: np.ndarray) -> np.ndarray:
        """One sample's conditioning image from its pixels (a pixel generator), or the pixels as they are (a given
        image, or depth, which `batch` makes)."""
        if self.generator is None or self.batched:
            return pixels
        return generate(self.generator, pixels, sample_rng(self.source_id, filename, self.generator))

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """The conditioning images of a batch of one size (depth maps from the model; others as `sample` made them)."""
        if not self.batched:
            return images
        if self._depth is None:
            if self._depth_loader is None:
                raise ValueError(
                    f"a depth generator needs a depth model ({env.DEPTH_MODEL}, the encoders resource's depth_model)"
                )
            self._depth = self._depth_loader()
        return self._depth(images)

    def stored(self, images: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
        """The tensors stored beside each sample's latents: the control image or the mask, channel first."""
        if not images:
            return []
        batch = torch.from_numpy(np.stack([np.asarray(image, dtype=np.uint8) for image in images]))  # a copy
        stacked = self.stored_batch(batch)
        return [{name: t[i].contiguous() for name, t in stacked.items()} for i in range(len(images))]

    def stored_batch(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stored tensors of a batch of conditioning images (uint8 (B, H, W, 3), as the VAE gets them): the
        control images (B, 3, H, W) or the masks (B, 1, H, W), views of `pixels` ({} for references)."""
        name = STORED.get(self.conditioning_type)
        if name is None:
            return {}
        chw = pixels.permute(0, 3, 1, 2)
        return {name: chw[:, :1] if name == "mask" else chw}

    def cache_settings(self, depth_identity: str | None = None) -> dict:
        """What the conditioning adds to every latent's key: the generator and its parameters (and the depth model),
        the source it is seeded by, and what is stored beside the latents."""
        settings = {"conditioning_type": self.conditioning_type, "stored": STORED.get(self.conditioning_type)}
        if self.generator is not None:
            settings.update(self.generator.cache_settings(), source=self.source_id)
            if self.batched:
                settings["depth_model"] = depth_identity
        return settings
