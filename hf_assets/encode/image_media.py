"""Images for the encoding engine: the latents an image backend wants, each image decoded, tiled, resized and
cropped exactly as its bucket row says (on the decode threads, or JPEGs on the GPU), and encoded by an image VAE
(AutoencoderKL) at the device's pace (`vae_runner.VaeRunner`)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from hf_assets.data.row_fetch import is_remote
from hf_assets.data.sources import RawSplit
from hf_assets.encode.decode_workers import prefetch_depth
from hf_assets.encode.engine_types import EncodeSettings, LatentSettings
from hf_assets.encode.gpu_decode import DeviceDecoder, prepare_decode
from hf_assets.encode.images import load_pixels
from hf_assets.encode.media import Media, keyed_rows
from hf_assets.encode.model_loading import is_video_vae
from hf_assets.encode.overlap import in_background, stacked_batches
from hf_assets.encode.prefetch import group_batches, prefetch
from hf_assets.encode.vae import vae_factors_from_config
from hf_assets.encode.vae_runner import VaeRunner, runner_for
from hf_assets.progress import ProgressLog


def wanted_latents(
    buckets: pa.Table,
    split: RawSplit,
    image_column: str,
    settings: LatentSettings,
    memo_dir: Path | None = None,
    progress: ProgressLog | None = None,
    defer: bool = False,
) -> pa.Table:
    """One row per sample: file name, geometry, content hash of its bytes and hash of every setting that shapes it.
    With `defer`, a row whose hash is not memoised has none (null): its shard hashes the bytes it fetches."""
    fields = settings.key_fields()
    return keyed_rows(buckets, split, image_column, fields, memo_dir=memo_dir, progress=progress, defer=defer)


class ImageMedia(Media):
    """Images: one latent (C, H/f, W/f) per bucketed sample."""

    name = "image"
    unit = "images"
    unreadable = "unreadable_image"
    device_decode = True  # JPEGs may be decoded on the GPU (settings.decode nvjpeg)

    def factors(self, encoders) -> dict:
        config = encoders.vae_config()
        if is_video_vae(config):
            raise ValueError(
                f"the model {encoders.model!r} has a video VAE ({config.get('_class_name')}), and this backend "
                "holds images: name an image pipeline in its pretrained_model_name_or_path (or HF_ASSETS_MODEL), "
                'or set dataset_type "video" for clips'
            )
        return vae_factors_from_config(config)

    def wanted(self, buckets, split, column, settings, factors, memo_dir=None, progress=None):
        # A remote split's images are read once: by the shard that encodes them, which hashes them as it goes.
        return wanted_latents(buckets, split, column, settings, memo_dir, progress, defer=is_remote(split)), {}

    def spec(self, record: dict) -> dict:
        return {
            "tile": (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"]),
            "resize": (record["resize_width"], record["resize_height"]),
            "crop": (
                record["crop_left"],
                record["crop_top"],
                record["crop_left"] + record["target_width"],
                record["crop_top"] + record["target_height"],
            ),
            "target": (record["target_width"], record["target_height"]),
            "source": (record["source_width"], record["source_height"])
            if record["source_width"] is not None and record["source_height"] is not None
            else None,
        }

    def shape(self, spec: dict) -> tuple:
        return spec["target"]

    def load(self, spec: dict, source):
        return load_pixels(
            _source_bytes(source), spec["tile"], spec["resize"], spec["crop"], expected_size=spec["source"]
        )

    def encoder(self, vae, settings: EncodeSettings, log: Callable[[str], None]) -> VaeRunner:
        return runner_for(
            vae, settings.memory_format, settings.compile, settings.batch_size, log, settings.compile_cache
        )

    def batches(self, rows, split, column, settings, encoder: VaeRunner, failures, log, keys=None) -> Iterator:
        """(keys, uint8 images) batches of one target size: decoded ahead on the decode threads (JPEGs only read
        there when `settings.decode` is nvjpeg: decoded on the device) and stacked on a background thread; `keys`
        keys the rows that have none from their fetched bytes (`Media._jobs`)."""

        def limit(target: tuple[int, int]) -> int:
            return encoder.batch_limit(target[1], target[0])

        decoder = DeviceDecoder(encoder.device) if settings.decode == "nvjpeg" and self.device_decode else None
        sizes = rows.group_by(["target_width", "target_height"]).aggregate([])
        largest = max(map(limit, zip(*(sizes.column(c).to_pylist() for c in ("target_width", "target_height")))))
        load = self._load if decoder is None else self._load_for_device
        depth = prefetch_depth(largest, settings.decode_workers)
        items = prefetch(
            self._jobs(rows, split, column, keys), load, workers=settings.decode_workers, max_in_flight=depth
        )
        groups = group_batches(items, lambda job: job[1]["target"], limit, failures, self.failure_reason, 4 * largest)
        groups = self.ready(groups)
        yield from in_background(stacked_batches(groups, encoder.device, decoder, failures, self.failure_reason))
        if decoder is not None and decoder.fallbacks:
            log(f"{decoder.fallbacks} JPEG(s) the GPU could not decode were decoded by Pillow")

    def ready(self, groups: Iterator[list]) -> Iterator[list]:
        """The (key, image) batches as the VAE gets them (a subclass may transform each batch: depth maps)."""
        return groups

    def _load_for_device(self, job):
        """A JPEG's header checked and its bytes kept for the device decoder; any other image decoded by Pillow."""
        _, spec, source = job
        return prepare_decode(
            _source_bytes(source), spec["tile"], spec["resize"], spec["crop"], expected_size=spec["source"]
        )


def _source_bytes(source) -> bytes:
    if source is None:
        raise ValueError("no image bytes or path")
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()  # a file that cannot be read is retried next run, not a decode failure
    return source


IMAGES = ImageMedia()
