"""The keys of a dataloader entry's top level that say where its data and its caches live."""

from hf_assets.config import fields as F
from hf_assets.config.keys_entry import ON_DISK
from hf_assets.config.keyspec import CACHE, DATASET, Key

BOTH = (DATASET, CACHE)
AWS_KEYS = (
    "aws_bucket_name",
    "aws_data_prefix",
    "aws_endpoint_url",
    "aws_region_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_max_pool_connections",
)
NOT_DELETED = "hf_assets never deletes source files; dropped rows are listed with their reason in dropped.parquet"

LOCATION = [
    Key(
        "instance_data_dir",
        (DATASET,),
        "honoured",
        "the folder of a local backend (placeholders expanded, relative to the config file)",
        F.STR,
    ),
    Key("aws_bucket_name", (DATASET,), "honoured", "type aws: the bucket", F.STR),
    Key("aws_data_prefix", (DATASET,), "honoured", "type aws: the folder in the bucket (default: its root)", F.STR),
    Key("aws_endpoint_url", (DATASET,), "honoured", "type aws: an S3-compatible endpoint (default: AWS)", F.STR),
    Key("aws_region_name", (DATASET,), "honoured", "type aws: the bucket's region", F.STR),
    Key(
        "aws_access_key_id",
        (DATASET,),
        "honoured",
        "type aws: credentials, never logged (`{env:NAME}` reads them from the environment; absent: s3fs's "
        "usual credential chain)",
        F.STR,
        secret=True,
    ),
    Key("aws_secret_access_key", (DATASET,), "honoured", "type aws: credentials, never logged", F.STR, secret=True),
    Key("aws_session_token", (DATASET,), "honoured", "type aws: credentials, never logged", F.STR, secret=True),
    Key("aws_max_pool_connections", (DATASET,), "honoured", "type aws: connections s3fs opens at once", F.INT_POS),
    *(Key(name, (CACHE,), "warned", ON_DISK, F.ANY) for name in AWS_KEYS),
    *(
        Key(name, (DATASET,), "warned", "a key of type csv, which is refused", F.ANY)
        for name in (
            "csv_file",
            "csv_caption_column",
            "csv_url_column",
            "csv_cache_dir",
            "csv_hash_filenames",
            "csv_shorten_filenames",
        )
    ),
    *(
        Key(name, (DATASET,), "warned", "a key of type webshart, which is refused", F.ANY)
        for name in ("source", "metadata", "webshart", "webshart_optimize_captions", "webshart_optimise_captions")
    ),
    *(
        Key(name, (CACHE,), "warned", ON_DISK + " (not a RAM disk)", F.ANY)
        for name in ("memory_filesystem_path", "memory_filesystem_size", "memory_filesystem_sudo")
    ),
]

CACHES = [
    Key(
        "cache_dir",
        (DATASET,),
        "honoured",
        "the folder of the backend's caches: `huggingface_metadata/<id>`, `vae/<id>` and, without a text_embeds "
        "entry, `text_embeds/<id>` (default `cache/<id>`; placeholders expanded)",
        F.STR,
    ),
    Key(
        "cache_dir",
        (CACHE,),
        "honoured",
        "text_embeds: caption embeddings go to `<cache_dir>/<backend id>`; image_embeds: latents likewise",
        F.STR,
    ),
    Key(
        "cache_dir_vae",
        (DATASET,),
        "honoured",
        "the folder of the backend's VAE latents (placeholders expanded; default `<cache_dir>/vae/<id>`)",
        F.STR,
    ),
    Key(
        "text_embeds",
        (DATASET,),
        "honoured",
        "the id of the text_embeds entry holding this backend's caption embeddings (default: the default one)",
        F.STR,
    ),
    Key(
        "image_embeds",
        (DATASET,),
        "honoured",
        "the id of an image_embeds entry whose cache_dir holds this backend's latents (cache_dir_vae wins)",
        F.STR,
    ),
    Key("conditioning_image_embeds", (DATASET,), "warned", "conditioning image embeddings are not computed", F.STR),
    Key(
        "cache_dir_conditioning_image_embeds",
        (DATASET,),
        "warned",
        "conditioning image embeddings are not computed",
        F.STR,
    ),
    Key(
        "conditioning_image_embed_batch_size",
        (DATASET,),
        "warned",
        "conditioning image embeddings are not computed",
        F.ANY,
    ),
    Key("cache_file_suffix", (DATASET,), "warned", "metadata files are named by the backend id", F.STR),
    Key("vae_cache_clear_each_epoch", (DATASET,), "warned", "caches are content-keyed and never need clearing", F.BOOL),
    Key("vae_cache_ondemand", (DATASET,), "warned", "latents are always encoded ahead of training", F.BOOL),
    Key("vae_cache_disable", (DATASET,), "warned", "latents are always encoded ahead of training", F.BOOL),
    Key("compress_cache", (DATASET,), "warned", "caches are safetensors shards", F.BOOL),
    Key("skip_file_discovery", BOTH, "warned", "discovery is cheap here (no image is decoded)", F.CSV_OR_LIST),
    Key("preserve_data_backend_cache", BOTH, "warned", "metadata is rebuilt only when its inputs change", F.BOOL),
    Key(
        "hash_filenames",
        (DATASET,),
        "warned",
        "file names are the row index (huggingface) or the relative path (local, aws)",
        F.BOOL,
    ),
    Key("delete_unwanted_images", (DATASET,), "warned", NOT_DELETED, F.BOOL),
    Key("delete_problematic_images", (DATASET,), "warned", NOT_DELETED, F.BOOL),
    Key("delete_nsfw_images", (DATASET,), "warned", NOT_DELETED, F.BOOL),
    Key("write_batch_size", (CACHE,), "warned", "cache shards are sized in bytes by the encoders", F.INT_POS),
    Key(
        "text_encoder_batch_size",
        (CACHE,),
        "warned",
        "the text batch size is the encoders resource's `text_batch_size` (HF_ASSETS_TEXT_BATCH_SIZE)",
        F.INT_POS,
    ),
    Key("text_cache_ondemand", (CACHE,), "warned", "caption embeddings are always encoded ahead of training", F.BOOL),
    Key("text_cache_disable", (CACHE,), "warned", "caption embeddings are always encoded ahead of training", F.BOOL),
]

SUBSETS = [
    Key(
        "max_num_samples",
        (DATASET,),
        "honoured",
        "at most this many samples: of the rows every filter keeps, those whose hash of (backend id, file name) "
        "is lowest; stable across reruns, and a grown dataset keeps its chosen rows unless a new row ranks lower",
        F.INT_POS,
    ),
]

STORAGE_KEYS: list[Key] = [*LOCATION, *CACHES, *SUBSETS]
