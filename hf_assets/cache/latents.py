"""The trainer's view of a latent cache: file name -> latent mean, with std, geometry and scaling on request."""

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import torch

from hf_assets.cache.reader import LazyTensorMapping
from hf_assets.cache.view import CacheView


def normalise_latents(z: torch.Tensor, meta: Mapping) -> torch.Tensor:
    """What the denoiser trains on, as each pipeline computes it from a VAE sample: (z - mean_c) * scaling / std_c
    with the VAE's per-channel statistics (Wan, LTX-Video), else (z - shift_factor) * scaling_factor.

    z is one latent, (C, H, W) or for clips (C, T, H, W), or a batch of them; the statistics run along C.
    """
    scaling = float(meta.get("scaling_factor", 1.0))
    mean, std = meta.get("latents_mean"), meta.get("latents_std")
    if mean is None or std is None:
        return (z - float(meta.get("shift_factor") or 0.0)) * scaling
    mean_t = torch.as_tensor(mean, dtype=z.dtype, device=z.device)
    std_t = torch.as_tensor(std, dtype=z.dtype, device=z.device)
    channel_axis = z.ndim - (4 if meta.get("temporal_downscale") else 3)
    shape = [1] * z.ndim
    shape[channel_axis] = -1
    return (z - mean_t.view(shape)) * scaling / std_t.view(shape)


class LatentCache(CacheView):
    """Lazy `filename -> mean (C, H/f, W/f)`, or (C, T', H/f, W/f) for clips; reading a key reads only that sample
    from its memory-mapped shard."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._entries = LazyTensorMapping(self.directory, key_column="filename")

    def __getitem__(self, filename: str) -> torch.Tensor:
        return self._entries.tensor(filename, "mean")

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __contains__(self, filename: object) -> bool:
        return filename in self._entries

    @property
    def is_video(self) -> bool:
        """True for clip latents (C, T', H/f, W/f) from a video VAE."""
        return bool(self.meta.get("temporal_downscale"))

    def values(self, column: str, filenames: Sequence[str]) -> list:
        """One manifest column (e.g. num_frames, fps of clips) for the given samples, in their order."""
        manifest = self._entries.manifest
        at = pc.index_in(pa.array(list(filenames), pa.string()), value_set=manifest.column("filename").combine_chunks())
        return manifest.column(column).take(at).to_pylist()

    def std(self, filename: str) -> torch.Tensor:
        """The latent distribution's standard deviation."""
        return self._entries.tensor(filename, "std")

    def tensor_names(self, filename: str) -> tuple[str, ...]:
        """The names of the tensors stored for a sample (mean, std, and e.g. pixels or mask of conditioning)."""
        return self._entries.tensor_names(filename)

    def tensor(self, filename: str, name: str) -> torch.Tensor:
        """One stored tensor of a sample, by name."""
        return self._entries.tensor(filename, name)

    def entry(self, filename: str) -> dict:
        """The manifest row: sizes, tile and crop box, content and settings hashes, shard."""
        return self._entries.row(filename)

    @property
    def meta(self) -> dict:
        return self._entries.meta

    @property
    def scaling_factor(self) -> float:
        return float(self.meta["scaling_factor"])

    @property
    def shift_factor(self) -> float:
        return float(self.meta.get("shift_factor", 0.0))

    @property
    def latents_mean(self) -> list[float] | None:
        """The VAE's per-channel latent means (Wan, LTX-Video), None when it normalises by scaling/shift only."""
        return self.meta.get("latents_mean")

    @property
    def latents_std(self) -> list[float] | None:
        return self.meta.get("latents_std")

    def sample(self, filename: str, generator: torch.Generator | None = None, scaled: bool = True) -> torch.Tensor:
        """A fresh draw mean + std * noise, normalised as the model's pipeline does (see `normalise_latents`)."""
        mean, std = self[filename].float(), self.std(filename).float()
        z = mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return self.normalise(z) if scaled else z

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        """A raw VAE latent (C, ...) or batch (B, C, ...) in the scale the denoiser trains on."""
        return normalise_latents(z, self.meta)

    def __repr__(self) -> str:
        return f"LatentCache({str(self.directory)!r}, {len(self)} samples)"


def open_latents(directory: str | Path) -> LatentCache:
    """Open a committed latent cache without reading any tensor."""
    return LatentCache(directory)
