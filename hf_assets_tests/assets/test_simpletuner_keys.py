"""SimpleTuner's keys through the graph and the trainer's door: a Hub-style backend captioned by its instance prompt
(encoded once), with max_num_samples, file_extension and a cache_dir_vae placeholder, and a `type: "aws"` backend
read from a real S3 server on 127.0.0.1, prepared end to end and drawn by MultiBackendSampler from the config."""

import logging

import dagster as dg

from hf_assets.config import load_config
from hf_assets.definitions import build_definitions
from hf_assets.training import BucketBatchSampler, CachedSamples, MultiBackendSampler, MultiBackendSamples
from hf_assets_tests.conftest import write_config
from hf_assets_tests.s3_server import SECRET, fill_bucket


def metadata(instance, asset: str, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_simpletuner_keys_run_through_the_graph_and_reach_the_trainers_door(
    tmp_path, hub_dataset, photos_entry, tiny_sdxl, s3_server, monkeypatch, caplog
):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_MODEL_FAMILY", "sdxl")
    fill_bucket(s3_server, "st-keys")
    hub = {
        **photos_entry,
        "caption_strategy": "instanceprompt",
        "instance_prompt": "a photo of sks",
        "max_num_samples": 6,
        "huggingface": {"file_extension": "png"},
        "cache_dir_vae": "cache/vae/{model_family}/{id}",
        "resolution": 96,
        "aspect_bucket_alignment": 32,
        "repeats": 1,
        "end_epoch": 1,
    }
    bucket = s3_server.entry(
        "bucket",
        "st-keys",
        "train/",
        caption_strategy="textfile",
        caption_encoding="cp1252",
        resolution=96,
        aspect_bucket_alignment=32,
        probability=0.5,
    )
    text = {"id": "text", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/text"}
    config = write_config(tmp_path / "dataloader.json", [hub, bucket, text])
    defs = build_definitions(config)
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    job = defs.resolve_job_def("prepare_datasets")
    with caplog.at_level(logging.DEBUG):
        for partition in ("photos", "bucket"):
            assert job.execute_in_process(partition_key=partition, instance=instance).success

    index = defs.load_asset_value("filtered_index", partition_key="photos", instance=instance)
    assert index.num_rows == 6 and all(name.endswith(".png") for name in index["filename"].to_pylist())
    assert metadata(instance, "vae_latents", "photos")["encoded"] == 6
    assert (tmp_path / "cache/vae/sdxl/photos").is_dir()
    captions = metadata(instance, "text_embeds", "photos")
    assert captions["encoded"] == captions["distinct_captions"] == 1 and captions["variants"] == 6  # encoded once

    assert metadata(instance, "filtered_index", "bucket")["kept"] == 3  # no caption file, and a corrupt image
    assert metadata(instance, "vae_latents", "bucket")["encoded"] == 3
    events = [e.message or "" for e in instance.all_logs(next(iter(instance.get_runs())).run_id)]
    assert not any(SECRET in m for m in events + [r.getMessage() for r in caplog.records])

    backends = load_config(config).backends
    samples = [CachedSamples.from_definitions(defs, b.id, instance=instance) for b in backends]
    assert samples[0][0]["caption"] == "a photo of sks"
    samplers = [BucketBatchSampler.from_samples(s, batch_size=1, seed=0) for s in samples]
    multi = MultiBackendSampler.from_backends(samplers, backends)
    both = MultiBackendSamples(samples, names=[b.id for b in backends])
    first = [both[key]["backend"] for batch in multi for key in batch]
    assert first.count("photos") == 2 * 6 and first.count("bucket") == 3  # repeats: 1
    multi.set_epoch(1)  # SimpleTuner's epoch 2: past end_epoch of the photos
    assert {both[key]["backend"] for batch in multi for key in batch} == {"bucket"}


def test_caption_and_column_keys_run_through_scan_datasets(tmp_path, monkeypatch):
    """video_column, dataset_name and file_extension from the huggingface block, prepend_instance_prompt,
    only_instance_prompt and textfile line variants, each scanned by the scan_datasets job."""
    import datasets

    from hf_assets_tests.imagegen import encode_image
    from hf_assets_tests.videogen import encode_clip

    clips = {
        "clip": [encode_clip(64, 48, 9, seed=i) for i in range(3)],
        "thumb": [encode_image(32, 32, "PNG", seed=i) for i in range(3)],
        "caption": ["waves", "a boat", "gulls"],
    }
    (tmp_path / "data/clips/data").mkdir(parents=True)
    datasets.Dataset.from_dict(clips).to_parquet(str(tmp_path / "data/clips/data/train.parquet"))
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, text in enumerate([b"a red bike\nparked by a wall", b"a dog"]):
        (folder / f"{i}.jpg").write_bytes(encode_image(96 + 32 * i, 96, "JPEG", seed=i))
        (folder / f"{i}.txt").write_bytes(text)
    video = {
        "id": "clips",
        "type": "huggingface",
        "dataset_type": "video",
        "metadata_backend": "huggingface",
        "image_column": "thumb",  # SimpleTuner reads clips from video_column, not image_column
        "huggingface": {"dataset_name": "data/clips", "video_column": "clip", "file_extension": "webm"},
        "caption_column": "caption",
        "instance_prompt": "sks footage",
        "prepend_instance_prompt": True,
        "resolution": 48,
        "resolution_type": "pixel",
        "aspect_bucket_alignment": 16,
    }
    lines = {"id": "lines", "type": "local", "instance_data_dir": "folder", "caption_strategy": "textfile"}
    only = {**lines, "id": "only", "instance_prompt": "sks", "only_instance_prompt": True}
    defs = build_definitions(write_config(tmp_path / "dataloader.json", [video, lines, only]))
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("scan_datasets")
    index = {}
    for partition in ("clips", "lines", "only"):
        assert job.execute_in_process(partition_key=partition, instance=instance).success
        index[partition] = defs.load_asset_value("filtered_index", partition_key=partition, instance=instance)
    assert index["clips"]["filename"].to_pylist() == ["0.webm", "1.webm", "2.webm"]
    assert index["clips"]["width"].to_pylist() == [64, 64, 64]  # the clips' size, not the 32x32 thumbnails
    assert index["clips"]["captions"].to_pylist() == [
        ["sks footage waves"],
        ["sks footage a boat"],
        ["sks footage gulls"],
    ]
    assert index["lines"]["captions"].to_pylist() == [["a red bike", "parked by a wall"], ["a dog"]]
    assert index["only"]["captions"].to_pylist() == [["sks"], ["sks"]]
