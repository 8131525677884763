"""What the encoding engine asks of a kind of sample (images, clips): which rows it wants under which keys, how one
sample is decoded and shaped, how a batch reaches the VAE. The plan, shard and commit steps are the same for all."""

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from hf_assets.cache.hashing import row_settings_hash, settings_hash
from hf_assets.data.sources import RawSplit
from hf_assets.encode.drop_records import DECODE_FAILURE, DECODER, failure_reason
from hf_assets.encode.engine_types import EncodeSettings, LatentSettings
from hf_assets.encode.image_source import content_hashes, iter_images
from hf_assets.encode.images import CorruptImage
from hf_assets.progress import ProgressLog

# Per-sample columns of the bucket table that shape a latent (all hashed into its key). source_width/height is
# the oriented full size the boxes were computed from: a sample of another size is dropped, not mis-cropped.
GEOMETRY = [
    "tile_left",
    "tile_top",
    "tile_right",
    "tile_bottom",
    "resize_width",
    "resize_height",
    "crop_left",
    "crop_top",
    "target_width",
    "target_height",
    "source_width",
    "source_height",
]
SLICE_ROWS = 2048  # rows turned into Python records at a time


class Media:
    """A kind of sample the engine encodes. Subclasses name the kind (a backend's `dataset_type`) and fill in how
    one sample is wanted, loaded and encoded; this class holds what every kind shares."""

    name = ""  # the backend's dataset_type
    unit = "samples"  # what progress and metadata count
    decoder = DECODER  # recorded with decode failures: they are tried again once another decoder is installed
    decode_failure = DECODE_FAILURE  # reason kind of a sample that does not decode: not retried for its key
    corrupt: type[Exception] = CorruptImage  # the error that means "does not decode"
    unreadable = "unreadable"  # reason of a sample whose bytes could not be read at all
    order: tuple[str, ...] = ("target_height", "target_width")  # within a fetch window: batches of one shape

    def factors(self, encoders) -> dict:
        """The VAE's latent factors (channels, downscale, normalisation) for this kind, from an `Encoders`,
        without loading weights; a ValueError with the fix when the VAE cannot encode this kind."""
        raise NotImplementedError

    def wanted(
        self,
        buckets: pa.Table,
        split: RawSplit,
        column: str,
        settings: LatentSettings,
        factors: dict,
        memo_dir: Path | None = None,
        progress: ProgressLog | None = None,
    ) -> tuple[pa.Table, dict[str, str]]:
        """(one row per sample to cache: file name, row, geometry, content and settings hashes; file name ->
        reason of the samples refused before encoding, none for images and clips)."""
        raise NotImplementedError

    def batch_size(self, settings: EncodeSettings) -> int:
        """Samples per VAE forward pass."""
        return settings.batch_size

    def spec(self, record: dict):
        """How to shape one sample, from its row of the plan (a plain record)."""
        raise NotImplementedError

    def shape(self, spec) -> tuple:
        """The shape a sample of this spec is encoded at: samples of one shape stack into a batch."""
        raise NotImplementedError

    def load(self, spec, source):
        """The decoded, shaped sample from its bytes or file path; raises `corrupt` when it does not decode."""
        raise NotImplementedError

    def encoder(self, vae, settings: EncodeSettings, log: Callable[[str], None]) -> Callable:
        """What encodes this kind's pixel batches with `vae`: called with a batch from `batches`, it gives the
        latent distribution (mean, std); its `device` is where batches go."""
        raise NotImplementedError

    def batches(
        self,
        rows: pa.Table,
        split: RawSplit,
        column: str,
        settings: EncodeSettings,
        encoder,
        failures: dict[str, str],
        log: Callable[[str], None],
    ) -> Iterator[tuple[list[str], object]]:
        """(cache keys, pixel batch) for the samples of `rows`, in order, decoded ahead on worker threads, each
        batch of one shape; a sample that fails to load is recorded in `failures` (cache key -> reason) and
        skipped."""
        raise NotImplementedError

    def meta(self) -> dict:
        """What the cache's metadata records about these samples besides the VAE's factors ({} for most)."""
        return {}

    def stored(self, pixels) -> dict:
        """Tensors stored beside the latents of a pixel batch, by name, batch first ({}: mean and std only)."""
        return {}

    def failure_reason(self, error: BaseException) -> str:
        """A sample's drop reason: `decode_failure` when it does not decode (not retried), else retried."""
        return failure_reason(error, self.corrupt, self.decode_failure)

    def _jobs(self, rows: pa.Table, split: RawSplit, column: str, keys=None) -> Iterator[tuple[str, object, object]]:
        """(cache key, spec, bytes or path) of each row to encode; a row without a key is keyed by `keys(record,
        source)` from its fetched bytes, and skipped when that gives None (see encode.fetch_hashes)."""
        sources = iter_images(split, column, rows.column("row").to_numpy())  # one stream: reads ahead, once
        for start in range(0, rows.num_rows, SLICE_ROWS):
            for record, source in zip(rows.slice(start, SLICE_ROWS).to_pylist(), sources):
                if record["key"] is None:
                    record["key"] = keys(record, source)
                    if record["key"] is None:
                        continue
                yield record["key"], self.spec(record), source

    def _load(self, job):
        _, spec, source = job
        return self.load(spec, source)


def keyed_rows(
    buckets: pa.Table,
    split: RawSplit,
    column: str,
    settings: dict,
    extra: dict[str, pa.Array] | None = None,
    hashed: list[np.ndarray] | None = None,
    memo_dir: Path | None = None,
    progress: ProgressLog | None = None,
    defer: bool = False,
) -> pa.Table:
    """The bucket table's file name, row and GEOMETRY, the `extra` columns, each row's content hash ("" when its
    bytes cannot be read; with `defer`, null when it is not known without reading them) and its settings hash:
    `settings` (the same for every row) joined with the row's geometry and the per-row values in `hashed`."""
    base = settings_hash(settings)
    geometry = np.stack([buckets.column(c).to_numpy(zero_copy_only=False) for c in GEOMETRY] + (hashed or []), axis=1)
    per_row = [row_settings_hash(base, g) for g in geometry.tolist()]
    table = buckets.select(["filename", "row"] + GEOMETRY)
    for name, values in (extra or {}).items():
        table = table.append_column(name, values)
    rows = table.column("row").to_numpy()
    table = table.append_column("content_hash", content_hashes(split, column, rows, memo_dir, progress, defer))
    return table.append_column("settings_hash", pa.array(per_row, pa.string()))
