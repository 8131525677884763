"""A video backend through the whole graph (scan, buckets, latents, text embeds) and out of the trainer's door."""

import dagster as dg
import pytest
import torch

from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config
from hf_assets_tests.videogen import damaged_payload_clip, encode_clip, truncated_clip, unsupported_codec_clip

# (width, height, frames, fps); no size columns: sizes come from the stream headers
CLIPS = [(64, 48, 17, 24), (48, 64, 13, 30), (64, 48, 9, 24), (64, 64, 11, 12)]


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("wan") / "tiny-wan", "wan")


@pytest.fixture
def graph(tmp_path, wan, monkeypatch):
    import datasets

    good = [encode_clip(w, h, n, fps=fps, seed=i) for i, (w, h, n, fps) in enumerate(CLIPS)]
    bad = [
        damaged_payload_clip(encode_clip(64, 48, 9, seed=7)),
        unsupported_codec_clip(),
        truncated_clip(good[0]),
        encode_clip(64, 48, 5, seed=8),
    ]
    rows = {
        "video": good + bad,
        "caption": [f"clip {i} of waves" for i in range(8)],
        "frame_count": [n for _, _, n, _ in CLIPS] + [9, 9, 17, 5],
        "fps": [float(c[3]) for c in CLIPS] + [24.0] * 4,
    }
    folder = tmp_path / "data" / "clips" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "train.parquet"))
    entry = {
        "id": "clips",
        "type": "huggingface",
        "dataset_type": "video",
        "dataset_name": "data/clips",
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "image_column": "video",
        "huggingface": {"caption_column": "caption", "num_frames_column": "frame_count", "fps_column": "fps"},
        "video": {"num_frames": 17, "min_frames": 9},
        "resolution": 48,
        "resolution_type": "pixel",
        "aspect_bucket_alignment": 16,
    }
    config = write_config(tmp_path / "dataloader.json", [entry])
    monkeypatch.setenv("HF_ASSETS_MODEL", str(wan))
    (tmp_path / "home").mkdir()
    return config, dg.DagsterInstance.local_temp(str(tmp_path / "home"))


def materialize(config, instance):
    defs = build_definitions(config)
    result = defs.resolve_job_def("prepare_datasets").execute_in_process(partition_key="clips", instance=instance)
    meta = {
        e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    return defs, result, meta


def test_video_backend_runs_end_to_end_with_reasons_checks_reruns_and_trainer_batches(graph):
    from hf_assets.training import BucketBatchSampler, CachedSamples

    config, instance = graph
    defs, result, meta = materialize(config, instance)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert meta["vae_latents"]["encoded"] == 4 and meta["vae_latents"]["dropped"] == 1
    scan = {r.data["reason"]: r.data["rows"] for r in meta["filtered_index"]["dropped_by_reason"].records}
    assert (scan["unsupported_codec"], scan["unreadable_video"], scan["too_few_frames"]) == (1, 1, 1)
    encode_drops = {r.data["reason"]: r.data["rows"] for r in meta["vae_latents"]["dropped_by_reason"].records}
    assert encode_drops == {"corrupt_video": 1}
    latents = defs.load_asset_value("vae_latents", partition_key="clips", instance=instance)
    assert latents.meta["vae_class"] == "AutoencoderKLWan" and len(latents.latents_mean) == 4
    for name in latents:
        t, row = latents.entry(name)["num_frames"], latents.entry(name)
        assert latents[name].shape == (4, 1 + (t - 1) // 4, row["target_height"] // 8, row["target_width"] // 8)

    samples = CachedSamples.from_definitions(defs, "clips", instance=instance)
    assert sorted(samples.frames) == [9, 9, 13, 17]
    sampler = BucketBatchSampler.from_samples(samples, 2, short_buckets="keep")
    for batch_indices in sampler:
        items = [samples[i] for i in batch_indices]
        assert len({(it["frames"], tuple(it["latents"].shape)) for it in items}) == 1  # every batch stacks
    item = samples[samples.filenames.index("1.mp4")]
    assert item["frames"] == 13 and item["fps"] == 30.0 and item["latents"].shape[1] == 4
    assert item["prompt_embeds"].shape[0] == 512 and torch.isfinite(item["latents"]).all()

    _, again, meta2 = materialize(config, instance)
    assert meta2["vae_latents"]["encoded"] == 0 and meta2["vae_latents"]["reused"] == 4
