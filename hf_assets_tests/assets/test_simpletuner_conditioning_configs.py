"""SimpleTuner's five conditioning example configs (`simpletuner/examples/multidatabackend-controlnet-{128,512,1024}px
.json`, `multidatabackend-reference-512px.json`, `z-image-canny-databackend-512px.json`) end to end on CPU.

Their files are not copied here: each config is written below with the same entries, keys and values (backend type,
crops, resolutions, instance-prompt captions, `cache_dir_vae` with `{model_family}`, the `conditioning` object with
its type, conditioning_type, captions and params, the `text_embeds` cache entry). Only the Hub datasets are swapped:
a local stand-in with real JPEG/PNG/WebP bytes (one corrupt row, one image under minimum_image_size) sits at the
dataset_name's path beside the config, which a local folder wins over a hub id. Each config then loads, and its
source and generated partitions materialize through the whole graph with tiny random-weight pipelines."""

import json

import dagster as dg
import numpy as np
import pytest

from hf_assets.config import load_config
from hf_assets.data.pairing import PARTNER
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import photo_rows, write_hub_dataset

# Five configs through the whole graph with real encoders: about four minutes on two CPU cores, so not in test-fast.
pytestmark = pytest.mark.slow

GEOMETRY = ["bucket", "target_width", "target_height", "resize_width", "resize_height", "crop_left", "crop_top"]
TEXT_EMBEDS = {
    "id": "alt-embed-cache",
    "dataset_type": "text_embeds",
    "default": True,
    "type": "local",
    "cache_dir": "cache/text/{model_family}",
}


def controlnet_example(size: int, crop: bool) -> list[dict]:
    """multidatabackend-controlnet-{size}px.json: minecraft images and their generated canny ControlNet dataset."""
    backend = f"controlnet-{size}"
    return [
        {
            "id": backend,
            "type": "huggingface",
            "dataset_name": "keras-dreambooth/minercraft",
            "crop": crop,
            "crop_style": "random",
            "crop_aspect": "square",
            "minimum_image_size": 128,
            "repeats": 4,
            "resolution": size,
            "maximum_image_size": size,
            "target_downsample_size": size,
            "resolution_type": "pixel_area",
            "metadata_backend": "huggingface",
            "caption_strategy": "instanceprompt",
            "instance_prompt": "minecraft",
            "cache_dir_vae": f"cache/vae/{{model_family}}/{backend}",
            "conditioning": {"type": "canny", "conditioning_type": "controlnet", "captions": ["minecraft"]},
        },
        TEXT_EMBEDS,
    ]


def reference_example() -> list[dict]:
    """multidatabackend-reference-512px.json: a generated superresolution reference, strict, no repeats."""
    return [
        {
            "id": "reference-512",
            "type": "huggingface",
            "dataset_name": "keras-dreambooth/minercraft",
            "crop": False,
            "crop_style": "random",
            "crop_aspect": "square",
            "minimum_image_size": 128,
            "resolution": 512,
            "maximum_image_size": 512,
            "target_downsample_size": 512,
            "resolution_type": "pixel_area",
            "metadata_backend": "huggingface",
            "caption_strategy": "instanceprompt",
            "instance_prompt": "minecraft",
            "cache_dir_vae": "cache/vae/{model_family}/reference-512",
            "conditioning": {
                "type": "superresolution",
                "conditioning_type": "reference_strict",
                "captions": ["minecraft"],
            },
        },
        TEXT_EMBEDS,
    ]


Z_IMAGE_CAPTION = "🟫, clean silhouette, matching the reference edge structure"


def z_image_example() -> list[dict]:
    """z-image-canny-databackend-512px.json: pixel resolution, cropped, canny with its thresholds in `params`."""
    backend = "z-image-domokun-canny-source-512"
    return [
        {
            "id": backend,
            "type": "huggingface",
            "dataset_name": "RareConcepts/Domokun",
            "crop": True,
            "crop_style": "random",
            "crop_aspect": "square",
            "minimum_image_size": 128,
            "maximum_image_size": 512,
            "target_downsample_size": 512,
            "resolution": 512,
            "resolution_type": "pixel",
            "metadata_backend": "huggingface",
            "caption_strategy": "instanceprompt",
            "instance_prompt": "🟫",
            "cache_dir_vae": f"cache/vae/{{model_family}}/{backend}",
            "conditioning": {
                "type": "canny",
                "conditioning_type": "reference_strict",
                "params": {"low_threshold": 100, "high_threshold": 200},
                "captions": [Z_IMAGE_CAPTION],
            },
        },
        TEXT_EMBEDS,
    ]


# name -> (entries, model family for {model_family} and the tiny pipeline, the generated dataset's captions)
EXAMPLES = {
    "multidatabackend-controlnet-128px": (controlnet_example(128, crop=False), "sdxl", ["minecraft"]),
    "multidatabackend-controlnet-512px": (controlnet_example(512, crop=False), "sdxl", ["minecraft"]),
    "multidatabackend-controlnet-1024px": (controlnet_example(1024, crop=True), "sdxl", ["minecraft"]),
    "multidatabackend-reference-512px": (reference_example(), "sdxl", ["minecraft"]),
    "z-image-canny-databackend-512px": (z_image_example(), "flux", [Z_IMAGE_CAPTION]),
}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> dict:
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    root = tmp_path_factory.mktemp("st_pipelines")
    return {family: build_tiny_pipeline(root / family, family) for family in ("sdxl", "flux")}


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def materialized(request, tmp_path_factory, pipelines):
    """One example config beside its local stand-in, both partitions materialized (prepare_datasets) in order."""
    name = request.param
    entries, family, captions = EXAMPLES[name]
    root = tmp_path_factory.mktemp(name)
    source = entries[0]
    # 8 rows: JPEG, PNG and WebP of several shapes, one EXIF-rotated, one under 128 px (row 4), one corrupt (row 5)
    write_hub_dataset(root / source["dataset_name"], photo_rows(8, corrupt=(5,)))
    path = root / f"{name}.json"
    path.write_text(json.dumps(entries, indent=4, ensure_ascii=False))
    (root / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(root / "home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ASSETS_MODEL", str(pipelines[family]))
        mp.setenv("HF_ASSETS_MODEL_FAMILY", family)  # SimpleTuner's {model_family}
        config = load_config(path)
        defs = build_definitions(path)
        job = defs.resolve_job_def("prepare_datasets")
        results = {p: job.execute_in_process(partition_key=p, instance=instance) for p in config.backend_ids}
        yield name, config, defs, instance, results, family, captions


def loads_with_its_generated_partition_and_simpletuners_ids(materialized):
    name, config, _, _, _, _, _ = materialized
    source, generator = EXAMPLES[name][0][0], EXAMPLES[name][0][0]["conditioning"]["type"]
    assert config.backend_ids == [source["id"], f"{source['id']}_conditioning_{generator}"]
    conditioning = config.backend(config.backend_ids[1]).conditioning
    assert conditioning.source == source["id"] and conditioning.type == source["conditioning"]["conditioning_type"]
    assert conditioning.strict  # controlnet and reference_strict take the source's crop


def materializes_end_to_end_and_passes_every_check(materialized):
    _, config, _, _, results, _, _ = materialized
    for partition, result in results.items():
        assert result.success, partition
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert len(checks) == 10 and all(checks.values()), (partition, checks)  # metadata, caches, pairs
        assets = {e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert {"raw_split", "filtered_index", "aspect_buckets", "vae_latents", "text_embeds"} <= assets


def pairs_align_sample_by_sample_with_the_configs_captions(materialized):
    _, config, defs, instance, _, _, captions = materialized
    source_id, generated_id = config.backend_ids

    def table(partition):
        return defs.load_asset_value("aspect_buckets", partition_key=partition, instance=instance)

    source, generated = table(source_id), table(generated_id)
    names = source.column("filename").to_pylist()
    assert "4.jpg" not in names and "5.jpg" not in names  # under minimum_image_size; corrupt
    assert len(names) == 6
    assert generated.column("filename").to_pylist() == names == generated.column(PARTNER).to_pylist()
    for column in GEOMETRY:
        assert generated.column(column).to_pylist() == source.column(column).to_pylist(), column
    prompt = config.backend(source_id).captions.instance_prompts[0]
    assert source.column("captions").to_pylist() == [[prompt]] * 6
    assert generated.column("captions").to_pylist() == [captions] * 6


def latents_are_cached_under_cache_dir_vae_and_reach_the_trainer_as_pairs(materialized):
    from hf_assets.training import CachedSamples

    name, config, defs, instance, _, family, _ = materialized
    source_id, generated_id = config.backend_ids
    root = config.path.parent
    source_vae = root / "cache" / "vae" / family / source_id  # SimpleTuner's cache_dir_vae, {model_family} filled
    assert config.backend(source_id).vae_dir == source_vae
    assert config.backend(generated_id).vae_dir == source_vae / generated_id
    for directory in (source_vae, source_vae / generated_id):
        assert (directory / "manifest.parquet").is_file()
    latents = defs.load_asset_value("vae_latents", partition_key=generated_id, instance=instance)
    source_latents = defs.load_asset_value("vae_latents", partition_key=source_id, instance=instance)
    assert sorted(latents) == sorted(source_latents) and len(latents) == 6
    entry = EXAMPLES[name][0][0]["conditioning"]
    assert latents.meta["conditioning_type"] == entry["conditioning_type"]
    assert latents.meta["generator"] == entry["type"]
    for key, value in entry.get("params", {}).items():
        assert latents.meta["generator_params"][key] == value
    samples = CachedSamples.from_definitions(defs, source_id, instance=instance, conditioning=[generated_id])
    assert len(samples) == 6
    item = samples[0]
    partner = item["conditioning"][generated_id]
    assert partner["filename"] == item["filename"] and partner["latents"].shape == item["latents"].shape
    channels = 16 if family == "flux" else 4
    assert item["latents"].shape[0] == channels
    if entry["conditioning_type"] == "controlnet":  # the control image, stored beside the latents at the crop's size
        control = partner["pixel_values"]
        assert control.shape[1:] == (item["latents"].shape[1] * 8, item["latents"].shape[2] * 8)
        assert set(np.unique(control.numpy())) <= {0.0, 1.0}  # canny edges: black or white


def test_each_example_loads_materializes_pairs_and_reaches_the_trainer(materialized):
    """One test per example config, so that a parallel run builds each materialization once (pytest-xdist hands a
    module's tests to several workers, and each would build the module fixture again)."""
    loads_with_its_generated_partition_and_simpletuners_ids(materialized)
    materializes_end_to_end_and_passes_every_check(materialized)
    pairs_align_sample_by_sample_with_the_configs_captions(materialized)
    latents_are_cached_under_cache_dir_vae_and_reach_the_trainer_as_pairs(materialized)
