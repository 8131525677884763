"""Conditioning generators of a dataloader entry's `conditioning` list: names, aliases, parameters and defaults.

SimpleTuner's meanings (`documentation/DATALOADER.md`, section `conditioning`): each generator reads its parameters
from the conditioning object itself or from its `params` block (SimpleTuner reads `params` for `sdr` only; here every
generator does, and the same key in both places with different values is a problem). Defaults are SimpleTuner's.
Pure Python: imported when a config loads, long before any image library.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hf_assets.config import fields as F

CONDITIONING_TYPES: tuple[str, ...] = ("controlnet", "mask", "reference_strict", "reference_loose")
# Conditioning samples of these types take their source sample's bucket, resize and crop exactly.
STRICT_TYPES: frozenset[str] = frozenset({"controlnet", "mask", "reference_strict"})
DEFAULT_GENERATED_TYPE = "reference_strict"  # SimpleTuner's default for a generated dataset

# The name a user writes -> the generator it runs (SimpleTuner's registry of names).
ALIASES: dict[str, str] = {
    "canny": "canny",
    "edges": "canny",
    "superresolution": "superresolution",
    "super_resolution": "superresolution",
    "lowres": "superresolution",
    "jpeg_artifacts": "jpeg_artifacts",
    "jpeg": "jpeg_artifacts",
    "compression": "jpeg_artifacts",
    "random_masks": "random_masks",
    "masks": "random_masks",
    "inpainting": "random_masks",
    "sdr": "sdr",
    "sdr_downsample": "sdr",
    "logc3_sdr": "sdr",
    "hdr_to_sdr": "sdr",
    "depth": "depth",
    "depth_map": "depth",
    "depth_midas": "depth",
}
# SimpleTuner generators not offered here, with why.
UNSUPPORTED: dict[str, str] = {
    "segmentation": "semantic segmentation (Mask2Former) is not offered yet; give the maps as a conditioning dataset",
    "semantic_segmentation": "semantic segmentation is not offered yet; give the maps as a conditioning dataset",
    "optical_flow": "optical flow needs video pairs; not offered",
    "flow": "optical flow needs video pairs; not offered",
    "i2v_first_frame": "image-to-video first frames are not offered yet",
    "wan_i2v_first_frame": "image-to-video first frames are not offered yet",
}
# Keys of a conditioning object besides its generator's parameters.
ENTRY_KEYS = ("type", "conditioning_type", "captions", "params", "instance_data_dir")

GENERATOR_VERSION = 1  # bump when a generator's output changes for the same parameters: re-keys its caches


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_in(lo: int, hi: int) -> F.Field:
    return F.Field(lambda v: F._is_int(v) and lo <= v <= hi, f"a whole number from {lo} to {hi}")


def _optional(field_: F.Field) -> F.Field:
    return F.Field(lambda v: v is None or field_.check(v), field_.expected + ", or null")


FRACTION = F.Field(lambda v: _is_num(v) and 0 <= v <= 1, "a number from 0 to 1")
NUMBER = F.Field(_is_num, "a number")
QUALITY = _int_in(1, 100)
MASK_TYPES = ("rectangle", "circle", "brush", "irregular")

# generator -> parameter -> (check, SimpleTuner's default)
PARAMETERS: dict[str, dict[str, tuple[F.Field, Any]]] = {
    "canny": {
        "low_threshold": (F.NUM_NONNEG, 50),
        "high_threshold": (F.NUM_NONNEG, 100),
    },
    "superresolution": {
        "blur_radius": (F.NUM_NONNEG, 2.0),
        "blur_type": (F.one_of("gaussian", "box", "both"), "gaussian"),
        "add_noise": (F.BOOL, True),
        "noise_level": (F.NUM_NONNEG, 0.02),
        "jpeg_quality": (_optional(QUALITY), None),
        "downscale_factor": (_optional(F.NUM_POS), None),
    },
    "jpeg_artifacts": {
        "quality_mode": (F.one_of("fixed", "range", "random"), "fixed"),
        "quality": (QUALITY, 25),
        "quality_range": (
            F.Field(
                lambda v: isinstance(v, list) and len(v) == 2 and all(QUALITY.check(x) for x in v) and v[0] <= v[1],
                "[lowest, highest], whole numbers from 1 to 100",
            ),
            [10, 50],
        ),
        "quality_list": (
            F.Field(lambda v: isinstance(v, list) and bool(v) and all(QUALITY.check(x) for x in v), "a list of 1-100"),
            [10, 20, 30, 40],
        ),
        "compression_rounds": (_int_in(1, 20), 1),
        "round_quality_decay": (F.Field(lambda v: _is_num(v) and 0 < v <= 1, "a number > 0 and <= 1"), 0.9),
        "subsampling": (_optional(F.one_of("4:4:4", "4:2:2", "4:2:0")), None),
        "optimize": (F.BOOL, False),
        "progressive": (F.BOOL, False),
        "pre_blur": (F.BOOL, False),
        "pre_blur_radius": (F.NUM_NONNEG, 0.5),
        "add_noise": (F.BOOL, False),
        "noise_level": (F.NUM_NONNEG, 0.01),
        "enhance_blocks": (F.BOOL, False),
        "block_noise_level": (F.NUM_NONNEG, 0.02),
    },
    "random_masks": {
        "mask_types": (
            F.Field(
                lambda v: isinstance(v, list) and bool(v) and all(x in MASK_TYPES for x in v),
                "a non-empty list of " + ", ".join(f'"{t}"' for t in MASK_TYPES),
            ),
            list(MASK_TYPES),
        ),
        "mask_type_weights": (
            _optional(
                F.Field(
                    lambda v: isinstance(v, list) and all(_is_num(x) and x >= 0 for x in v) and sum(v) > 0,
                    "a list of weights >= 0, one per mask type",
                )
            ),
            None,
        ),
        "min_coverage": (FRACTION, 0.1),
        "max_coverage": (FRACTION, 0.5),
        "min_masks": (F.INT_POS, 1),
        "max_masks": (F.INT_POS, 5),
        "rect_min_size": (FRACTION, 0.1),
        "rect_max_size": (FRACTION, 0.4),
        "circle_min_radius": (FRACTION, 0.05),
        "circle_max_radius": (FRACTION, 0.2),
        "brush_min_width": (F.INT_POS, 5),
        "brush_max_width": (F.INT_POS, 40),
        "brush_min_length": (FRACTION, 0.1),
        "brush_max_length": (FRACTION, 0.5),
        "irregular_min_points": (_int_in(3, 1000), 5),
        "irregular_max_points": (_int_in(3, 1000), 20),
        "edge_blur": (F.BOOL, True),
        "edge_blur_radius": (F.NUM_NONNEG, 2.0),
        "edge_feather": (F.BOOL, True),
        "output_mode": (F.one_of("mask", "masked_image"), "mask"),
        "mask_value": (_int_in(0, 255), 255),
        "invert_mask": (F.BOOL, False),
    },
    "sdr": {
        "transform": (F.one_of("rec709", "logc3", "srgb", "identity", "ldr"), "rec709"),
        "input_scale": (F.NUM_POS, 1.0),
        "exposure": (NUMBER, 0.0),
    },
    "depth": {
        "model_type": (F.one_of("DPT"), "DPT"),
    },
}
# Parameters that change how a drawn sample is shown, not what is drawn: left out of the seed, so a mask dataset and a
# masked-image dataset of one source with the same shape parameters hold the same masks.
OUTPUT_ONLY: dict[str, tuple[str, ...]] = {"random_masks": ("output_mode", "mask_value", "invert_mask")}
# (low, high) pairs that must be ordered, per generator
ORDERED: dict[str, tuple[tuple[str, str], ...]] = {
    "canny": (("low_threshold", "high_threshold"),),
    "random_masks": (
        ("min_coverage", "max_coverage"),
        ("min_masks", "max_masks"),
        ("rect_min_size", "rect_max_size"),
        ("circle_min_radius", "circle_max_radius"),
        ("brush_min_width", "brush_max_width"),
        ("brush_min_length", "brush_max_length"),
        ("irregular_min_points", "irregular_max_points"),
    ),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """One generator with every parameter given (defaults filled in): what decides its output."""

    kind: str  # canny, superresolution, jpeg_artifacts, random_masks, sdr or depth
    params: Mapping[str, Any] = field(default_factory=dict)

    def cache_settings(self) -> dict:
        """The settings hashed into a generated sample's cache key (a changed parameter re-keys only this dataset)."""
        return {"generator": self.kind, "params": dict(sorted(self.params.items())), "version": GENERATOR_VERSION}

    def seed_settings(self) -> dict:
        """The settings that seed a sample's random draws: all but those that only change how a draw is shown."""
        shown = OUTPUT_ONLY.get(self.kind, ())
        params = {key: value for key, value in sorted(self.params.items()) if key not in shown}
        return {"generator": self.kind, "params": params, "version": GENERATOR_VERSION}


@dataclass(frozen=True)
class ConditioningEntry:
    """One object of an entry's `conditioning` list: the dataset it generates from its source backend."""

    name: str  # the `type` as written: the generated id is {source_id}_conditioning_{name}
    generator: GeneratorConfig
    conditioning_type: str = DEFAULT_GENERATED_TYPE
    captions: tuple[str, ...] | None = None  # None: the source's captions; (): none (captions: false)
    instance_data_dir: str | None = None  # write the generated images there as files (only when given)


def generated_id(source_id: str, name: str) -> str:
    """SimpleTuner's id of a generated conditioning dataset."""
    return f"{source_id}_conditioning_{name}"


def parse_conditioning(value: Any, where: str) -> tuple[list[ConditioningEntry], list[str]]:
    """The entries of a `conditioning` value (one object or a list of them), and every problem found."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        return [], [f'{where}: key \'conditioning\' must be an object or a list of objects, e.g. [{{"type": "canny"}}]']
    entries: list[ConditioningEntry] = []
    problems: list[str] = []
    for i, item in enumerate(items):
        here = f"{where}: conditioning[{i}]" if isinstance(value, list) else f"{where}: conditioning"
        entry, found = parse_conditioning_entry(item, here)
        problems += found
        if entry is not None:
            entries.append(entry)
    names = [e.name for e in entries]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{where}: conditioning type '{name}' is listed twice; each generated id must be unique")
    return entries, problems


def parse_conditioning_entry(item: Any, where: str) -> tuple[ConditioningEntry | None, list[str]]:
    """One conditioning object as a typed entry, or None with the problems that prevent it."""
    if not isinstance(item, dict):
        return None, [f"{where}: must be a JSON object with a 'type', got {F.describe(item)}"]
    name = item.get("type")
    if name in UNSUPPORTED:
        return None, [f"{where}: type '{name}' is not supported: {UNSUPPORTED[name]}"]
    if not isinstance(name, str) or name not in ALIASES:
        hint = F.closest_key(str(name), ALIASES) if isinstance(name, str) else None
        got = "no 'type'" if name is None else f"type {F.describe(name)}"
        fix = f"did you mean '{hint}'?" if hint else "one of " + ", ".join(sorted(set(ALIASES.values())))
        return None, [f"{where}: {got}; give the generator to run, {fix}"]
    kind = ALIASES[name]
    problems: list[str] = []
    params, found = _generator_params(kind, name, item, where)
    problems += found
    ctype = item.get("conditioning_type", DEFAULT_GENERATED_TYPE)
    if ctype not in CONDITIONING_TYPES:
        problems.append(f"{where}: conditioning_type {F.describe(ctype)} must be " + _choices(CONDITIONING_TYPES))
    captions, found = parse_captions(item.get("captions"), "captions" in item, where)
    problems += found
    out_dir = item.get("instance_data_dir")
    if out_dir is not None and not isinstance(out_dir, str):
        problems.append(f"{where}: instance_data_dir must be a folder path (string), got {F.describe(out_dir)}")
    if problems:
        return None, problems
    return ConditioningEntry(name, GeneratorConfig(kind, params), ctype, captions, out_dir), []


def parse_captions(value: Any, given: bool, where: str) -> tuple[tuple[str, ...] | None, list[str]]:
    """`captions`: false (none), a string, a non-empty list of strings, or absent/null (the source's captions)."""
    if not given or value is None:
        return None, []
    if value is False:
        return (), []
    if isinstance(value, str) and value.strip():
        return (value.strip(),), []
    if isinstance(value, list) and value and all(isinstance(c, str) and c.strip() for c in value):
        return tuple(c.strip() for c in value), []
    return None, [
        f"{where}: captions {F.describe(value)} must be false (no captions), a caption string, a list of caption "
        "strings (one drawn per sample), or left out (the source's captions)"
    ]


def _generator_params(kind: str, name: str, item: dict, where: str) -> tuple[Mapping[str, Any], list[str]]:
    spec = PARAMETERS[kind]
    problems: list[str] = []
    block = item.get("params", {})
    if not isinstance(block, dict):
        problems.append(f"{where}: params must be a JSON object of {name} parameters, got {F.describe(block)}")
        block = {}
    given: dict[str, Any] = {}
    for source in (item, block):
        for key, value in source.items():
            if source is item and key in ENTRY_KEYS:
                continue
            if key not in spec:
                known = list(spec) + ([] if source is block else list(ENTRY_KEYS))
                hint = F.closest_key(key, known)
                fix = f"did you mean '{hint}'?" if hint else f"{name} takes " + (", ".join(spec) or "no parameters")
                problems.append(f"{where}: unknown {name} parameter '{key}'; {fix}")
            elif key in given and given[key] != value:
                problems.append(
                    f"{where}: parameter '{key}' is set both in the object ({F.describe(given[key])}) and in params "
                    f"({F.describe(value)}); keep one"
                )
            elif not spec[key][0].check(value):
                problems.append(f"{where}: {key} {F.describe(value)} must be {spec[key][0].expected}")
            else:
                given[key] = value
    params = {key: given.get(key, default) for key, (_, default) in spec.items()}
    if kind == "sdr" and "transform" not in given and name == "logc3_sdr":
        params["transform"] = "logc3"
    if kind == "sdr" and params["transform"] in ("identity", "ldr"):
        params["transform"] = "rec709"  # SimpleTuner's synonyms
    for low, high in ORDERED.get(kind, ()):
        if low in params and high in params and params[low] > params[high]:
            problems.append(f"{where}: {low} ({params[low]}) is above {high} ({params[high]}); swap them")
    weights = params.get("mask_type_weights")
    if weights is not None and len(weights) != len(params["mask_types"]):
        problems.append(
            f"{where}: mask_type_weights has {len(weights)} weight(s) for {len(params['mask_types'])} mask type(s); "
            "give one per entry of mask_types"
        )
    return MappingProxyType(params), problems


def _choices(values) -> str:
    return "one of " + ", ".join(f'"{v}"' for v in values)
