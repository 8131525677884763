"""The bucketing keys of one backend entry, checked together and read into a `BucketConfig`.

Meanings are SimpleTuner's: `pixel` edges, `pixel_area` edges of an equal-area square, `area` megapixels;
`maximum_image_size` + `target_downsample_size` (resize before the crop), `max_upscale_threshold`,
`minimum_aspect_ratio` / `maximum_aspect_ratio`, `aspect_bucket_rounding`, `aspect_bucket_alignment`, and
`crop_aspect_buckets` as numbers or as SimpleTuner's weighted `[{"aspect": 1.0, "weight": 0.5}, ...]`.
"""

import math
from collections.abc import Callable
from typing import Any

from hf_assets.config.schema import BucketConfig

Report = Callable[[str], None]
MAX_EDGE = 32768  # pixels; larger is a typo (1e308 would overflow to a 64 x 64 target)
MAX_MEGAPIXELS = 64.0


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_aspect_buckets(value: Any, problem: Report) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """(aspects, weights) from a list of numbers or of {"aspect": a, "weight": w} objects."""
    if value is None:
        return None, None
    fix = 'a list of aspect ratios such as [0.75, 1.0, 1.33], or [{"aspect": 1.0, "weight": 0.6}, ...]'
    if not isinstance(value, list) or not value:
        problem(f"key 'crop_aspect_buckets' must be {fix}")
        return None, None
    if all(_number(v) for v in value):
        if any(v <= 0 for v in value):
            problem(f"key 'crop_aspect_buckets' has a value <= 0 ({value}); every aspect must be > 0")
            return None, None
        return tuple(float(v) for v in value), None
    if all(isinstance(v, dict) for v in value):
        aspects, weights = [], []
        for i, item in enumerate(value):
            extra = sorted(set(item) - {"aspect", "weight"})
            a, w = item.get("aspect"), item.get("weight")
            if extra or not _number(a) or a <= 0 or not _number(w) or w <= 0:
                problem(f'crop_aspect_buckets[{i}] must be {{"aspect": number > 0, "weight": number > 0}}, got {item}')
                return None, None
            aspects.append(float(a))
            weights.append(float(w))
        if abs(sum(weights) - 1.0) > 1e-6:
            problem(f"the weights of crop_aspect_buckets add up to {sum(weights):g}; make them add up to 1.0")
            return None, None
        return tuple(aspects), tuple(weights)
    problem(f"key 'crop_aspect_buckets' must be {fix} (not a mix), got {value!r:.80}")
    return None, None


def _check_size(key: str, value: Any, resolution_type: str, problem: Report) -> float | None:
    """A resolution-like size in the unit of resolution_type, or None (with a problem) when out of range."""
    if value is None:
        return None
    if not _number(value) or value <= 0:
        problem(f"key '{key}' must be a number > 0, got {value!r}")
        return None
    if resolution_type == "area":
        if value > MAX_MEGAPIXELS:
            problem(
                f"key '{key}' is {value:g} with resolution_type \"area\", i.e. {value:g} megapixels; "
                'give megapixels (e.g. 1.0) or use resolution_type "pixel_area" for pixel edges'
            )
            return None
    elif value > MAX_EDGE or value < 8:
        problem(
            f"key '{key}' is {value:g} with resolution_type \"{resolution_type}\"; give a pixel edge between "
            f"8 and {MAX_EDGE} (e.g. 1024)"
        )
        return None
    return float(value)


def parse_buckets(m: dict, problem: Report, warn: Report) -> BucketConfig | None:
    """The BucketConfig of a merged entry; every problem and ignored key is reported, None when any problem."""
    count = 0

    def bad(message: str) -> None:
        nonlocal count
        count += 1
        problem(message)

    rtype = m.get("resolution_type", "pixel_area")
    resolution = _check_size("resolution", m.get("resolution", 1.0 if rtype == "area" else 1024), rtype, bad)
    if rtype == "pixel" and resolution is not None and resolution != int(resolution):
        bad(f"key 'resolution' must be a whole number of pixels with resolution_type \"pixel\", got {resolution:g}")
    minimum = _check_size("minimum_image_size", m.get("minimum_image_size") or None, rtype, bad)  # 0: no minimum
    maximum = _check_size("maximum_image_size", m.get("maximum_image_size"), rtype, bad)
    downsample = _check_size("target_downsample_size", m.get("target_downsample_size"), rtype, bad)
    if (maximum is None) != (downsample is None) and not count:
        given, missing = (
            ("maximum_image_size", "target_downsample_size")
            if downsample is None
            else ("target_downsample_size", "maximum_image_size")
        )
        bad(f"key '{given}' needs key '{missing}' too (resize before the crop uses both); set it or remove '{given}'")
    if rtype == "pixel" and downsample is not None and downsample != int(downsample):
        bad("key 'target_downsample_size' must be a whole number of pixels with resolution_type \"pixel\"")
    crop = m.get("crop", False)
    crop_aspect = m.get("crop_aspect", "square")
    style = m.get("crop_style", "random")
    if style == "face":
        bad(
            'crop_style "face" is not supported (it needs face detection on decoded images); '
            'use one of "center", "corner", "random"'
        )
    aspects, weights = parse_aspect_buckets(m.get("crop_aspect_buckets"), bad)
    if crop and crop_aspect in ("closest", "random") and aspects is None and "crop_aspect_buckets" not in m:
        bad(f"crop_aspect \"{crop_aspect}\" needs key 'crop_aspect_buckets', e.g. [0.75, 1.0, 1.33]")
    threshold = m.get("max_upscale_threshold")
    if threshold is not None and (not _number(threshold) or threshold < 0):
        bad(f"key 'max_upscale_threshold' must be a number >= 0 (0.2 allows 20% upscaling), got {threshold!r}")
    low, high = m.get("minimum_aspect_ratio"), m.get("maximum_aspect_ratio")
    for key, value in (("minimum_aspect_ratio", low), ("maximum_aspect_ratio", high)):
        if value is not None and (not _number(value) or value <= 0):
            bad(f"key '{key}' must be an aspect ratio > 0 (width / height, e.g. 0.5), got {value!r}")
    if _number(low) and _number(high) and low > high:
        bad(f"minimum_aspect_ratio ({low}) is above maximum_aspect_ratio ({high}); no bucket could be kept")
    rounding = m.get("aspect_bucket_rounding", 2)
    if not (isinstance(rounding, int) and not isinstance(rounding, bool) and 0 <= rounding <= 4):
        bad(f"key 'aspect_bucket_rounding' must be a whole number from 0 to 4 (decimals), got {rounding!r}")
    if count:
        return None

    if maximum is not None and not crop:
        warn(
            "keys 'maximum_image_size' and 'target_downsample_size' are accepted but not used: SimpleTuner "
            'resizes before the crop only with "crop": true'
        )
    if threshold is not None and not (crop and crop_aspect in ("closest", "random")):
        warn(
            "key 'max_upscale_threshold' is accepted but not used: it applies to crop_aspect \"closest\" or "
            '"random" with "crop": true'
        )
    if aspects is not None and not (crop and crop_aspect in ("closest", "random")):
        warn(
            "key 'crop_aspect_buckets' is accepted but not used: it applies to crop_aspect \"closest\" or "
            '"random" with "crop": true'
        )
    if weights is not None and crop and crop_aspect == "closest":
        warn('the weights of crop_aspect_buckets are accepted but not used: crop_aspect "closest" ignores them')
    return BucketConfig(
        resolution=resolution,
        resolution_type=rtype,
        minimum_image_size=minimum,
        maximum_image_size=maximum,
        target_downsample_size=downsample,
        max_upscale_threshold=None if threshold is None else float(threshold),
        minimum_aspect_ratio=None if low is None else float(low),
        maximum_aspect_ratio=None if high is None else float(high),
        crop=crop,
        crop_aspect=crop_aspect,
        crop_aspect_buckets=aspects,
        crop_aspect_weights=weights,
        crop_style="center" if style == "centre" else style,
        alignment=m.get("aspect_bucket_alignment", 64),
        rounding=rounding,
        train_batch_size=m.get("train_batch_size"),
        drop_small_buckets=m.get("drop_small_buckets", False),
    )
