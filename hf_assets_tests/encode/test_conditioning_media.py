"""Generated conditioning datasets through the one encoding engine: each sample is its source crop through its
generator, encoded by the VAE with its control image or mask beside the latents; reruns reproduce it bit for bit, and
a changed parameter (or depth model) re-keys only its own dataset."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from hf_assets.cache.latents import open_latents
from hf_assets.config import parse_config
from hf_assets.data.conditioning_buckets import pair_buckets
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.encode import engine
from hf_assets.encode.depth import load_depth_model
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine_types import EncodeSettings
from hf_assets.encode.generators import generate, sample_rng
from hf_assets.encode.image_source import iter_images, read_source
from hf_assets.encode.images import load_pixels
from hf_assets.encode.latents_plan import remove_plan
from hf_assets.testing.tiny_pipelines import build_tiny_dpt
from hf_assets.training.conditioning_samples import ConditioningSamples
from hf_assets_tests.conftest import photo_rows, write_hub_dataset

SETTINGS = EncodeSettings(batch_size=3, decode_workers=2)
SOURCE = {
    "id": "photos",
    "type": "huggingface",
    "dataset_name": "data/photos",
    "caption_column": "metadata.caption",
    "resolution": 64,
    "resolution_type": "pixel_area",
    "crop": True,
    "crop_style": "random",
    "crop_aspect": "preserve",
    "aspect_bucket_alignment": 16,
    "cache_dir": "cache/photos",
}
# generator -> (its conditioning object, a change of its parameters that must change its output)
GENERATORS = {
    "canny": ({"type": "canny", "conditioning_type": "controlnet"}, {"low_threshold": 20, "high_threshold": 60}),
    "superresolution": ({"type": "superresolution", "conditioning_type": "controlnet"}, {"blur_radius": 4.0}),
    "jpeg_artifacts": ({"type": "jpeg_artifacts", "conditioning_type": "controlnet"}, {"quality": 5}),
    "random_masks": ({"type": "random_masks", "conditioning_type": "mask"}, {"min_coverage": 0.6, "max_coverage": 0.9}),
    "sdr": ({"type": "sdr"}, {"exposure": 1.0}),  # SimpleTuner's default type: reference_strict, nothing stored
    "depth": ({"type": "depth", "conditioning_type": "controlnet"}, None),  # its parameter is the depth model
}


def backends(root, changes: dict | None = None, generators=tuple(GENERATORS)):
    """source, {generator: its generated backend}; `changes` adds parameters to one generator's object."""
    objects = [{**GENERATORS[name][0], **((changes or {}).get(name, {}))} for name in generators]
    config = parse_config([{**SOURCE, "conditioning": objects}], root / "dataloader.json")
    source = config.backend("photos")
    return source, {name: config.backend(f"photos_conditioning_{name}") for name in generators}


def buckets_of(backend, source):
    split = open_split(source)
    index, _ = build_filtered_index(split, source)
    pairing = backend.conditioning
    return pair_buckets(
        index, backend, index, source, generated=True, strict=pairing.strict, captions=pairing.captions
    ).table


def encode(backend, source, encoders, latents_dir=None):
    backend = replace(backend, latents_dir=latents_dir) if latents_dir else backend
    report = engine.update(backend, buckets_of(backend, source), open_split(backend), encoders, SETTINGS, shards=2)
    return report, open_latents(backend.vae_dir)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_sdxl):
    """Every generator's dataset of a 7-row photo dataset (row 5 corrupt), encoded once."""
    root = tmp_path_factory.mktemp("generated")
    write_hub_dataset(root / "data" / "photos", photo_rows(7))
    depth = build_tiny_dpt(root / "dpt")
    encoders = Encoders(str(tiny_sdxl), depth_model=str(depth))
    source, generated = backends(root)
    encoded = {name: encode(backend, source, encoders) for name, backend in generated.items()}
    return root, encoders, source, generated, encoded


def source_crops(source, table) -> dict[str, np.ndarray]:
    """file name -> the pixels the source's encoder gets for it (its decoded, resized and cropped image)."""
    crops = {}
    split = open_split(source)
    for record, data in zip(table.to_pylist(), iter_images(split, "image", table.column("row").to_numpy())):
        tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
        box = (
            record["crop_left"],
            record["crop_top"],
            record["crop_left"] + record["target_width"],
            record["crop_top"] + record["target_height"],
        )
        try:
            crops[record["filename"]] = load_pixels(
                read_source(data), tile, (record["resize_width"], record["resize_height"]), box
            )
        except Exception:  # noqa: BLE001 - the corrupt row: dropped by the encoder too
            continue
    return crops


def stored_image(latents, name: str) -> np.ndarray | None:
    names = latents.tensor_names(name)
    for tensor in ("pixels", "mask"):
        if tensor in names:
            return latents.tensor(name, tensor).permute(1, 2, 0).numpy()
    return None


@pytest.mark.parametrize("name", list(GENERATORS))
def test_each_sample_is_its_source_crop_through_the_generator_pixel_for_pixel(dataset, name):
    root, encoders, source, generated, encoded = dataset
    backend = generated[name]
    report, latents = encoded[name]
    table = buckets_of(backend, source)
    crops = source_crops(source, table)
    assert report.encoded == len(crops) == table.num_rows == 6 and not report.dropped  # row 5 (corrupt): not kept
    generator = backend.conditioning.generator
    estimator = load_depth_model(encoders.depth_source) if name == "depth" else None
    vae = encoders.vae()
    for filename, crop in crops.items():
        if estimator is not None:
            expected = estimator([crop])[0]
        else:
            expected = generate(generator, crop, sample_rng("photos", filename, generator))
        stored = stored_image(latents, filename)
        kind = backend.conditioning.type
        assert set(latents.tensor_names(filename)) == {"mean", "std"} | {
            "controlnet": {"pixels"},
            "mask": {"mask"},
        }.get(kind, set())
        if kind == "controlnet":
            assert stored.shape == crop.shape  # the source crop's exact size
            tolerance = 1 if estimator is not None else 0  # depth: batched through the model, float rounding
            assert np.abs(stored.astype(int) - expected.astype(int)).max() <= tolerance
        elif kind == "mask":
            assert np.array_equal(stored[:, :, 0], expected[:, :, 0]) and stored.shape[2] == 1
        encoded_image = stored if kind == "controlnet" else expected  # (depth: what the model gave in its batch)
        x = torch.from_numpy(np.ascontiguousarray(encoded_image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.inference_mode():
            mean = vae.encode(x).latent_dist.mean[0]
        assert torch.allclose(latents[filename], mean, atol=1e-4)  # the latents are the conditioning image's


def test_the_manifest_records_the_pairing_the_trainer_reads(dataset):
    root, _, source, generated, encoded = dataset
    for name, backend in generated.items():
        meta = encoded[name][1].meta
        assert meta["conditioning_type"] == backend.conditioning.type and meta["source"] == "photos"
        assert meta["generator"] == name and meta["dataset_type"] == "conditioning"
    masks = ConditioningSamples("m", buckets_of(generated["random_masks"], source), encoded["random_masks"][1])
    assert masks.conditioning_type == "mask" and len(masks.partner) == 6
    item = masks.item("0.jpg", torch.Generator().manual_seed(0))
    assert item["mask"].shape[0] == 1 and 0.0 <= item["mask"].min() and item["mask"].max() <= 1.0
    canny = ConditioningSamples("c", buckets_of(generated["canny"], source), encoded["canny"][1])
    control = canny.item("0.jpg", torch.Generator().manual_seed(0))
    assert control["pixel_values"].shape[0] == 3 and set(control["pixel_values"].unique().tolist()) <= {0.0, 1.0}
    assert "pixel_values" not in ConditioningSamples("s", buckets_of(generated["sdr"], source), encoded["sdr"][1]).item(
        "0.jpg", torch.Generator().manual_seed(0)
    )


def test_a_rerun_encodes_nothing_and_a_fresh_cache_is_the_same_bit_for_bit(dataset, tmp_path):
    root, encoders, source, generated, encoded = dataset
    for name, backend in generated.items():
        again, _ = encode(backend, source, encoders)
        assert (again.encoded, again.reused) == (0, 6), name
        fresh_report, fresh = encode(backend, source, encoders, tmp_path / name)
        _, first = encoded[name]
        assert fresh_report.encoded == 6 and sorted(fresh) == sorted(first)
        for filename in first:
            assert fresh.entry(filename)["key"] == first.entry(filename)["key"]
            assert torch.equal(fresh[filename], first[filename]), (name, filename)
            for tensor in set(first.tensor_names(filename)) - {"mean", "std"}:
                assert torch.equal(fresh.tensor(filename, tensor), first.tensor(filename, tensor))


@pytest.mark.parametrize("name", list(GENERATORS))
def test_a_changed_parameter_changes_the_output_and_re_keys_only_its_own_dataset(dataset, name, tmp_path):
    root, encoders, source, _, encoded = dataset
    if name == "depth":  # the depth model is what a depth dataset's samples depend on
        changed_encoders = Encoders(encoders.model, depth_model=str(build_tiny_dpt(tmp_path / "dpt-1", seed=1)))
        _, changed = backends(root)
    else:
        changed_encoders = encoders
        _, changed = backends(root, {name: GENERATORS[name][1]})
    for other, backend in changed.items():
        plan = engine.plan(backend, buckets_of(backend, source), open_split(backend), changed_encoders, SETTINGS, 2)
        remove_plan(plan)  # planned against the shared cache only: what it would encode
        assert (plan.to_encode, plan.reused) == ((6, 0) if other == name else (0, 6)), other
    _, after = encode(changed[name], source, changed_encoders, tmp_path / "changed")
    _, before = encoded[name]
    differs = []
    for filename in before:
        image, image_before = stored_image(after, filename), stored_image(before, filename)
        if image is None:  # references: only their latents tell
            differs.append(not torch.allclose(after[filename], before[filename]))
        else:
            differs.append(not np.array_equal(image, image_before))
    assert sum(differs) >= 5, differs


def test_generated_images_are_written_as_files_only_when_the_entry_names_a_folder(dataset, tmp_path):
    root, encoders, source, generated, encoded = dataset
    assert not list(root.rglob("*.png"))  # nothing of the six datasets was written as an image file
    config = parse_config(
        [
            {
                **SOURCE,
                "conditioning": [{"type": "canny", "conditioning_type": "controlnet", "instance_data_dir": "edges"}],
            }
        ],
        root / "with_files.json",
    )
    backend = config.backend("photos_conditioning_canny")
    report, latents = encode(backend, source, encoders, tmp_path / "cache")
    assert report.encoded == 6  # the folder is in the key: naming it encodes (and writes) once
    from PIL import Image

    written = sorted(p.name for p in (root / "edges").glob("*.png"))
    assert written == sorted(f.replace(".jpg", ".png") for f in latents)
    for filename in latents:
        with Image.open(root / "edges" / filename.replace(".jpg", ".png")) as image:
            assert np.array_equal(np.asarray(image.convert("RGB")), stored_image(latents, filename))


def test_the_depth_model_loads_once_per_step_on_the_steps_device(dataset, tmp_path):
    root, encoders, source, generated, _ = dataset
    backend = replace(generated["depth"], latents_dir=tmp_path / "depth")
    plan = engine.plan(backend, buckets_of(backend, source), open_split(backend), encoders, SETTINGS, shards=1)
    loads = []

    def depth_loader():
        loads.append(1)
        return encoders.depth()

    engine.encode_shard(plan, 0, open_split(backend), encoders.vae, depth_loader=depth_loader)
    engine.commit(plan)
    assert loads == [1] and encoders.depth().device == encoders.device  # two batches of 3, one load


def test_a_depth_dataset_without_a_depth_model_is_refused_naming_the_setting(dataset, tmp_path):
    root, encoders, source, generated, _ = dataset
    backend = replace(generated["depth"], latents_dir=tmp_path / "depth")
    missing = Encoders(encoders.model, depth_model=str(tmp_path / "no-such-dpt"))
    with pytest.raises(Exception, match="HF_ASSETS_DEPTH_MODEL"):
        engine.plan(backend, buckets_of(backend, source), open_split(backend), missing, SETTINGS, shards=1)
