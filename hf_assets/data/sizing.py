"""SimpleTuner's sample sizing, written fresh over numpy columns.

For every image: the aspect it is trained at, its target size, the size it is resized to before the crop,
and the crop box. The formulas are SimpleTuner's (`MultiaspectImage.calculate_new_size_by_pixel_edge` /
`_by_pixel_area`, `TrainingSample.calculate_target_size` and `_calculate_target_downsample_size`, the crop
handlers), with their integer truncations, so that a SimpleTuner dataloader config gives the same training
sizes. Targets depend only on the aspect and the image's orientation, so they are computed once per
(aspect, orientation) in a small table and gathered per row; only the resize is per row.

Two of SimpleTuner's results contradict its own intent and are corrected here (docs/simpletuner.md, "Where we differ
from SimpleTuner"): a resize that does not cover the target, or that is more than 2% off the image's own
aspect, becomes the aspect-preserving cover of the target at the same scale.
"""

import math
from dataclasses import dataclass

import numpy as np

from hf_assets.config.schema import BucketConfig

# SimpleTuner maps these megapixel values to the square edges users expect (0.5 MP -> 768 x 768).
_SQUARE_AREAS = ((0.25, 512**2), (0.5, 768**2), (1.0, 1024**2), (2.0, 1536**2), (4.0, 2048**2))
ASPECT_TOLERANCE = 0.02  # a resize further than this from the image's aspect is replaced
LANDSCAPE, PORTRAIT = 0, 1  # table columns: width >= height, width < height


def py_round(x, ndigits: int) -> np.ndarray:
    """Python's round(x, ndigits) on a float array, exactly (near-ties settled in extended precision)."""
    x = np.asarray(x, dtype=np.float64)
    scale = 10.0**ndigits
    y = x * scale
    out = np.rint(y)
    near_tie = np.abs(y - np.floor(y) - 0.5) < 1e-6
    if near_tie.any():
        exact = np.finfo(np.longdouble).nmant >= 63 and ndigits <= 3  # 53 + 10 bits: x * 10**3 is exact
        if exact:
            out[near_tie] = np.rint(x[near_tie].astype(np.longdouble) * np.longdouble(10**ndigits)).astype(np.float64)
        else:
            out[near_tie] = [round(float(v), ndigits) * scale for v in x[near_tie]]
            out[near_tie] = np.rint(out[near_tie])
    return out / scale


def align(v, m: int) -> np.ndarray:
    """The nearest multiple of m (ties to even, as Python's round), at least m."""
    return np.maximum(np.int64(m), np.rint(np.asarray(v, dtype=np.float64) / m).astype(np.int64) * m)


def area_mode(cfg: BucketConfig) -> bool:
    """Whether the config sizes by area (SimpleTuner turns pixel_area into area)."""
    return cfg.resolution_type in ("area", "pixel_area")


def internal_size(cfg: BucketConfig, value: float | None) -> float | None:
    """A size setting in SimpleTuner's internal unit: pixel_area edges become edge^2 / 1e6 megapixels."""
    if value is None or cfg.resolution_type != "pixel_area":
        return None if value is None else float(value)
    return float(value) * float(value) / 1e6


def target_area(cfg: BucketConfig) -> float:
    """The square target's pixel area in area modes (0.25/0.5/1/2/4 MP map to 512^2 ... 2048^2)."""
    mp = internal_size(cfg, cfg.resolution)
    return float(next((pixels for value, pixels in _SQUARE_AREAS if abs(mp - value) < 0.05), mp * 1e6))


def square_edge(cfg: BucketConfig) -> int:
    """The edge of square targets (SimpleTuner's pixel_resolution)."""
    if not area_mode(cfg):
        return int(cfg.resolution)
    return int(align(math.sqrt(target_area(cfg)), cfg.alignment))


@dataclass(frozen=True)
class TargetTable:
    """Targets per (aspect, orientation): shape (aspects, 2), columns LANDSCAPE and PORTRAIT."""

    aspects: np.ndarray  # (aspects,)
    raw_w: np.ndarray  # before alignment (pixel mode); the resize formula reads these
    raw_h: np.ndarray
    natural_w: np.ndarray  # aligned, as the size calculator returns them
    natural_h: np.ndarray
    square: np.ndarray  # the rounded target aspect is 1.0: the target becomes the square edge


def target_table(aspects: np.ndarray, resolution: float, cfg: BucketConfig) -> TargetTable:
    """SimpleTuner's size calculator's targets for each aspect, for landscape and portrait images."""
    m = cfg.alignment
    a = np.asarray(aspects, dtype=np.float64)[:, None]
    if area_mode(cfg):
        edge = int(align(int(math.sqrt(float(resolution) * 1e6)), m))
        root = np.sqrt(a)
        t_w = np.repeat(align(edge * root, m), 2, axis=1)
        t_h = np.repeat(align(edge / root, m), 2, axis=1)
        raw_w, raw_h = t_w.astype(np.float64), t_h.astype(np.float64)
    else:
        r = float(resolution)
        raw_w = np.concatenate([np.trunc(r * a), np.full(a.shape, r)], axis=1)
        raw_h = np.concatenate([np.full(a.shape, r), np.trunc(r / a)], axis=1)
        t_w, t_h = align(raw_w, m), align(raw_h, m)
    square = py_round(t_w / t_h, cfg.rounding) == 1.0
    return TargetTable(a[:, 0], raw_w, raw_h, t_w, t_h, square)


def intermediary_sizes(w, h, table: TargetTable, index: np.ndarray, resolution: float, cfg: BucketConfig):
    """SimpleTuner's resize (intermediary) size for each row, from its row of the target table."""
    wf, hf = w.astype(np.float64), h.astype(np.float64)
    ar = wf / hf
    flat = index * 2 + (w < h)
    a_w, a_h = table.natural_w.ravel()[flat], table.natural_h.ravel()[flat]
    if area_mode(cfg):
        # The target's shorter side is kept and the other follows the image; where that one falls short of its
        # target, it becomes the target and the kept side grows by the difference scaled by the image aspect.
        narrow = a_w < a_h
        kept = np.where(narrow, a_w, a_h).astype(np.float64)
        wanted = np.where(narrow, a_h, a_w)
        follow = np.trunc(np.where(narrow, kept / ar, kept * ar))
        short = np.flatnonzero(follow < wanted)
        if short.size:
            d, r = wanted[short] - follow[short], ar[short]
            kept[short] += np.trunc(np.where(narrow[short], d * r, d / r))
            follow[short] = wanted[short]
        i_w, i_h = np.where(narrow, kept, follow), np.where(narrow, follow, kept)
        edge = int(align(int(math.sqrt(float(resolution) * 1e6)), cfg.alignment))
        square_input = (w == h) & (table.aspects[index] == 1.0)
        i_w, i_h = np.where(square_input, edge, i_w), np.where(square_input, edge, i_h)
    else:
        # Landscape (w >= h, table column 0): the height is max(aligned, raw) and the width follows the image;
        # portrait: the other way round. Where the following side falls short of its aligned target, that side
        # becomes the target and the first one follows instead.
        landscape = w >= h
        raw = np.where(landscape, table.raw_h.ravel()[flat], table.raw_w.ravel()[flat])
        base = np.maximum(np.where(landscape, a_h, a_w), raw)
        other = np.where(landscape, a_w, a_h)
        follow = np.trunc(np.where(landscape, base * ar, base / ar))
        fix = np.flatnonzero(follow < other)
        if fix.size:
            follow[fix] = other[fix]
            o, r, land = other[fix], ar[fix], landscape[fix]
            base = base.astype(np.float64)
            base[fix] = np.trunc(np.where(land, o / r, o * r))
        i_w, i_h = np.where(landscape, follow, base), np.where(landscape, base, follow)
    return i_w.astype(np.int64), i_h.astype(np.int64)


def resize_sizes(w, h, t_w, t_h, table, index, image_table, image_index, cfg: BucketConfig):
    """The size each image is resized to before its crop: SimpleTuner's, or the cover where that one is wrong.

    `table`/`index` locate each row's chosen aspect; `image_table`/`image_index` its own rounded aspect at
    target_downsample_size (None unless maximum_image_size and target_downsample_size are both set).
    """
    p = square_edge(cfg)
    i_w, i_h = intermediary_sizes(w, h, table, index, internal_size(cfg, cfg.resolution), cfg)
    small = table.square.ravel()[index * 2 + (w < h)] & (i_w < p)
    i_w, i_h = np.where(small, p, i_w), np.where(small, p, i_h)
    if image_table is not None:
        if area_mode(cfg):
            resize = (w * h != target_area(cfg)) | (w < t_w) | (h < t_h)
        else:
            resize = (w != p) | (h != p)
        tds = internal_size(cfg, cfg.target_downsample_size)
        d_w, d_h = intermediary_sizes(w, h, image_table, image_index, tds if area_mode(cfg) else int(tds), cfg)
        narrow_w = d_w < t_w
        narrow_h = ~narrow_w & (d_h < t_h)
        d_w, d_h = (
            np.where(narrow_w, t_w, np.where(narrow_h, np.trunc(d_w * (t_h / d_h)), d_w)).astype(np.int64),
            np.where(narrow_w, np.trunc(d_h * (t_w / d_w)), np.where(narrow_h, t_h, d_h)).astype(np.int64),
        )
        i_w, i_h = np.where(resize, d_w, i_w), np.where(resize, d_h, i_h)
    return cover_fix(w, h, t_w, t_h, i_w, i_h)


def cover_fix(w, h, t_w, t_h, r_w, r_h):
    """Keep a resize that covers the target within 2% of the image aspect; else the cover at the same scale."""
    skew = np.abs((r_w * h) / (r_h * w.astype(np.float64)) - 1.0)
    bad = np.flatnonzero((r_w < t_w) | (r_h < t_h) | (skew > ASPECT_TOLERANCE))
    if bad.size == 0:
        return r_w, r_h
    r_w, r_h = r_w.copy(), r_h.copy()
    wf, hf = w[bad].astype(np.float64), h[bad].astype(np.float64)
    scale = np.maximum(np.sqrt(r_w[bad] * r_h[bad] / (wf * hf)), np.maximum(t_w[bad] / wf, t_h[bad] / hf))
    r_w[bad] = np.maximum(t_w[bad], np.rint(wf * scale).astype(np.int64))
    r_h[bad] = np.maximum(t_h[bad], np.rint(hf * scale).astype(np.int64))
    return r_w, r_h


def upscale_allowed(aspects, w, h, cfg: BucketConfig) -> np.ndarray | None:
    """(buckets, rows) mask of bucket targets within max_upscale_threshold of each image; None when unset."""
    if cfg.max_upscale_threshold is None:
        return None
    aspects = np.asarray(aspects, dtype=np.float64)
    limit = 1.0 + float(cfg.max_upscale_threshold)
    table = target_table(aspects, internal_size(cfg, cfg.resolution), cfg)
    col = (np.asarray(w) < np.asarray(h)).astype(np.int64)
    t_w, t_h = table.natural_w[:, col], table.natural_h[:, col]
    return (t_w <= np.asarray(w)[None, :] * limit) & (t_h <= np.asarray(h)[None, :] * limit)


def choose_buckets(image_aspect, w, h, cfg: BucketConfig, uniform) -> np.ndarray:
    """Index into crop_aspect_buckets per row (len(buckets) means the square fallback).

    `closest`: linear distance to the rounded image aspect, the first listed bucket wins ties. `random`: drawn
    with `uniform`, weighted when weights are given. Buckets over max_upscale_threshold are skipped in both;
    with none left the image is cropped square, as SimpleTuner does.
    """
    aspects = np.asarray(cfg.crop_aspect_buckets or (), dtype=np.float64)
    if aspects.size == 0:
        raise ValueError(f"crop_aspect {cfg.crop_aspect!r} needs crop_aspect_buckets, e.g. [0.75, 1.0, 1.33]")
    allowed = upscale_allowed(aspects, w, h, cfg)
    n, k = len(image_aspect), aspects.size
    pick = np.full(n, k, dtype=np.int64)
    if allowed is None and cfg.crop_aspect == "random":
        weights = np.asarray(cfg.crop_aspect_weights or np.ones(k), dtype=np.float64)
        cumulative = np.cumsum(weights)
        return np.minimum(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"), k - 1)
    if cfg.crop_aspect == "closest":
        best = np.full(n, np.inf)
        for j, a in enumerate(aspects):  # a few buckets: one pass each over the rows
            d = np.abs(a - image_aspect)
            better = d < best if allowed is None else (d < best) & allowed[j]  # strict: the first listed wins ties
            best, pick = np.where(better, d, best), np.where(better, j, pick)
        return pick
    weights = np.asarray(cfg.crop_aspect_weights or np.ones(k), dtype=np.float64)
    masked = [np.full(n, wj) if allowed is None else np.where(allowed[j], wj, 0.0) for j, wj in enumerate(weights)]
    threshold = uniform * np.sum(masked, axis=0)
    cumulative = np.zeros(n)
    for j in range(k):
        cumulative = cumulative + masked[j]
        pick = np.where((pick == k) & (cumulative > threshold) & (masked[j] > 0), j, pick)
    return pick


def crop_boxes(r_w, r_h, t_w, t_h, cfg: BucketConfig, u_x, u_y):
    """(left, top) of the target inside the resized image: centre, top-left corner, or uniform random."""
    slack_x, slack_y = np.maximum(r_w - t_w, 0), np.maximum(r_h - t_h, 0)
    if cfg.crop_style == "center":
        return slack_x // 2, slack_y // 2
    if cfg.crop_style == "corner":
        return np.zeros_like(slack_x), np.zeros_like(slack_y)
    left = np.minimum((u_x * (slack_x + 1)).astype(np.int64), slack_x)  # random: the loader accepts no other style
    top = np.minimum((u_y * (slack_y + 1)).astype(np.int64), slack_y)
    return left, top
