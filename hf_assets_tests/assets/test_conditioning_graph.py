"""Conditioning partitions through the metadata half of the graph: generated and given datasets paired with their
source, both sides' losses recorded, a preview of each pair."""

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from hf_assets.data.pairing import PARTNER
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import photo_rows, write_config, write_hub_dataset
from hf_assets_tests.imagegen import encode_image

GEOMETRY = ["bucket", "target_width", "target_height", "resize_width", "resize_height", "crop_left", "crop_top"]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditioning")
    rows = photo_rows(8)
    write_hub_dataset(root / "data" / "photos", rows)
    control = root / "data" / "control"
    control.mkdir(parents=True)
    sizes = {i: (r["width"], r["height"]) for i, r in enumerate(rows) if i != 5}  # row 5 is corrupt
    for i, (w, h) in list(sizes.items())[:-1]:  # the last kept row gets no control image
        (control / f"{i}.png").write_bytes(encode_image(w // 2, h // 2, "PNG", seed=100 + i))
    (control / "stray.png").write_bytes(encode_image(64, 64, "PNG", seed=7))
    source = {
        "id": "photos",
        "type": "huggingface",
        "dataset_name": "data/photos",
        "caption_column": "metadata.caption",
        "resolution": 128,
        "resolution_type": "pixel",
        "crop": True,
        "crop_style": "random",
        "crop_aspect": "square",
        "conditioning_data": ["control"],
        "conditioning": [{"type": "canny", "conditioning_type": "controlnet", "captions": ["edges"]}],
        "cache_dir": "cache/photos",
    }
    given = {"id": "control", "type": "local", "dataset_type": "conditioning", "instance_data_dir": "data/control"}
    config = write_config(root / "dataloader.json", [given, source])
    defs = build_definitions(config)
    (root / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(root / "home"))
    scan = defs.resolve_job_def("scan_datasets")
    for partition in ("photos", "control", "photos_conditioning_canny"):
        assert scan.execute_in_process(partition_key=partition, instance=instance).success
    return defs, instance, root


def table(defs, instance, partition):
    return defs.load_asset_value("aspect_buckets", partition_key=partition, instance=instance)


def test_conditioning_partitions_follow_their_source(graph):
    defs, _, _ = graph
    keys = defs.resolve_assets_def("aspect_buckets").partitions_def.get_partition_keys()
    assert keys == ["photos", "control", "photos_conditioning_canny"]


def test_a_generated_partition_has_every_source_sample_with_its_geometry(graph):
    defs, instance, _ = graph
    source, canny = table(defs, instance, "photos"), table(defs, instance, "photos_conditioning_canny")
    assert canny.column("filename").to_pylist() == source.column("filename").to_pylist() == canny[PARTNER].to_pylist()
    for column in GEOMETRY + ["row"]:
        assert canny.column(column).to_pylist() == source.column(column).to_pylist()
    assert set(np.asarray(source.column("crop_left"))) != {0}  # random crops, taken from the source, not redrawn
    assert canny.column("captions").to_pylist() == [["edges"]] * canny.num_rows


def test_a_given_partition_pairs_by_name_and_records_both_sides(graph):
    defs, instance, root = graph
    source, control = table(defs, instance, "photos"), table(defs, instance, "control")
    assert "7.jpg" in source.column("filename").to_pylist()  # kept by the source itself: it trains alone too
    partners = dict(zip(control[PARTNER].to_pylist(), control.to_pylist()))
    assert set(partners) == set(source.column("filename").to_pylist()) - {"7.jpg"}
    for row in source.to_pylist():
        if row["filename"] in partners:
            mine = partners[row["filename"]]
            assert mine["filename"] == row["filename"].replace(".jpg", ".png")
            assert [mine[c] for c in GEOMETRY] == [row[c] for c in GEOMETRY]
            assert mine["caption"] == row["caption"]  # no caption keys: its source's, as SimpleTuner
    materialization = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("aspect_buckets"), asset_partitions=["control"]), limit=1
        )
        .records[0]
        .asset_materialization
    )
    unpaired = materialization.metadata["unpaired_by_reason"].value
    counts = {record.data["reason"]: record.data["rows"] for record in unpaired.records}
    assert counts == {"conditioning: no_source_sample": 1, "source: no_conditioning_pair": 1}
    assert "preview_grid" in materialization.metadata
    lost = pq.read_table(root / "cache" / "control" / "huggingface_metadata" / "control" / "dropped_pairs.parquet")
    assert sorted(zip(lost["side"].to_pylist(), lost["filename"].to_pylist())) == [
        ("conditioning", "stray.png"),
        ("source", "7.jpg"),
    ]


@pytest.fixture(scope="module")
def encoded(graph, tiny_sdxl):
    """The source, the given and the generated conditioning dataset encoded with the tiny SDXL pipeline."""
    defs, instance, root = graph
    with pytest.MonkeyPatch.context() as mp:  # module scope: the function-scoped monkeypatch fixture cannot serve
        mp.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
        prepare = build_definitions(root / "dataloader.json").resolve_job_def("prepare_datasets")
        for partition in ("photos", "control", "photos_conditioning_canny"):
            assert prepare.execute_in_process(partition_key=partition, instance=instance).success
    return defs, instance


@pytest.mark.slow
def test_a_given_dataset_encodes_with_its_sources_crop_and_reaches_the_trainer_with_it(encoded):
    from hf_assets.training import BucketBatchSampler, CachedSamples

    defs, instance = encoded
    samples = CachedSamples.from_definitions(defs, "photos", instance=instance, conditioning=["control"])
    assert "7.jpg" not in samples.filenames and len(samples) == 6  # 8 rows, one corrupt, one without control image
    item = samples[0]
    control = item["conditioning"]["control"]
    assert control["filename"] == item["filename"].replace(".jpg", ".png")
    assert control["latents"].shape == item["latents"].shape  # the source's target size
    assert control["pixel_values"].shape == (3, 128, 128)  # the control image, stored beside its latents
    batch = next(iter(BucketBatchSampler.from_samples(samples, 3, seed=0)))
    assert len(batch) == 3


@pytest.mark.slow
def test_a_generated_canny_dataset_encodes_from_its_sources_crop_and_reaches_the_trainer(encoded, graph):
    from hf_assets.config import load_config
    from hf_assets.encode.generators import canny_edges
    from hf_assets.training import CachedSamples
    from hf_assets_tests.encode.test_conditioning_media import source_crops

    defs, instance = encoded
    root = graph[2]
    both = ["control", "photos_conditioning_canny"]
    samples = CachedSamples.from_definitions(defs, "photos", instance=instance, conditioning=both)
    assert len(samples) == 6
    latents = defs.load_asset_value("vae_latents", partition_key="photos_conditioning_canny", instance=instance)
    assert latents.meta["conditioning_type"] == "controlnet" and latents.meta["generator"] == "canny"
    assert len(latents) == 7  # every source sample (row 5 is corrupt, dropped by the source's scan)
    # each control image is the edges of the very pixels the source's latents were encoded from
    crops = source_crops(load_config(root / "dataloader.json").backend("photos"), table(defs, instance, "photos"))
    edge_pixels = 0
    for index in range(len(samples)):
        item = samples[index]
        canny = item["conditioning"]["photos_conditioning_canny"]
        assert canny["filename"] == item["filename"] and canny["latents"].shape == item["latents"].shape
        stored = (canny["pixel_values"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(stored, canny_edges(crops[item["filename"]], low_threshold=50, high_threshold=100))
        edge_pixels += int((stored[:, :, 0] == 255).sum())
    assert edge_pixels > 0
    materialization = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("vae_latents"), asset_partitions=["photos_conditioning_canny"]),
        limit=1,
    ).records[0]
    assert materialization.asset_materialization.metadata["conditioning_type"].value == "controlnet"


@pytest.mark.slow
def test_a_tiny_controlnet_learns_from_the_cached_pairs(encoded):
    from diffusers import ControlNetModel

    from examples import train_tiny_controlnet
    from hf_assets.training import BucketBatchSampler, CachedSamples

    defs, instance = encoded
    samples = CachedSamples.from_definitions(defs, "photos", instance=instance, conditioning=["control"])
    sampler = BucketBatchSampler.from_samples(samples, 3, seed=0)
    lines = []
    controlnet, losses = train_tiny_controlnet.train(
        samples, sampler, "control", steps=24, lr=2e-3, seed=0, log=lines.append
    )
    assert isinstance(controlnet, ControlNetModel) and len(losses) == len(lines) == 24
    assert controlnet.config.conditioning_channels == 3  # the control images, as diffusers' script feeds them
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < 0.9 * first, losses
    assert "control 3x3x128x128" in lines[0]  # the control images of 128x128 crops


@pytest.mark.slow
def test_the_controlnet_example_finds_the_backends_controlnet_partner(encoded, graph, monkeypatch, capsys, tmp_path):
    from diffusers import ControlNetModel

    from examples import train_tiny_controlnet

    _, _, root = graph
    monkeypatch.setenv("DAGSTER_HOME", str(root / "home"))
    argv = ["--config", str(root / "dataloader.json"), "--partition", "photos", "--steps", "2"]
    assert train_tiny_controlnet.main([*argv, "--save", str(tmp_path / "controlnet")]) == 0
    out = capsys.readouterr().out
    assert "photos + control:" in out and out.count("\nstep ") == 2
    assert ControlNetModel.from_pretrained(tmp_path / "controlnet").config.conditioning_channels == 3
    assert train_tiny_controlnet.main(["--config", str(root / "dataloader.json"), "--partition", "control"]) == 2
