"""The engine's one API for images and clips: plan, shards in any process and order, commit from the plan alone;
a VAE that cannot encode the backend's kind of sample is refused with the fix."""

import pytest
import torch

from hf_assets.cache.latents import open_latents
from hf_assets.config import parse_config
from hf_assets.data.buckets import assign_buckets
from hf_assets.data.frame_selection import assign_frames
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.encode import engine
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine_types import EncodeSettings, LatentPlan
from hf_assets.encode.latents_plan import PLANS_DIR
from hf_assets_tests.encode.test_clip_media import ENTRY as CLIP_ENTRY
from hf_assets_tests.encode.test_clip_media import dataset as clip_dataset  # noqa: F401 - fixture
from hf_assets_tests.encode.test_image_media import prepare

SETTINGS = EncodeSettings(batch_size=4, decode_workers=2)


def clip_backend(root, cache_dir: str):
    backend = parse_config([{**CLIP_ENTRY, "cache_dir": cache_dir}], root / f"{cache_dir}.json").backends[0]
    split = open_split(backend)
    index, _ = build_filtered_index(split, backend)
    return backend, split, assign_frames(assign_buckets(index, backend.buckets, backend.id), backend.video)


def test_a_clip_backend_sharded_in_any_order_gives_the_cache_one_shard_gives(clip_dataset, tiny_wan):  # noqa: F811
    encoders = Encoders(str(tiny_wan))
    backend, split, buckets = clip_backend(clip_dataset, "one")
    one = engine.update(backend, buckets, split, encoders, SETTINGS, shards=1)

    backend, split, buckets = clip_backend(clip_dataset, "three")
    plan = engine.plan(backend, buckets, split, encoders, SETTINGS, shards=3)
    assert plan.media == "video" and len(plan.busy_shards) > 1
    again = LatentPlan.from_dict(plan.to_dict())  # as a shard step on another machine receives it
    for shard in reversed(again.busy_shards):
        engine.encode_shard(again, shard, split, encoders.vae)
    three = engine.commit(again)  # the reports the shards left in the plan
    assert not (backend.vae_dir / PLANS_DIR / again.directory.name).exists()

    assert (three.encoded, three.dropped.keys()) == (one.encoded, one.dropped.keys()) and three.encoded == 4
    assert list(three.dropped) == ["4.mp4"] and three.dropped["4.mp4"].startswith("corrupt_video")
    a, b = open_latents(clip_dataset / "one" / "vae" / "clips"), open_latents(backend.vae_dir)
    assert sorted(a) == sorted(b) and a.meta["dataset_type"] == "video" and a.meta["temporal_downscale"] == 4
    for name in a:
        assert a.entry(name)["key"] == b.entry(name)["key"] and torch.allclose(a[name], b[name], atol=1e-5)


def test_an_image_backend_with_a_video_vae_is_refused_before_anything_is_read(tmp_path, tiny_wan):
    from hf_assets_tests.conftest import photo_rows, write_hub_dataset

    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(4))
    backend, split, buckets = prepare(tmp_path)
    with pytest.raises(ValueError, match=r"has a video VAE \(AutoencoderKLWan\).*image pipeline"):
        engine.plan(backend, buckets, split, Encoders(str(tiny_wan)), SETTINGS, shards=2)
    assert not backend.vae_dir.exists()


def test_a_clip_backend_with_an_image_vae_is_refused_naming_the_video_pipelines(clip_dataset, tiny_sdxl):  # noqa: F811
    backend, split, buckets = clip_backend(clip_dataset, "images")
    with pytest.raises(ValueError, match="holds clips.*not a video VAE.*Wan, LTX-Video"):
        engine.plan(backend, buckets, split, Encoders(str(tiny_sdxl)), SETTINGS, shards=2)


def test_an_unknown_dataset_type_names_the_ones_the_engine_encodes():
    with pytest.raises(ValueError, match="image, conditioning, eval, video"):
        engine.media_for("audio")
