"""The trainer's door: one prepared backend as a torch Dataset of cached latents, caption embeddings and SDXL sizes."""

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset

from hf_assets.cache.latents import LatentCache
from hf_assets.cache.text_embed_cache import TextEmbedCache
from hf_assets.training.conditioning_samples import ConditioningSamples

# SDXL micro-conditioning, in the order the UNet reads it: original (h, w), crop top-left (top, left), target (h, w).
# "original" is the image the sample shows before it was resized (after EXIF and the composite split), as in the
# SDXL paper, diffusers' train_text_to_image_sdxl.py (`original_sizes.append((image.height, image.width))` before
# `train_resize`) and SimpleTuner (`example["original_size"]`); `original_size="resized"` uses the resized
# intermediary instead. The crop is in the resized image, as both scripts record it.
ORIGINAL_SIZE_COLUMNS = {"image": ("height", "width"), "resized": ("resize_height", "resize_width")}
CROP_AND_TARGET_COLUMNS = ("crop_top", "crop_left", "target_height", "target_width")
ITEM_KEYS = (
    "latents",
    "caption",
    "variant",
    "bucket",
    "time_ids",
    "filename",
    "backend",
    "frames",
    "fps",
    "conditioning",
)


def draw_generator(seed: int, epoch: int, filename: str) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, sample), so a draw is the same whatever the sample order."""
    digest = hashlib.blake2b(f"{seed}|{epoch}|{filename}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little"))


class CachedSamples(Dataset):
    """Samples present in both caches; each item is a fresh latent draw, one caption variant and SDXL time ids.

    With `conditioning` (a `ConditioningSamples` per conditioning dataset of this backend), only samples with a
    cached partner in every one of them are kept, and each item carries `conditioning`: {dataset id: its partner's
    latents, and pixel_values or mask where stored}. A pair is one item, so every sampler keeps it together.

    `dataset[i]` uses the epoch given to `set_epoch`; `dataset[(epoch, i)]` names it explicitly (use that form with
    persistent DataLoader workers, which keep the copy of the dataset they started with).
    """

    def __init__(
        self,
        buckets: pa.Table,
        latents: LatentCache,
        text_embeds: TextEmbedCache,
        seed: int = 0,
        original_size: Literal["image", "resized"] = "image",
        conditioning: Sequence[ConditioningSamples] = (),
    ):
        if original_size not in ORIGINAL_SIZE_COLUMNS:
            raise ValueError(f"original_size must be one of {sorted(ORIGINAL_SIZE_COLUMNS)}, got {original_size!r}")
        names = buckets.column("filename").to_pylist()
        self.conditioning = list(conditioning)
        keep = [
            i
            for i, name in enumerate(names)
            if name in latents and name in text_embeds and all(name in c for c in self.conditioning)
        ]
        table = buckets.take(pa.array(keep, pa.int64()))
        self.filenames: list[str] = [names[i] for i in keep]
        self.buckets: list[str] = table.column("bucket").to_pylist()
        columns = ORIGINAL_SIZE_COLUMNS[original_size] + CROP_AND_TARGET_COLUMNS
        self.time_ids = torch.from_numpy(
            np.stack([table.column(c).to_numpy().astype(np.int64) for c in columns], axis=1).reshape(-1, 6)
        )
        self.missing = len(names) - len(keep)  # dropped at encode time (e.g. an undecodable image), or unpaired
        self.latents, self.text_embeds = latents, text_embeds
        self.downscale = int(latents.meta.get("downscale", 8))  # VAE pixels per latent cell
        self.seed, self.epoch = int(seed), 0
        # clips: frames trained on (after the VAE's frame rule) and frame rate, from the latent manifest
        self.frames = latents.values("num_frames", self.filenames) if latents.is_video else None
        self.fps = latents.values("fps", self.filenames) if latents.is_video else None

    @classmethod
    def from_definitions(
        cls, defs, partition_key: str, instance=None, seed: int = 0, conditioning: Sequence[str] = (), **kwargs
    ) -> "CachedSamples":
        """Load aspect_buckets, vae_latents and text_embeds of one backend through its Dagster Definitions, and
        aspect_buckets and vae_latents of each conditioning dataset named in `conditioning` (backend ids)."""
        # No dagster import is needed: the Definitions object brings its own; instance=None uses DAGSTER_HOME if set.
        with defs.get_asset_value_loader(instance=instance) as loader:
            buckets, latents, embeds = (
                loader.load_asset_value(key, partition_key=partition_key)
                for key in ("aspect_buckets", "vae_latents", "text_embeds")
            )
            partners = [
                ConditioningSamples(
                    backend_id,
                    loader.load_asset_value("aspect_buckets", partition_key=backend_id),
                    loader.load_asset_value("vae_latents", partition_key=backend_id),
                )
                for backend_id in conditioning
            ]
            return cls(buckets, latents, embeds, seed=seed, conditioning=partners, **kwargs)

    @property
    def target_sizes(self) -> np.ndarray:
        """(N, 2) int64 (target_width, target_height) per sample, then the frame count for clips, then the width and
        height of each loose conditioning partner: what the samplers batch by (a batch of one row stacks)."""
        sizes = self.time_ids[:, [5, 4]].numpy()
        if self.frames is not None:
            sizes = np.concatenate([sizes, np.asarray(self.frames, dtype=np.int64).reshape(-1, 1)], axis=1)
        loose = [c.sizes(self.filenames) for c in self.conditioning if not c.strict]
        return np.concatenate([sizes, *loose], axis=1) if loose else sizes

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's noise and caption variants (reshuffle the sampler with the same epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        name = self.filenames[index]
        generator = draw_generator(self.seed, int(epoch), name)
        variants = self.text_embeds.rows(name)  # manifest rows only; tensors are read below, one variant
        variant = int(torch.randint(len(variants), (1,), generator=generator))
        item = {tensor: self.text_embeds.tensor(name, tensor, variant) for tensor in _tensor_names(variants[variant])}
        latents = self.latents.sample(name, generator)
        target_h, target_w = (int(v) // self.downscale for v in self.time_ids[index, 4:])
        if tuple(latents.shape[-2:]) != (target_h, target_w):
            raise ValueError(
                f"{name}: latent {tuple(latents.shape)} does not match its bucket's target / {self.downscale} "
                f"({target_h}, {target_w}); vae_latents is older than aspect_buckets: materialize it again"
            )
        item.update(
            latents=latents,
            caption=variants[variant]["caption"],
            variant=variant,
            bucket=self.buckets[index],
            time_ids=self.time_ids[index].clone(),
            filename=name,
        )
        if self.frames is not None:
            fps = self.fps[index]
            item.update(frames=int(self.frames[index]), fps=float("nan") if fps is None else float(fps))
        if self.conditioning:
            item["conditioning"] = {
                c.backend_id: c.item(name, draw_generator(self.seed, int(epoch), f"{c.backend_id}/{name}"))
                for c in self.conditioning
            }
        return item

    def __repr__(self) -> str:
        return f"CachedSamples({len(self)} samples, {self.missing} missing from a cache, seed={self.seed})"


def _tensor_names(row: dict) -> list[str]:
    """The stored tensor names of a caption variant, refusing any that would shadow an item key."""
    clash = [n for n in row["tensor_names"] if n in ITEM_KEYS]
    if clash:
        raise ValueError(f"text embedding tensors {clash} clash with the item keys {ITEM_KEYS}")
    return list(row["tensor_names"])


class MultiBackendSamples(Dataset):
    """Several backends behind one Dataset; keys are (backend, epoch, index) as `MultiBackendSampler` yields them."""

    def __init__(self, datasets: Sequence[CachedSamples], names: Sequence[str] | None = None):
        self.datasets = list(datasets)
        self.names = list(names) if names is not None else [str(i) for i in range(len(self.datasets))]

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, Any]:
        backend, epoch, index = key
        return {**self.datasets[backend][(epoch, index)], "backend": self.names[backend]}
