"""The latent cache update: exact transforms, incremental reruns, invalidation by every setting, pruning."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from PIL import Image, ImageOps

from hf_assets.cache.latents import open_latents
from hf_assets.config import parse_config
from hf_assets.data.buckets import assign_buckets
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine import update_latents
from hf_assets.encode.engine_types import EncodeSettings, LatentSettings
from hf_assets.encode.image_media import wanted_latents
from hf_assets.encode.vae import vae_factors_from_config
from hf_assets.testing.tiny_pipelines import build_tiny_pipeline
from hf_assets_tests.conftest import photo_rows, write_hub_dataset

ENTRY = {
    "id": "photos",
    "type": "huggingface",
    "dataset_name": "data/photos",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "caption_column": ["caption", "tags"],
    "fallback_caption_column": "metadata.caption",
    "resolution": 96,
    "resolution_type": "pixel_area",
    "crop": True,
    "crop_aspect": "preserve",
    "crop_style": "random",
    "aspect_bucket_alignment": 32,
}


def prepare(tmp_path, **overrides):
    backend = parse_config([{**ENTRY, **overrides}], tmp_path / "dataloader.json").backends[0]
    split = open_split(backend)
    index, _ = build_filtered_index(split, backend)
    return backend, split, assign_buckets(index, backend.buckets, backend.id)


def run(backend, split, buckets, model, dtype=torch.float32, storage=torch.float32, vae_loader=None, **kwargs):
    """update_latents of the bucket table into the backend's VAE cache; `vae_loader` replaces the model's VAE;
    `kwargs` are EncodeSettings fields (batch_size, shard_bytes, ...) and update_latents' own (shards, log)."""
    encoders = Encoders(str(model))
    settings = LatentSettings(encoders.vae_identity(), str(dtype), str(storage), decode=kwargs.get("decode", "pillow"))
    wanted = wanted_latents(buckets, split, backend.image_column, settings, backend.metadata_dir)
    meta = {**vae_factors_from_config(encoders.vae_config()), "vae": settings.vae_identity}
    loader = vae_loader or (lambda: encoders.vae().to(dtype))
    job = encode_settings(dtype, storage, kwargs)
    return update_latents(wanted, split, backend.image_column, loader, backend.vae_dir, meta, job, **kwargs)


def encode_settings(dtype=torch.float32, storage=torch.float32, kwargs=None, **fields) -> EncodeSettings:
    """EncodeSettings with these dtypes, `fields`, and the EncodeSettings fields popped from `kwargs`."""
    kwargs = {} if kwargs is None else kwargs
    fields.update({name: kwargs.pop(name) for name in list(kwargs) if name in EncodeSettings.__dataclass_fields__})
    return EncodeSettings(model_dtype=str(dtype), latent_dtype=str(storage), **fields)


@pytest.fixture
def dataset(tmp_path):
    return write_hub_dataset(tmp_path / "data" / "photos", photo_rows(16))


def test_every_sample_is_encoded_and_a_rerun_encodes_nothing(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    first = run(backend, split, buckets, tiny_sdxl, batch_size=4)
    assert first.encoded == buckets.num_rows and first.reused == 0 and first.size_bytes > 0
    second = run(backend, split, buckets, tiny_sdxl, batch_size=4)
    assert second.encoded == 0 and second.reused == buckets.num_rows


def test_latent_equals_vae_of_the_recorded_resize_and_crop(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    cache = open_latents(backend.vae_dir)
    vae = Encoders(str(tiny_sdxl)).vae()
    rows = photo_rows(16)
    for record in buckets.to_pylist()[:6]:
        img = ImageOps.exif_transpose(Image.open(io.BytesIO(rows[record["row"]]["image"]["bytes"]))).convert("RGB")
        img = img.resize((record["resize_width"], record["resize_height"]), Image.Resampling.LANCZOS)
        left, top = record["crop_left"], record["crop_top"]
        img = img.crop((left, top, left + record["target_width"], top + record["target_height"]))
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            expected = vae.encode(x).latent_dist
        assert torch.allclose(cache[record["filename"]], expected.mean[0], atol=1e-4)
        assert torch.allclose(cache.std(record["filename"]), expected.std[0], atol=1e-4)


def test_latent_shape_follows_target_size_and_downscale(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    cache = open_latents(backend.vae_dir)
    f = cache.meta["downscale"]
    for record in buckets.to_pylist():
        assert tuple(cache[record["filename"]].shape) == (4, record["target_height"] // f, record["target_width"] // f)
        entry = cache.entry(record["filename"])
        assert (entry["crop_left"], entry["crop_top"]) == (record["crop_left"], record["crop_top"])


def test_changed_image_bytes_reencode_only_that_sample(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    rows = photo_rows(16)
    rows[2]["image"]["bytes"] = rows[2]["image"]["bytes"][:-200] + bytes(200)  # same header, other pixels
    write_hub_dataset(dataset, rows)
    backend, split, buckets = prepare(tmp_path)
    report = run(backend, split, buckets, tiny_sdxl)
    assert report.encoded == 1 and report.reused == buckets.num_rows - 1


def test_changed_crop_settings_reencode_only_affected_samples(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    backend, split, moved = prepare(tmp_path, crop_style="center")
    geometry = ["crop_left", "crop_top"]
    changed = sum(1 for a, b in zip(buckets.select(geometry).to_pylist(), moved.select(geometry).to_pylist()) if a != b)
    report = run(backend, split, moved, tiny_sdxl)
    assert 0 < changed < buckets.num_rows
    assert report.encoded == changed and report.reused == buckets.num_rows - changed


def test_changed_target_size_reencodes_everything(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    backend, split, bigger = prepare(tmp_path, resolution=128)
    assert run(backend, split, bigger, tiny_sdxl).encoded == bigger.num_rows


def test_changed_vae_or_dtype_reencodes_everything(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    assert run(backend, split, buckets, tiny_sdxl, storage=torch.bfloat16).encoded == buckets.num_rows
    other = build_tiny_pipeline(tmp_path / "other-vae", "sdxl", seed=7)
    report = run(backend, split, buckets, other, storage=torch.bfloat16)
    assert report.encoded == buckets.num_rows
    assert open_latents(backend.vae_dir)[buckets.column("filename")[0].as_py()].dtype == torch.bfloat16


def test_samples_no_longer_wanted_are_pruned(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl, batch_size=2, shard_bytes=1)  # one shard per batch
    shards_before = len(list((backend.vae_dir / "shards").glob("*.safetensors")))
    fewer = buckets.slice(0, 4)
    report = run(backend, split, fewer, tiny_sdxl, batch_size=2, shard_bytes=1)
    assert report.encoded == 0
    assert len(open_latents(backend.vae_dir)) == 4
    assert len(list((backend.vae_dir / "shards").glob("*.safetensors"))) < shards_before


def test_corrupt_image_at_encode_time_is_dropped_and_the_rest_encoded(tmp_path, tiny_sdxl):
    from hf_assets_tests.imagegen import truncated_jpeg

    rows = photo_rows(8, corrupt=())
    rows[3]["image"]["bytes"] = truncated_jpeg(640, 480)  # header says 640x480, pixels are missing
    rows[3]["width"], rows[3]["height"] = 640, 480
    write_hub_dataset(tmp_path / "data" / "photos", rows)
    backend, split, buckets = prepare(tmp_path, width_column="width", height_column="height")
    report = run(backend, split, buckets, tiny_sdxl)
    assert list(report.dropped) == ["3.jpg"] and report.dropped["3.jpg"].startswith("corrupt_image")
    cache = open_latents(backend.vae_dir)
    assert "3.jpg" not in cache and len(cache) == buckets.num_rows - 1


def test_batches_never_mix_sizes(tmp_path, dataset, tiny_sdxl, monkeypatch):
    from hf_assets.encode.vae_runner import VaeRunner

    seen = []
    original = VaeRunner._moments

    def spy(runner, pixels):
        seen.append(tuple(pixels.shape))
        return original(runner, pixels)

    monkeypatch.setattr(VaeRunner, "_moments", spy)
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl, batch_size=3)
    sizes = set(zip(buckets.column("target_height").to_pylist(), buckets.column("target_width").to_pylist()))
    assert {s[2:] for s in seen} == sizes and all(s[0] <= 3 for s in seen)
    assert sum(s[0] for s in seen) == buckets.num_rows


def test_content_hashes_are_memoised_while_the_split_is_unchanged(tmp_path, dataset, tiny_sdxl, monkeypatch):
    from hf_assets.encode import image_source

    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    calls = []
    monkeypatch.setattr(image_source, "content_hash", lambda data: calls.append(1) or "x")
    run(backend, split, buckets, tiny_sdxl)
    assert calls == []


def test_reader_is_lazy_and_samples_fresh_noise(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets = prepare(tmp_path)
    run(backend, split, buckets, tiny_sdxl)
    cache = open_latents(backend.vae_dir)
    name = next(iter(cache))
    a = cache.sample(name, torch.Generator().manual_seed(0), scaled=False)
    b = cache.sample(name, torch.Generator().manual_seed(1), scaled=False)
    assert not torch.equal(a, b)
    scaled = cache.sample(name, torch.Generator().manual_seed(0))
    assert torch.allclose(scaled, (a - cache.shift_factor) * cache.scaling_factor)
    assert cache.scaling_factor == pytest.approx(0.13025)
    assert pc.all(pc.equal(pa.array(sorted(cache)), pa.array(sorted(buckets.column("filename").to_pylist())))).as_py()


def test_gpu_decode_keys_its_own_latents_and_falls_back_to_pillow(tmp_path, tiny_sdxl, monkeypatch):
    from hf_assets.encode import gpu_decode
    from hf_assets_tests.encode.test_gpu_decode import Rejecting

    rows = photo_rows(16)  # JPEG, PNG and WebP, rotated JPEGs, one row no codec reads (filtered out by the scan)
    rows[3]["image"]["bytes"] = rows[3]["image"]["bytes"][:5000]  # a JPEG cut short: its header passes the scan
    rejected = rows[8]["image"]["bytes"]  # a JPEG the device decoder rejects: Pillow decodes it
    monkeypatch.setattr(gpu_decode, "torchvision_decode", lambda: Rejecting({rejected}))
    write_hub_dataset(tmp_path / "data" / "photos", rows)
    backend, split, buckets = prepare(tmp_path)
    pillow = run(backend, split, buckets, tiny_sdxl, batch_size=4)
    pillow_latents = {name: t.clone() for name, t in open_latents(backend.vae_dir).items()}
    device = run(backend, split, buckets, tiny_sdxl, batch_size=4, decode="nvjpeg")
    assert device.encoded == pillow.encoded and device.reused == 0  # another decode path: other keys
    assert set(device.dropped) == set(pillow.dropped) == {"3.jpg"}
    assert device.dropped["3.jpg"].startswith("corrupt_image")
    assert run(backend, split, buckets, tiny_sdxl, decode="nvjpeg").encoded == 0
    latents = open_latents(backend.vae_dir)
    assert set(latents) == set(pillow_latents)
    name = dict(zip(buckets.column("row").to_pylist(), buckets.column("filename").to_pylist()))
    for row in (8, 1, 2):  # the rejected JPEG, a PNG, a WebP: Pillow's own pixels, the same latents
        torch.testing.assert_close(latents[name[row]], pillow_latents[name[row]], atol=1e-5, rtol=0)
    differences = [float((latents[name[r]] - pillow_latents[name[r]]).abs().mean()) for r in (0, 11, 13)]
    assert all(0 < d < 0.05 for d in differences), differences  # device JPEGs: bicubic, not LANCZOS: close
