"""The trainer's view of a latent cache: file name -> latent mean, with std, geometry and scaling on request."""

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from hf_assets.cache.reader import LazyTensorMapping


class LatentCache(Mapping):
    """Lazy `filename -> mean (C, H/f, W/f)`; reading a key reads only that sample from its memory-mapped shard."""

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

    def std(self, filename: str) -> torch.Tensor:
        """The latent distribution's standard deviation."""
        return self._entries.tensor(filename, "std")

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

    def sample(self, filename: str, generator: torch.Generator | None = None, scaled: bool = True) -> torch.Tensor:
        """A fresh draw mean + std * noise; scaled as the denoiser expects: (z - shift_factor) * scaling_factor."""
        mean, std = self[filename].float(), self.std(filename).float()
        z = mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return (z - self.shift_factor) * self.scaling_factor if scaled else z

    def __repr__(self) -> str:
        return f"LatentCache({str(self.directory)!r}, {len(self)} samples)"


def open_latents(directory: str | Path) -> LatentCache:
    """Open a committed latent cache without reading any tensor."""
    return LatentCache(directory)
