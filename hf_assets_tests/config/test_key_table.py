"""The registry is the one source: every key SimpleTuner documents is in it, and the README's key table ("Your
SimpleTuner config") is rendered from it (regenerate with `python -m hf_assets.config.key_table README.md`)."""

from pathlib import Path

from hf_assets.config import registry as R
from hf_assets.config.key_table import END, START, markdown_table, replace_between_markers

ROOT = Path(__file__).resolve().parents[2]
KEYS_PAGE = ROOT / "README.md"

# The keys SimpleTuner's documentation/DATALOADER.md documents for a dataloader entry (headings, tables, examples).
DOCUMENTED_ENTRY_KEYS = """
id disabled disable dataset_type default cache_dir train_batch_size write_batch_size text_encoder_batch_size
text_cache_ondemand text_cache_disable text_embeds image_embeds conditioning_image_embeds
cache_dir_conditioning_image_embeds conditioning_image_embed_batch_size audio type conditioning_type
source_dataset_id conditioning_data instance_data_dir aws_data_prefix caption_strategy disable_multiline_split
caption_shuffle metadata_backend metadata_update_interval crop crop_style crop_aspect crop_aspect_buckets resolution
resolution_type minimum_image_size minimum_aspect_ratio maximum_aspect_ratio conditioning maximum_image_size
target_downsample_size max_upscale_threshold prepend_instance_prompt only_instance_prompt instance_prompt
timestep_sampling_offset repeats max_num_samples start_epoch start_step end_epoch end_step is_regularisation_data
is_regularization_data delete_unwanted_images delete_problematic_images delete_nsfw_images slider_strength
vae_cache_clear_each_epoch vae_cache_ondemand vae_cache_disable skip_file_discovery preserve_data_backend_cache
hash_filenames caption_filter_list grounding cache_dir_vae probability aws_bucket_name aws_region_name
aws_endpoint_url aws_access_key_id aws_secret_access_key video huggingface parquet csv_file csv_caption_column
csv_cache_dir memory_filesystem_path memory_filesystem_size memory_filesystem_sudo source metadata webshart
webshart_optimize_captions
""".split()
# ...inside the huggingface block (HUGGINGFACE_DATASETS.md and the spec), the video block and the filter_func block.
DOCUMENTED_BLOCK_KEYS = {
    R.HUGGINGFACE: "dataset_name split revision image_column video_column caption_column fallback_caption_column "
    "description_column width_column height_column num_frames_column fps_column filter_func composite_image_config "
    "streaming num_proc file_extension",
    R.VIDEO: "num_frames min_frames max_frames is_i2v bucket_strategy frame_interval",
    R.FILTER: "quality_thresholds quality_column collection min_width min_height",
    R.COMPOSITE: "enabled image_count select_index",
}


def test_every_documented_key_is_known_where_simpletuner_documents_it():
    cache_or_dataset = set(R.keys_in(R.DATASET)) | set(R.keys_in(R.CACHE))
    assert [k for k in DOCUMENTED_ENTRY_KEYS if k not in cache_or_dataset] == []
    for scope, names in DOCUMENTED_BLOCK_KEYS.items():
        assert [k for k in names.split() if k not in R.keys_in(scope)] == [], scope


def test_every_key_has_a_status_a_reason_and_a_value_check():
    for key in R.KEYS:
        assert key.note.strip() and key.status in R.STATUSES
        assert key.check is not None, key.name
    counts = R.status_counts()
    assert counts["honoured"] > 80 and counts["warned"] > 40


def test_the_readmes_table_is_the_registry():
    text = KEYS_PAGE.read_text(encoding="utf-8")
    assert "## Your SimpleTuner config" in text and "### Every key" in text
    table = text.split(START, 1)[1].split(END, 1)[0].lstrip("\n")
    assert table == markdown_table(), "regenerate it: python -m hf_assets.config.key_table README.md"
    assert "docs/simpletuner.md" in text  # the parity details it links


def test_the_table_has_a_row_per_key_and_place_with_value_statuses():
    table = markdown_table()
    assert table.count("\n") == 2 + len(R.KEYS)
    assert "| `dataset_type` | entry | honoured |" in table and '`"audio"`: refused (audio is out of scope' in table
    assert "| `video_column` | entry or `huggingface` | honoured |" in table and "top level first" in table
    assert "`sample_rate`" in table  # the documented keys of a block accepted as a whole are named
    assert replace_between_markers(f"a\n{START}\nold\n{END}\nb", "new\n") == f"a\n{START}\nnew\n{END}\nb"
