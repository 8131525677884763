"""The accepted keys of a dataloader entry, their types, and friendly type checks."""

import codecs
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BACKEND_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Field:
    """One accepted key: how to check its value and what to say when it is wrong."""

    check: Callable[[Any], bool]
    expected: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_str_or_str_list(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v))


def is_text_encoding(v: Any) -> bool:
    """True for a name Python knows as a text encoding (e.g. "latin-1", "cp1252", "shift_jis")."""
    try:
        return isinstance(v, str) and codecs.lookup(v)._is_text_encoding  # type: ignore[attr-defined]
    except LookupError:
        return False


def one_of(*choices: str) -> Field:
    return Field(lambda v: v in choices, "one of " + ", ".join(f'"{c}"' for c in choices))


BOOL = Field(lambda v: isinstance(v, bool), "true or false (a JSON boolean, without quotes)")
STR = Field(_is_str, "a string")
INT_POS = Field(lambda v: _is_int(v) and v >= 1, "a whole number >= 1")
INT_NONNEG = Field(lambda v: _is_int(v) and v >= 0, "a whole number >= 0")
NUM_POS = Field(lambda v: _is_number(v) and v > 0, "a number > 0")
NUM_NONNEG = Field(lambda v: _is_number(v) and v >= 0, "a number >= 0")
STR_OR_LIST = Field(_is_str_or_str_list, "a column name or a non-empty list of column names")
OBJECT = Field(lambda v: isinstance(v, dict), "a JSON object")
ASPECT_BUCKETS = 'a list of aspect ratios such as [0.75, 1.0, 1.33], or [{"aspect": 1.0, "weight": 0.6}, ...]'

# Keys that may appear at the top level of an entry or inside its "huggingface" block.
DATASET_FIELDS: dict[str, Field] = {
    "dataset_name": STR,
    "split": STR,
    "revision": STR,
    "image_column": STR,
    "caption_column": STR_OR_LIST,
    "fallback_caption_column": STR,
    "description_column": STR,
    "width_column": STR,
    "height_column": STR,
    "num_frames_column": STR,
    "fps_column": STR,
    "filter_func": OBJECT,
    "composite_image_config": OBJECT,
    "streaming": BOOL,
    "num_proc": INT_POS,
}

# Keys of the entry itself (never inside the "huggingface" block).
ENTRY_FIELDS: dict[str, Field] = {
    "id": STR,
    "type": one_of("huggingface", "local"),
    "dataset_type": one_of("image", "video", "text_embeds"),
    "disabled": BOOL,
    "huggingface": OBJECT,
    "video": OBJECT,
    "caption_strategy": one_of("huggingface", "textfile", "filename", "instanceprompt"),
    "metadata_backend": one_of("huggingface", "discovery", "parquet", "json"),
    "instance_data_dir": STR,
    "instance_prompt": STR,
    "caption_encoding": Field(
        is_text_encoding, 'a Python text encoding for caption files that are not UTF-8, e.g. "cp1252"'
    ),
    "cache_dir": STR,
    "text_embeds": STR,
    "probability": NUM_NONNEG,
    "repeats": INT_NONNEG,
    "resolution": NUM_POS,
    "resolution_type": one_of("pixel", "area", "pixel_area"),
    "minimum_image_size": NUM_NONNEG,
    "crop": BOOL,
    "crop_aspect": one_of("square", "preserve", "closest", "random"),
    "crop_aspect_buckets": Field(lambda v: isinstance(v, list), ASPECT_BUCKETS),  # items: config.bucket_settings
    "crop_style": one_of("center", "centre", "random", "corner", "face"),  # face: refused with its own message
    "aspect_bucket_alignment": Field(lambda v: _is_int(v) and v >= 8 and v % 8 == 0, "a multiple of 8, e.g. 64"),
    "aspect_bucket_rounding": Field(lambda v: _is_int(v) and 0 <= v <= 4, "a whole number of decimals from 0 to 4"),
    "maximum_image_size": NUM_POS,
    "target_downsample_size": NUM_POS,
    "max_upscale_threshold": NUM_NONNEG,
    "minimum_aspect_ratio": NUM_POS,
    "maximum_aspect_ratio": NUM_POS,
    "train_batch_size": INT_POS,
    "drop_small_buckets": BOOL,
    "default": BOOL,
    "write_batch_size": INT_POS,
}

# SimpleTuner keys that hf_assets accepts but does not act on; each gets a warning.
IGNORED_FIELDS: dict[str, str] = {
    "cache_dir_vae": "VAE latents live under <cache_dir>/vae/<id>",
    "vae_cache_clear_each_epoch": "caches are content-keyed and never need clearing",
    "skip_file_discovery": "discovery is cheap here (no image is decoded)",
    "preserve_data_backend_cache": "metadata is rebuilt only when its inputs change",
    "is_regularisation_data": "regularisation data is the trainer's concern",
    "is_regularization_data": "regularisation data is the trainer's concern",
    "hash_filenames": "file names are the row index (huggingface) or the relative path (local)",
    "prepend_instance_prompt": "caption composition is the trainer's concern",
    "only_instance_prompt": 'use caption_strategy "instanceprompt" instead',
}

FILTER_FIELDS: dict[str, Field] = {
    "quality_thresholds": Field(
        lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
        'an object of metric -> number, e.g. {"aesthetic_score": 5.0}',
    ),
    "quality_column": STR,
    "collection": STR_OR_LIST,
    "collection_column": STR,
    "min_width": INT_NONNEG,
    "min_height": INT_NONNEG,
}

COMPOSITE_FIELDS: dict[str, Field] = {
    "enabled": BOOL,
    "image_count": INT_POS,
    "select_index": INT_NONNEG,
    "layout": one_of("horizontal", "vertical", "grid"),
}

VIDEO_FIELDS: dict[str, Field] = {
    "num_frames": INT_POS,
    "min_frames": INT_POS,
    "max_frames": INT_POS,
    "is_i2v": BOOL,
    "bucket_strategy": one_of("aspect_ratio", "resolution_frames"),
    "frame_interval": INT_POS,
}

TEXT_EMBEDS_FIELDS = {"id", "type", "dataset_type", "cache_dir", "default", "disabled", "write_batch_size"}


def closest_key(key: str, known: list[str] | set[str] | dict) -> str | None:
    """The known key nearest in spelling to `key`, if any is close."""
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def describe(value: Any) -> str:
    """A short, JSON-flavoured rendering of a wrong value for an error message."""
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
