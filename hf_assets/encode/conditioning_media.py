"""Conditioning samples for the encoding engine: images whose pixels are their source sample's crop through a
generator (generated datasets) or their own image cropped by the source's box (given datasets), encoded by the image
VAE, with the control image or mask stored beside each latent.

What the engine's three steps share travels in the plan's metadata (`meta`): the conditioning type, the source it is
seeded by, the generator and its parameters. The shard step rebuilds the media from it (`from_meta`) with the depth
model of its own device, so no value but the plan crosses between steps. Every one of those settings, and the depth
model's identity, is hashed into each latent's key: a changed parameter re-encodes only its own dataset.
"""

import io
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from types import MappingProxyType

import numpy as np
import torch
from PIL import Image

from hf_assets.cache.atomic import atomic_write_bytes
from hf_assets.config import BackendConfig
from hf_assets.config.conditioning_generators import GeneratorConfig
from hf_assets.encode.conditioning_pixels import ConditioningPixels
from hf_assets.encode.image_media import ImageMedia
from hf_assets.encode.media import keyed_rows

DepthLoader = Callable[[], Callable[[list[np.ndarray]], list[np.ndarray]]]


class ConditioningMedia(ImageMedia):
    """A conditioning dataset's samples: one latent per paired sample, and its control image or mask."""

    name = "conditioning"
    device_decode = False  # generators and the stored pixels need the image on the host: always Pillow

    def __init__(self, pixels: ConditioningPixels, depth_identity: str | None = None, output_dir: Path | None = None):
        self.pixels = pixels
        self.depth_identity = depth_identity  # the depth model's identity: in the key of depth samples
        self.output_dir = Path(output_dir) if output_dir else None  # generated images are also written there
        self._depth_names: dict[str, str] = {}  # cache key -> file name of depth maps to write out

    @classmethod
    def for_backend(
        cls, backend: BackendConfig, depth_identity: Callable[[], str] | None = None
    ) -> "ConditioningMedia":
        """The media of a conditioning backend; `depth_identity` gives the depth model's identity (depth only)."""
        pairing = backend.conditioning
        pixels = ConditioningPixels(pairing.type, pairing.generator, pairing.source or "")
        identity = depth_identity() if pixels.batched and depth_identity is not None else None
        if pixels.batched and identity is None:
            raise ValueError(f"backend '{backend.id}': a depth dataset needs the depth model's identity")
        return cls(pixels, identity, pairing.output_dir if pairing.generator is not None else None)

    @classmethod
    def from_meta(cls, meta: dict, depth_loader: DepthLoader | None = None) -> "ConditioningMedia":
        """The media a plan's metadata describes (see `meta`), with `depth_loader` for depth datasets."""
        generator = meta.get("generator")
        config = GeneratorConfig(generator, MappingProxyType(dict(meta["generator_params"]))) if generator else None
        pixels = ConditioningPixels(meta["conditioning_type"], config, meta.get("source") or "", depth_loader)
        return cls(pixels, meta.get("depth_model"), meta.get("written_to"))

    def meta(self) -> dict:
        """What the cache's metadata records, and what the shard step rebuilds this media from."""
        generator = self.pixels.generator
        return {
            "conditioning_type": self.pixels.conditioning_type,
            "source": self.pixels.source_id,
            "generator": generator.kind if generator else None,
            "generator_params": dict(generator.params) if generator else None,
            "stored": self.stored_names(),
            "depth_model": self.depth_identity,
            "written_to": str(self.output_dir) if self.output_dir else None,
        }

    def stored_names(self) -> list[str]:
        """The tensors stored beside each latent (mean, std and these)."""
        return sorted(self.pixels.stored_batch(torch.zeros((1, 1, 1, 3), dtype=torch.uint8)))

    def key_settings(self) -> dict:
        """What the conditioning adds to every latent's key."""
        settings = self.pixels.cache_settings(self.depth_identity)
        if self.output_dir:  # naming a folder re-encodes once, which writes every file there
            settings["written_to"] = str(self.output_dir)
        return settings

    def wanted(self, buckets, split, column, settings, factors, memo_dir=None, progress=None):
        settings = replace(settings, decode="pillow")  # see device_decode
        keys = {**settings.key_fields(), "conditioning": self.key_settings()}
        return keyed_rows(buckets, split, column, keys, memo_dir=memo_dir, progress=progress), {}

    def spec(self, record: dict) -> dict:
        if self.output_dir is not None and self.pixels.batched:
            self._depth_names[record["key"]] = record["filename"]
        return {**super().spec(record), "filename": record["filename"]}

    def load(self, spec: dict, source) -> np.ndarray:
        """The source crop through the generator (a given image: its own crop); written out when asked."""
        image = self.pixels.sample(spec["filename"], super().load(spec, source))
        if self.output_dir is not None and not self.pixels.batched:
            write_image(self.output_dir, spec["filename"], image)
        return image

    def ready(self, groups: Iterator[list[tuple[str, object]]]) -> Iterator[list[tuple[str, object]]]:
        """Each batch of one size through the depth model (on its device); other generators ran in `load`."""
        if not self.pixels.batched:
            yield from groups
            return
        for group in groups:
            keys = [key for key, _ in group]
            images = self.pixels.batch([image for _, image in group])
            if self.output_dir is not None:
                for key, image in zip(keys, images):
                    write_image(self.output_dir, self._depth_names.pop(key), image)
            yield list(zip(keys, images))

    def stored(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.pixels.stored_batch(pixels)


def write_image(folder: Path, filename: str, image: np.ndarray) -> Path:
    """A generated image as a PNG at the sample's relative path under `folder` (extension .png), atomically."""
    relative = PurePosixPath(filename.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{filename!r}: a generated image's file name must stay inside {folder}")
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return atomic_write_bytes(Path(folder) / relative.with_suffix(".png"), buffer.getvalue())
