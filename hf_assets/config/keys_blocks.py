"""Keys of a dataset entry that may also sit in its `huggingface` block, the bucketing keys, and the keys of the
`video`, `filter_func`, `composite_image_config` and `conditioning` blocks."""

import re

from hf_assets.config import fields as F
from hf_assets.config.keyspec import COMPOSITE, CONDITIONING, DATASET, FILTER, HUGGINGFACE, PARQUET, VIDEO, Key

EITHER = (DATASET, HUGGINGFACE)
AUDIO = "audio is out of scope"
EXTENSION = F.Field(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9]{1,8}", v) is not None, 'e.g. "jpg"')


def _either(name: str, note: str, check: F.Field, read_first: str = "huggingface", status: str = "honoured") -> Key:
    return Key(name, EITHER, status, note, check, read_first=read_first)  # type: ignore[arg-type]


DATASET_KEYS = [
    _either(
        "dataset_name", "a Hub id, a local folder, file or glob of Parquet files, or an fsspec URL", F.STR, "entry"
    ),
    _either("split", 'the split, with `datasets`\' slice syntax ("train[:1000]")', F.STR, "entry"),
    _either("revision", "the dataset revision (a branch, tag or commit)", F.STR, "entry"),
    _either("image_column", "the column of images (default `image`)", F.STR, "entry"),
    _either(
        "video_column",
        "the column of clips of a `video` backend (default `video`; `image_column` when only that is set)",
        F.STR,
        "entry",
    ),
    _either(
        "file_extension",
        "the extension of the virtual file names `{row}.<ext>` (default `jpg`, `mp4` for video)",
        EXTENSION,
    ),
    _either("caption_column", "caption column(s); a list gives variants; `a.b` walks nested fields", F.STR_OR_LIST),
    _either("fallback_caption_column", "captions of rows the caption columns leave empty", F.STR),
    _either("description_column", "a last caption source (a struct's text fields joined)", F.STR),
    _either("width_column", "image widths, read instead of image headers (with height_column)", F.STR),
    _either("height_column", "image heights (with width_column)", F.STR),
    _either("num_frames_column", "clip frame counts, read instead of container headers", F.STR),
    _either("fps_column", "clip frame rates", F.STR),
    _either("filter_func", "row filters (keys below), applied on columns", F.OBJECT),
    _either("composite_image_config", "keep one tile of composite images (keys below)", F.OBJECT),
    Key(
        "streaming",
        EITHER,
        "honoured",
        "`false` (the default): splits are read by columns, lazily",
        F.BOOL,
        values={True: ("refused", 'streaming is not supported; use a split slice such as "train[:10000]"')},
        read_first="huggingface",
    ),
    _either("num_proc", "processes `datasets` uses when it converts a non-Parquet layout", F.INT_POS),
    Key("auto_load", (HUGGINGFACE,), "warned", "datasets are opened when a step needs them", F.ANY),
    Key(
        "cache_dir",
        (HUGGINGFACE,),
        "warned",
        "SimpleTuner's download cache: Parquet is read in place (datasets' own cache is HF_DATASETS_CACHE)",
        F.STR,
    ),
    Key("bbox_column", (HUGGINGFACE,), "warned", "spatial grounding is not prepared", F.STR),
    Key("audio_column", EITHER, "warned", AUDIO, F.STR),
    Key("lyrics_column", (HUGGINGFACE,), "warned", AUDIO, F.STR),
    Key("audio_caption_fields", (HUGGINGFACE,), "warned", AUDIO, F.ANY),
]

BUCKET_KEYS = [
    Key(
        "resolution",
        (DATASET,),
        "honoured",
        "the training size: short side (`pixel`), square edge of the area (`pixel_area`) or megapixels (`area`)",
        F.NUM_POS,
    ),
    Key(
        "resolution_type",
        (DATASET,),
        "honoured",
        "`pixel`, `area` or `pixel_area`",
        F.one_of("pixel", "area", "pixel_area"),
    ),
    Key("minimum_image_size", (DATASET,), "honoured", "smaller images are dropped (0: no minimum)", F.NUM_NONNEG),
    Key("maximum_image_size", (DATASET,), "honoured", "with target_downsample_size and crop: resize first", F.NUM_POS),
    Key("target_downsample_size", (DATASET,), "honoured", "the size of that resize before the crop", F.NUM_POS),
    Key("minimum_aspect_ratio", (DATASET,), "honoured", "buckets narrower than this are dropped", F.NUM_POS),
    Key("maximum_aspect_ratio", (DATASET,), "honoured", "buckets wider than this are dropped", F.NUM_POS),
    Key("crop", (DATASET,), "honoured", "crop to the bucket (a JSON boolean)", F.BOOL),
    Key(
        "crop_aspect",
        (DATASET,),
        "honoured",
        "`square`, `preserve`, `closest` or `random`",
        F.one_of("square", "preserve", "closest", "random"),
    ),
    Key(
        "crop_aspect_buckets",
        (DATASET,),
        "honoured",
        "the aspects `closest` and `random` choose from (weighted objects too)",
        F.Field(lambda v: isinstance(v, list), F.ASPECT_BUCKETS),
    ),
    Key(
        "crop_style",
        (DATASET,),
        "honoured",
        "`center`, `corner` or `random`",
        F.one_of("center", "centre", "random", "corner", "face"),
        values={"face": ("refused", 'it needs face detection on decoded images; use "center", "corner" or "random"')},
    ),
    Key("max_upscale_threshold", (DATASET,), "honoured", "skip buckets needing more upscaling than this", F.NUM_NONNEG),
    Key(
        "aspect_bucket_alignment",
        (DATASET,),
        "honoured",
        "sizes are multiples of it (default 64; SimpleTuner's trainer argument, per backend here)",
        F.Field(lambda v: F._is_int(v) and v >= 8 and v % 8 == 0, "a multiple of 8, e.g. 64"),
    ),
    Key(
        "aspect_bucket_rounding",
        (DATASET,),
        "honoured",
        "decimals of the image aspect before sizing (default 2)",
        F.Field(lambda v: F._is_int(v) and 0 <= v <= 4, "a whole number of decimals from 0 to 4"),
    ),
]

VIDEO_KEYS = [
    Key("num_frames", (VIDEO,), "honoured", "frames trained on: each clip's first ones", F.INT_POS),
    Key("min_frames", (VIDEO,), "honoured", "shorter clips are dropped (default num_frames)", F.INT_POS),
    Key("max_frames", (VIDEO,), "honoured", "longer clips are dropped", F.INT_POS),
    Key(
        "bucket_strategy",
        (VIDEO,),
        "honoured",
        "`aspect_ratio` or `resolution_frames` (buckets like `1280x720@100`)",
        F.one_of("aspect_ratio", "resolution_frames"),
    ),
    Key(
        "frame_interval", (VIDEO,), "honoured", "resolution_frames: frame counts rounded down to a multiple", F.INT_POS
    ),
    Key("is_i2v", (VIDEO,), "warned", "image-to-video first-frame conditioning is not prepared", F.BOOL),
    Key(
        "is_i2v",
        (DATASET,),
        "warned",
        "SimpleTuner reads it inside the video block only; first-frame conditioning is not prepared",
        F.BOOL,
    ),
    Key("frame_rate", (VIDEO,), "warned", "clip rates come from fps_column or the container", F.NUM_POS),
]

FILTER_KEYS = [
    Key(
        "quality_thresholds",
        (FILTER,),
        "honoured",
        "metric -> minimum, read from quality_column",
        F.Field(
            lambda v: isinstance(v, dict) and all(F._is_number(x) for x in v.values()),
            'an object of metric -> number, e.g. {"aesthetic_score": 5.0}',
        ),
    ),
    Key("quality_column", (FILTER,), "honoured", "the struct column of quality metrics", F.STR),
    Key("collection", (FILTER,), "honoured", "keep rows in these collections", F.STR_OR_LIST),
    Key("collection_column", (FILTER,), "honoured", "the column naming a row's collection", F.STR),
    Key("min_width", (FILTER,), "honoured", "narrower images are dropped", F.INT_NONNEG),
    Key("min_height", (FILTER,), "honoured", "shorter images are dropped", F.INT_NONNEG),
]

COMPOSITE_KEYS = [
    Key("enabled", (COMPOSITE,), "honoured", "images are strips of tiles", F.BOOL),
    Key("image_count", (COMPOSITE,), "honoured", "tiles per image", F.INT_POS),
    Key("select_index", (COMPOSITE,), "honoured", "the tile kept", F.INT_NONNEG),
    Key(
        "layout",
        (COMPOSITE,),
        "honoured",
        "hf_assets' own: `horizontal` (default), `vertical` or `grid`",
        F.one_of("horizontal", "vertical", "grid"),
    ),
]

PARQUET_KEYS = [
    Key(
        "path",
        (PARQUET,),
        "honoured",
        "the Parquet or JSON-lines (`.jsonl`) table: a path (local) or a key (aws)",
        F.STR,
    ),
    Key("filename_column", (PARQUET,), "honoured", "each image's path under the folder (default `id`)", F.STR),
    Key(
        "caption_column",
        (PARQUET,),
        "honoured",
        "its caption: a string or a list of variants (default `description`)",
        F.STR,
    ),
    Key("fallback_caption_column", (PARQUET,), "honoured", "the caption where caption_column is empty", F.STR),
    Key(
        "identifier_includes_extension",
        (PARQUET,),
        "honoured",
        "the names include the file extension (default: they do not)",
        F.BOOL,
    ),
    Key("width_column", (PARQUET,), "warned", "sizes come from image headers (no image is decoded)", F.STR),
    Key("height_column", (PARQUET,), "warned", "sizes come from image headers (no image is decoded)", F.STR),
    Key("bbox_column", (PARQUET,), "warned", "spatial grounding is not prepared", F.STR),
]

# The other keys of a conditioning object are its generator's parameters (SimpleTuner reads them there or in params).
CONDITIONING_KEYS = [
    Key(
        "type",
        (CONDITIONING,),
        "honoured",
        "the generator (`canny`, `superresolution`, `jpeg_artifacts`, `random_masks`, `sdr`, `depth` and their "
        "aliases): its dataset is made from each source crop, paired, previewed and encoded sample by sample",
        F.STR,
    ),
    Key(
        "conditioning_type",
        (CONDITIONING,),
        "honoured",
        "the generated dataset's type (default `reference_strict`, as SimpleTuner)",
        F.one_of("controlnet", "mask", "reference_strict", "reference_loose"),
    ),
    Key(
        "captions",
        (CONDITIONING,),
        "honoured",
        "`false` (none), a prompt, a list of prompts (one variant each), or absent (the source's)",
        F.ANY,
    ),
    Key(
        "params",
        (CONDITIONING,),
        "honoured",
        "the generator's parameters, SimpleTuner's names and defaults (also accepted beside `type`)",
        F.OBJECT,
    ),
    Key(
        "instance_data_dir",
        (CONDITIONING,),
        "honoured",
        "a folder (relative to the config file) where each generated image is also written, as a PNG under its "
        "source sample's relative path; unset: none is written, the images live only in the latent cache",
        F.STR,
    ),
]

CONDITIONING_LINKS = [
    Key(
        "conditioning",
        (DATASET,),
        "honoured",
        "generated conditioning datasets, partitions `{id}_conditioning_{type}` paired with this one and encoded "
        "with its crop",
        F.OBJECT_OR_OBJECTS,
    ),
    Key(
        "conditioning_data",
        (DATASET,),
        "honoured",
        "the conditioning dataset(s) of this one, paired by file name (the same path under each root)",
        F.STR_OR_STRS,
    ),
    Key(
        "conditioning_type",
        (DATASET,),
        "honoured",
        "`controlnet`, `mask`, `reference_strict` (the source sample's bucket, resize and crop) or "
        "`reference_loose` (its own); default `controlnet`",
        F.one_of("controlnet", "mask", "reference_strict", "reference_loose"),
    ),
    Key(
        "source_dataset_id",
        (DATASET,),
        "honoured",
        "the source dataset of a conditioning one (else the backend whose conditioning_data lists it)",
        F.STR,
    ),
]

BLOCK_HOLDERS = [
    Key("huggingface", (DATASET,), "honoured", "the dataset keys marked `huggingface` below may sit in it", F.OBJECT),
    Key("video", (DATASET,), "honoured", "clip settings of a `video` backend (its keys below)", F.OBJECT),
    Key(
        "audio",
        (DATASET,),
        "warned",
        "audio is out of scope: a video backend loads without its sound",
        F.OBJECT,
        subkeys=(
            "auto_split",
            "source_from_video",
            "allow_zero_audio",
            "audio_only",
            "target_resolution",
            "sample_rate",
            "channels",
            "bucket_strategy",
            "duration_interval",
            "max_duration_seconds",
            "truncation_mode",
            "lyrics_filename_format",
        ),
    ),
    Key("s2v_datasets", (DATASET,), "warned", "audio datasets are out of scope", F.ANY),
    Key("config", (DATASET,), "warned", "audio caption settings: audio is out of scope", F.OBJECT),
    Key(
        "grounding",
        (DATASET,),
        "warned",
        "spatial grounding (bounding boxes and masks) is not prepared",
        F.OBJECT,
        subkeys=("enabled", "auto_detect"),
    ),
]

BLOCK_KEYS: list[Key] = [
    *CONDITIONING_LINKS,
    *BLOCK_HOLDERS,
    *DATASET_KEYS,
    *BUCKET_KEYS,
    *VIDEO_KEYS,
    *FILTER_KEYS,
    *COMPOSITE_KEYS,
    *PARQUET_KEYS,
    *CONDITIONING_KEYS,
]
