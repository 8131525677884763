"""Clips for the encoding engine: each clip trimmed to the VAE's frame rule, its frames decoded (streamed, PyAV),
resized and cropped as its bucket row says, and encoded by a video VAE (Wan, LTX-Video, HunyuanVideo, CogVideoX)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from hf_assets.data.frame_selection import latent_frames, trim_to_rule
from hf_assets.data.sources import RawSplit
from hf_assets.encode.engine_types import EncodeSettings, LatentSettings
from hf_assets.encode.frame_decode import ClipSpec, CorruptVideo, load_clip
from hf_assets.encode.media import Media, keyed_rows
from hf_assets.encode.prefetch import group_batches, prefetch
from hf_assets.encode.video_vae import encode_clips, prepare_video_vae
from hf_assets.progress import ProgressLog

VIDEO_FORMAT = 1
TILED = True  # the VAE encodes in spatial tiles where it can (part of the key: tiling changes the result)
DECODER = f"PyAV {av.__version__} (FFmpeg {'.'.join(map(str, av.library_versions.get('libavcodec', ())))})"
CLIPS_PER_IMAGE_BATCH = 4  # a clip batch holds a quarter of the image batch size (at least one clip)


def wanted_video_latents(
    buckets: pa.Table,
    split: RawSplit,
    column: str,
    settings: LatentSettings,
    factors: dict,
    tiled: bool = TILED,
    memo_dir: Path | None = None,
    progress: ProgressLog | None = None,
) -> pa.Table:
    """One row per clip to cache: geometry, num_frames after the VAE's rule, latent_frames, fps, content and settings
    hashes. Every clip of the bucket table is kept: min_frames and max_frames chose the source clips at scan time
    (each has at least one frame), and a clip's `frames` trimmed to the VAE's rule still has at least one."""
    k = int(factors["temporal_downscale"])
    chosen = buckets.column("frames").to_numpy(zero_copy_only=False).astype(np.int64)
    if chosen.size and chosen.min() < 1:
        raise ValueError("a video bucket table holds a clip of no frame; the scan drops those (too_few_frames)")
    frames = trim_to_rule(chosen, k)
    fps = buckets.column("fps") if "fps" in buckets.column_names else pa.nulls(buckets.num_rows, pa.float32())
    extra = {
        "num_frames": pa.array(frames.astype(np.int32), pa.int32()),
        "latent_frames": pa.array(latent_frames(frames, k).astype(np.int32), pa.int32()),
        "fps": pc.cast(fps, pa.float32()),
    }
    shared = {**settings.key_fields(), "video_format": VIDEO_FORMAT, "tiled": tiled, "start_frame": 0}
    return keyed_rows(buckets, split, column, shared, extra, [frames], memo_dir, progress)


class ClipEncoder:
    """(mean, std) of a video VAE for a batch of clips already on its device (B, 3, T, H, W) in [-1, 1]."""

    def __init__(self, vae: torch.nn.Module):
        prepare_video_vae(vae, TILED)
        param = next(vae.parameters())
        self.vae, self.device, self.dtype = vae, param.device, param.dtype

    def pixels(self, clips: list[np.ndarray]) -> torch.Tensor:
        """uint8 (T, H, W, 3) clips of one shape to (B, 3, T, H, W) in [-1, 1] on the VAE's device and dtype."""
        stacked = torch.from_numpy(np.stack(clips))
        if self.device.type == "cuda":
            stacked = stacked.pin_memory().to(self.device, non_blocking=True)
        return stacked.permute(0, 4, 1, 2, 3).to(self.dtype).div_(127.5).sub_(1.0)

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_clips(self.vae, pixels)


class ClipMedia(Media):
    """Clips: one latent (C, T', H/f, W/f) per bucketed clip, T' from its frames after the VAE's rule."""

    name = "video"
    unit = "clips"
    decoder = DECODER
    decode_failure = "corrupt_video"
    corrupt = CorruptVideo
    unreadable = "unreadable_video: no clip bytes or file"
    order = ("target_height", "target_width", "num_frames")

    def factors(self, encoders) -> dict:
        try:
            return video_factors_for(encoders)
        except ValueError as exc:
            raise ValueError(
                f"this backend holds clips, but the VAE of the model {encoders.model!r} is not a video VAE "
                f"({exc}); name a video pipeline (Wan, LTX-Video, HunyuanVideo or CogVideoX) in its "
                "pretrained_model_name_or_path (or HF_ASSETS_VIDEO_MODEL)"
            ) from None

    def wanted(self, buckets, split, column, settings, factors, memo_dir=None, progress=None):
        return wanted_video_latents(buckets, split, column, settings, factors, TILED, memo_dir, progress), {}

    def batch_size(self, settings: EncodeSettings) -> int:
        return max(1, settings.batch_size // CLIPS_PER_IMAGE_BATCH)

    def spec(self, record: dict) -> ClipSpec:
        return ClipSpec(
            start=0,
            count=record["num_frames"],
            resize=(record["resize_width"], record["resize_height"]),
            crop=(
                record["crop_left"],
                record["crop_top"],
                record["crop_left"] + record["target_width"],
                record["crop_top"] + record["target_height"],
            ),
            source=(record["source_width"], record["source_height"]),
        )

    def shape(self, spec: ClipSpec) -> tuple:
        return spec.crop[2] - spec.crop[0], spec.crop[3] - spec.crop[1], spec.count

    def load(self, spec: ClipSpec, source):
        if source is None:
            raise CorruptVideo("no clip bytes or path")
        return load_clip(source, spec)

    def encoder(self, vae, settings: EncodeSettings, log: Callable[[str], None]) -> ClipEncoder:
        return ClipEncoder(vae)

    def batches(self, rows, split, column, settings, encoder: ClipEncoder, failures, log) -> Iterator:
        """(keys, clip tensor) batches of one (size, frame count), decoded ahead on the decode threads."""
        size, workers = self.batch_size(settings), settings.decode_workers
        items = prefetch(self._jobs(rows, split, column), self._load, workers=workers, max_in_flight=max(size, workers))
        for batch in group_batches(items, lambda job: self.shape(job[1]), size, failures, self.failure_reason):
            yield [key for key, _ in batch], encoder.pixels([clip for _, clip in batch])


def video_factors_for(models) -> dict:
    """The video VAE factors of an `Encoders` (config, plus LTX's stored statistics), without loading weights."""
    from hf_assets.encode.model_files import resolve_root
    from hf_assets.encode.video_vae import video_vae_factors

    path, sub, setting = models.vae_source
    root = resolve_root(path, setting).path
    folder = root / sub if sub and (root / sub).is_dir() else root
    return video_vae_factors(models.vae_config(), folder)


CLIPS = ClipMedia()
