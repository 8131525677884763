"""The keys of a dataloader entry's top level that say what it is, how the trainer draws it, and how it is captioned:
dataset entries (image, video, conditioning, eval) and cache entries (text_embeds, image_embeds,
conditioning_image_embeds). Where data and caches live: `keys_storage.py`; the blocks: `keys_blocks.py`."""

from hf_assets.config import fields as F
from hf_assets.config.keyspec import CACHE, DATASET, Key

BOTH = (DATASET, CACHE)
TRAINER = "a setting of the training loop, not of data preparation: kept in BackendConfig.trainer_settings"
ON_DISK = "hf_assets keeps every cache on local disk"

IDENTITY = [
    Key("id", (DATASET,), "honoured", "the backend's name: its partition key and cache folder name", F.STR),
    Key("id", (CACHE,), "honoured", "the name other entries use to point at this cache entry", F.STR),
    Key(
        "type",
        (DATASET,),
        "honoured",
        "`huggingface`: a Hub id, local folder or fsspec URL of a dataset; `local`: a folder of images; `aws`: a "
        "folder of images in an S3 bucket, read through s3fs (`pip install 'hf_assets[s3]'`)",
        F.one_of("huggingface", "local", "aws", "csv", "webshart", "memory"),
        values={
            "csv": ("refused", "CSV URL lists are not read: download the images into a folder (type local)"),
            "webshart": ("refused", "Webshart tar shards are not read: use type huggingface over a Parquet copy"),
            "memory": ("refused", "memory backends hold caches only (text_embeds or image_embeds entries)"),
        },
    ),
    Key(
        "type",
        (CACHE,),
        "honoured",
        "`local`: caches on this machine",
        F.one_of("local", "aws", "memory"),
        values={"aws": ("warned", ON_DISK), "memory": ("warned", ON_DISK + " (not a RAM disk)")},
    ),
    Key(
        "dataset_type",
        (DATASET,),
        "honoured",
        "`image` (default) or `video`; `eval` is prepared like images and left out of the trainer's draws",
        F.one_of("image", "video", "conditioning", "eval", "audio"),
        values={
            "audio": ("refused", "audio is out of scope: hf_assets prepares images and video"),
            "conditioning": (
                "honoured",
                "paired with its source sample by sample and encoded with the source's crop (strict types)",
            ),
        },
    ),
    Key(
        "dataset_type",
        (CACHE,),
        "honoured",
        "`text_embeds` (caption embeddings), `image_embeds` (VAE latents) or `conditioning_image_embeds`",
        F.one_of("text_embeds", "image_embeds", "conditioning_image_embeds"),
        values={"conditioning_image_embeds": ("warned", "conditioning image embeddings are not computed")},
    ),
    Key("disabled", BOTH, "honoured", "true: the entry is skipped (no partition)", F.BOOL),
    Key("disable", BOTH, "honoured", "SimpleTuner's other spelling of `disabled`", F.BOOL),
    Key("default", (CACHE,), "honoured", "the text_embeds entry of backends that name none", F.BOOL),
]

TRAINER_DOOR = [
    Key(
        "probability",
        (DATASET,),
        "honoured",
        "trainer's door: MultiBackendSampler draws a backend in proportion to it (0: never)",
        F.NUM_NONNEG,
    ),
    Key(
        "repeats",
        (DATASET,),
        "honoured",
        "trainer's door: an epoch goes through the backend 1 + repeats times",
        F.INT_NONNEG,
    ),
    Key(
        "ignore_epochs",
        (DATASET,),
        "honoured",
        "trainer's door: the backend does not hold up the end of an epoch (SimpleTuner deprecated the key and "
        "ignores it; hf_assets keeps its documented meaning)",
        F.BOOL,
    ),
    Key(
        "start_epoch",
        (DATASET,),
        "honoured",
        "trainer's door: drawn from this epoch on (epochs count from 1)",
        F.INT_NONNEG,
    ),
    Key("start_step", (DATASET,), "honoured", "trainer's door: drawn from this optimizer step on", F.INT_NONNEG),
    Key("end_epoch", (DATASET,), "honoured", "trainer's door: not drawn after this epoch", F.INT_NONNEG),
    Key("end_step", (DATASET,), "honoured", "trainer's door: not drawn after this optimizer step", F.INT_NONNEG),
    Key("timestep_sampling_offset", (DATASET,), "warned", TRAINER, F.NUMBER),
    Key("slider_strength", (DATASET,), "warned", TRAINER, F.NUMBER),
    Key("is_regularisation_data", (DATASET,), "warned", TRAINER, F.BOOL),
    Key("is_regularization_data", (DATASET,), "warned", TRAINER, F.BOOL),
    Key("disable_validation", (DATASET,), "warned", TRAINER, F.BOOL),
    Key(
        "train_batch_size",
        (DATASET,),
        "honoured",
        "buckets with fewer samples are reported in aspect_buckets (dropped with `drop_small_buckets`)",
        F.INT_POS,
    ),
    Key(
        "drop_small_buckets",
        (DATASET,),
        "honoured",
        "hf_assets' own: drop buckets smaller than train_batch_size",
        F.BOOL,
    ),
]

CAPTIONS = [
    Key(
        "caption_strategy",
        (DATASET,),
        "honoured",
        "`huggingface` (dataset columns), `textfile` (`name.txt` beside each image; each non-empty line a "
        "variant), `filename` (the file name, `_` as spaces), `parquet` (a table of captions, see the `parquet` "
        "block; local and aws), `instanceprompt` (on every backend type)",
        F.one_of("huggingface", "textfile", "filename", "instanceprompt", "parquet", "csv", "webshart"),
        values={
            "csv": ("refused", "type csv is not supported"),
            "webshart": ("refused", "type webshart is not supported"),
        },
    ),
    Key(
        "instance_prompt",
        (DATASET,),
        "honoured",
        "the caption of every sample with caption_strategy `instanceprompt` (a list: one variant each); encoded "
        "once however many samples share it",
        F.STR_OR_STRS,
    ),
    Key(
        "prepend_instance_prompt",
        (DATASET,),
        "honoured",
        "each caption variant becomes `instance_prompt caption`",
        F.BOOL,
    ),
    Key("only_instance_prompt", (DATASET,), "honoured", "every caption is replaced by `instance_prompt`", F.BOOL),
    Key(
        "disable_multiline_split",
        (DATASET,),
        "honoured",
        "textfile: a caption file is one caption, newlines kept (default: each non-empty line is a variant)",
        F.BOOL,
    ),
    Key(
        "caption_encoding",
        (DATASET,),
        "honoured",
        'hf_assets\' own: the encoding of caption files that are not UTF-8, e.g. "cp1252"',
        F.Field(F.is_text_encoding, 'a Python text encoding for caption files that are not UTF-8, e.g. "cp1252"'),
    ),
    Key(
        "caption_shuffle",
        (DATASET,),
        "warned",
        "tag-shuffled caption variants are not generated: captions are encoded as written",
        F.OBJECT,
        subkeys=("enable", "count", "seed", "split_on", "position_start", "include_original"),
    ),
    Key(
        "metadata_backend",
        (DATASET,),
        "honoured",
        "`discovery` or `huggingface`: sizes come from width/height columns or image headers, never a decode",
        F.one_of("discovery", "huggingface", "parquet", "json", "webshart"),
        values={
            "parquet": ("warned", "sizes come from image headers; the table gives captions only"),
            "json": ("warned", "sizes come from image headers; the table gives captions only"),
            "webshart": ("refused", "type webshart is not supported"),
        },
    ),
    Key(
        "parquet", (DATASET,), "honoured", "the caption table of caption_strategy `parquet` (its keys below)", F.OBJECT
    ),
    Key("metadata_update_interval", (DATASET,), "warned", "metadata is rebuilt when the source changes", F.NUMBER),
    Key("caption_filter_list", (CACHE,), "warned", "captions are encoded as written", F.ANY),
]

# hf_assets's own keys (SimpleTuner has none of them in a dataloader entry): the model that encodes a backend (its
# trainer arguments of the same names, given per backend), and the bound of a metadata check.
EXTENSIONS = [
    Key(
        "pretrained_model_name_or_path",
        (DATASET,),
        "honoured",
        "hf_assets extension: the diffusers pipeline (folder, relative to the config file, or hub id) that encodes "
        "this backend, e.g. a Wan pipeline for clips beside an SDXL one for images; a conditioning dataset without "
        "one uses its source's; unset: HF_ASSETS_MODEL (HF_ASSETS_VIDEO_MODEL first for video)",
        F.STR,
    ),
    Key(
        "pretrained_vae_model_name_or_path",
        (DATASET,),
        "honoured",
        "hf_assets extension: a VAE (folder or hub id) replacing the pipeline's for this backend (e.g. "
        "madebyollin/sdxl-vae-fp16-fix); unset: HF_ASSETS_VAE, else the pipeline's own",
        F.STR,
    ),
    Key(
        "max_drop_rate",
        (DATASET,),
        "honoured",
        "hf_assets extension: filtered_index's `drop_rate` check fails when filters, size limits and corrupt rows "
        "drop more than this share of the split (rows left out by max_num_samples not counted); default 0.5",
        F.FRACTION,
    ),
]

ENTRY_KEYS: list[Key] = [*IDENTITY, *TRAINER_DOOR, *CAPTIONS, *EXTENSIONS]
