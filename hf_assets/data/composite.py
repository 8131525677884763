"""Which box of a composite (multi-tile) image a row keeps, for whole columns of sizes at once."""

import math

import numpy as np

from hf_assets.config.schema import CompositeConfig


def grid_shape(image_count: int) -> tuple[int, int]:
    """(columns, rows) of a grid of image_count tiles: columns = ceil(sqrt(n)), rows = ceil(n / columns)."""
    columns = math.isqrt(image_count)
    if columns * columns < image_count:
        columns += 1
    return columns, -(-image_count // columns)


def tile_boxes(widths: np.ndarray, heights: np.ndarray, cfg: CompositeConfig) -> np.ndarray:
    """(N, 4) int32 boxes (left, top, right, bottom) of the kept tile in each displayed image.

    `cfg` is as the config loader validated it (image_count >= 1, 0 <= select_index < image_count, a known layout).
    """
    widths = np.asarray(widths, dtype=np.int64)
    heights = np.asarray(heights, dtype=np.int64)
    if widths.shape != heights.shape or widths.ndim != 1:
        raise ValueError(f"widths and heights must be 1-D and equal length, got {widths.shape} and {heights.shape}")
    zeros = np.zeros_like(widths)
    if not cfg.enabled:
        return np.stack([zeros, zeros, widths, heights], axis=1).astype(np.int32)
    if cfg.layout == "horizontal":
        columns, rows = cfg.image_count, 1
    elif cfg.layout == "vertical":
        columns, rows = 1, cfg.image_count
    else:
        columns, rows = grid_shape(cfg.image_count)
    column, row = cfg.select_index % columns, cfg.select_index // columns
    tile_width, tile_height = widths // columns, heights // rows
    left, top = column * tile_width, row * tile_height
    return np.stack([left, top, left + tile_width, top + tile_height], axis=1).astype(np.int32)
