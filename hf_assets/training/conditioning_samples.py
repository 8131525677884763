"""The trainer's view of a conditioning dataset: for each source sample, its partner's cached latents, and the
control pixels or mask stored beside them.

A conditioning cache is a latent cache whose manifest rows also name their source sample (`source_filename`, from
the paired bucket table) and whose `manifest.json` records the pairing (`conditioning_type`, `source`). Strict
partners (controlnet, mask, reference_strict) have their source's target size; loose ones (reference_loose) their own,
which `CachedSamples` hands to the samplers so that a batch still stacks.
"""

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import torch

from hf_assets.cache.latents import LatentCache
from hf_assets.data.pairing import PARTNER

STRICT = ("controlnet", "mask", "reference_strict")
PIXELS = "pixels"  # uint8 (3, H, W): the conditioning image at the target size (controlnet datasets)
MASK = "mask"  # uint8 (1, H, W): the mask at the target size (mask datasets)


class ConditioningSamples:
    """One conditioning dataset paired with a source: `partner[source file name]` and each partner's tensors."""

    def __init__(self, backend_id: str, pairs: pa.Table, latents: LatentCache, conditioning_type: str | None = None):
        self.backend_id = backend_id
        self.latents = latents
        self.conditioning_type = conditioning_type or latents.meta.get("conditioning_type") or "reference_strict"
        if PARTNER not in pairs.column_names:
            raise ValueError(
                f"{backend_id}: its aspect_buckets has no {PARTNER!r} column: it is not a conditioning dataset "
                "(give conditioning_data or source_dataset_id in the dataloader config, or a conditioning list)"
            )
        names = pairs.column("filename").to_pylist()
        sources = pairs.column(PARTNER).to_pylist()
        widths = pairs.column("target_width").to_pylist()
        heights = pairs.column("target_height").to_pylist()
        # only partners that were encoded: a conditioning image that failed to decode takes its pair out
        self.partner = {s: n for s, n in zip(sources, names) if n in latents}
        self.size = {s: (w, h) for s, n, w, h in zip(sources, names, widths, heights) if n in latents}

    @property
    def strict(self) -> bool:
        """True when a partner has exactly its source sample's size and crop."""
        return self.conditioning_type in STRICT

    def __contains__(self, source_name: object) -> bool:
        return source_name in self.partner

    def sizes(self, source_names: Sequence[str]) -> np.ndarray:
        """(N, 2) int64 (target_width, target_height) of each source sample's partner."""
        return np.asarray([self.size[name] for name in source_names], dtype=np.int64).reshape(-1, 2)

    def item(self, source_name: str, generator: torch.Generator) -> dict:
        """The partner of one source sample: a fresh latent draw (scaled for the denoiser), and the control image
        in [0, 1] (`pixel_values`, (3, H, W)) or mask in [0, 1] (`mask`, (1, H, W)) where the cache stores them."""
        name = self.partner[source_name]
        item = {"latents": self.latents.sample(name, generator), "filename": name}
        stored = self.latents.tensor_names(name)
        if PIXELS in stored:
            item["pixel_values"] = self.latents.tensor(name, PIXELS).float().div_(255.0)
        if MASK in stored:
            item["mask"] = self.latents.tensor(name, MASK).float().div_(255.0)
        return item

    def __repr__(self) -> str:
        return f"ConditioningSamples({self.backend_id!r}, {self.conditioning_type}, {len(self.partner)} pairs)"
