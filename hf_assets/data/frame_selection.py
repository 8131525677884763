"""Which frames of each clip are trained on: SimpleTuner's video settings and each VAE's frame-count rule."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import VideoConfig

TOO_MANY_FRAMES = "too_many_frames"


def selected_frames(available, cfg: VideoConfig) -> np.ndarray:
    """Frames trained on per clip, before the VAE's rule: its first num_frames (all when unset), and with
    bucket_strategy "resolution_frames" rounded down to a multiple of frame_interval (kept when that gives 0)."""
    frames = np.asarray(available, dtype=np.int64)
    if cfg.num_frames is not None:
        frames = np.minimum(frames, cfg.num_frames)
    if cfg.bucket_strategy == "resolution_frames" and cfg.frame_interval:
        rounded = frames // cfg.frame_interval * cfg.frame_interval
        frames = np.where(rounded > 0, rounded, frames)
    return frames


def too_many_frames_mask(available, cfg: VideoConfig) -> np.ndarray:
    """Clips longer than video.max_frames (SimpleTuner skips them)."""
    frames = np.asarray(available, dtype=np.int64)
    if cfg.max_frames is None:
        return np.zeros(frames.shape, dtype=bool)
    return frames > cfg.max_frames


def trim_to_rule(frames, temporal_factor: int) -> np.ndarray:
    """The nearest frame count at or below `frames` that the VAE accepts: frames % temporal_factor == 1
    (LTX: 8, Wan, HunyuanVideo and CogVideoX: 4); 0 for a clip with no frame."""
    frames = np.asarray(frames, dtype=np.int64)
    k = max(int(temporal_factor), 1)
    return np.where(frames >= 1, (frames - 1) // k * k + 1, 0)


def latent_frames(frames, temporal_factor: int) -> np.ndarray:
    """Latent frames of a clip of `frames` (already trimmed): 1 + (T - 1) / factor."""
    return 1 + (np.asarray(frames, dtype=np.int64) - 1) // max(int(temporal_factor), 1)


def frame_bucket_keys(target_w, target_h, frames) -> pa.Array:
    """Bucket names "WxH@F" (bucket_strategy "resolution_frames")."""
    w, h, f = (np.asarray(a, dtype=np.int64) for a in (target_w, target_h, frames))
    return pa.array([f"{a}x{b}@{c}" for a, b, c in zip(w.tolist(), h.tolist(), f.tolist())], pa.string())


def assign_frames(buckets: pa.Table, cfg: VideoConfig) -> pa.Table:
    """The bucket table of a video backend with a `frames` column (frames trained on, before the VAE's rule);
    with bucket_strategy "resolution_frames" its bucket becomes "WxH@F"."""
    if "num_frames" not in buckets.column_names:
        raise ValueError("a video bucket table needs the filtered index's num_frames column")
    available = pc.fill_null(buckets.column("num_frames"), 0).to_numpy()
    frames = selected_frames(available, cfg)
    table = buckets.append_column(pa.field("frames", pa.int32()), pa.array(frames.astype(np.int32), pa.int32()))
    if cfg.bucket_strategy == "resolution_frames":
        keys = frame_bucket_keys(
            table.column("target_width").to_numpy(), table.column("target_height").to_numpy(), frames
        )
        table = table.set_column(table.schema.get_field_index("bucket"), "bucket", keys)
    return table
