"""Plan, shard, commit: stable shards by cache key, shards in any order give the same cache, clear refusals."""

import hashlib
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import torch

from hf_assets.cache.encoded import CacheBusyError, EncodedCache
from hf_assets.cache.latents import open_latents
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine_types import CacheNotShared, LatentSettings, require_visible
from hf_assets.encode.image_media import IMAGES, wanted_latents
from hf_assets.encode.latents_commit import commit_latents
from hf_assets.encode.latents_plan import plan_latents, shard_of
from hf_assets.encode.latents_shard import encode_shard
from hf_assets.encode.vae import vae_factors_from_config
from hf_assets_tests.conftest import photo_rows, write_hub_dataset
from hf_assets_tests.encode.test_image_media import encode_settings, prepare, run


def hex_keys(n: int, salt: str = "") -> pa.Array:
    return pa.array([hashlib.blake2b(f"{salt}{i}".encode(), digest_size=16).hexdigest() for i in range(n)])


def test_a_keys_shard_depends_on_the_key_alone():
    keys = hex_keys(1000)
    shards = shard_of(keys, 7)
    assert shards.tolist() == [int(k[:8], 16) % 7 for k in keys.to_pylist()]
    order = np.random.default_rng(0).permutation(1000)
    assert shard_of(keys.take(pa.array(order)), 7).tolist() == shards[order].tolist()
    more = pa.concat_arrays([hex_keys(300, "new"), keys])  # added rows leave the old rows' shards alone
    assert shard_of(more, 7)[300:].tolist() == shards.tolist()
    assert np.bincount(shards, minlength=7).min() > 100  # spread over every shard


def test_shard_of_rejects_keys_that_are_not_hex_and_bad_counts():
    with pytest.raises(ValueError, match="hex"):
        shard_of(pa.array(["zzzzzzzz00"]), 4)
    with pytest.raises(ValueError, match="between 1"):
        shard_of(hex_keys(3), 0)
    assert shard_of(pa.array([], pa.string()), 4).tolist() == []


@pytest.fixture
def dataset(tmp_path):
    return write_hub_dataset(tmp_path / "data" / "photos", photo_rows(16))


def planned(tmp_path, model, shards, directory=None):
    backend, split, buckets = prepare(tmp_path)
    encoders = Encoders(str(model))
    settings = LatentSettings(encoders.vae_identity(), "torch.float32", "torch.float32")
    wanted = wanted_latents(buckets, split, backend.image_column, settings, backend.metadata_dir)
    meta = {**vae_factors_from_config(encoders.vae_config()), "vae": settings.vae_identity}
    settings = encode_settings(batch_size=1)
    plan = plan_latents(
        wanted, directory or backend.vae_dir, shards, media=IMAGES, column="image", settings=settings, meta=meta
    )
    return backend, split, buckets, encoders, plan, meta


def test_shards_encoded_in_any_order_give_the_cache_one_process_gives(tmp_path, dataset, tiny_sdxl):
    backend, split, buckets, encoders, plan, meta = planned(tmp_path, tiny_sdxl, 4, tmp_path / "sharded")
    assert len(plan.busy_shards) > 1 and plan.to_encode == buckets.num_rows
    # batch 1: a batch's composition changes float rounding (conv kernels), sharding must change nothing else
    reports = [encode_shard(plan, k, split, encoders.vae, IMAGES) for k in reversed(plan.busy_shards)]
    report = commit_latents(plan, IMAGES, reports=reports)
    assert report.encoded == plan.to_encode and not report.dropped
    assert not plan.directory.exists()  # the commit removes its plan
    run(backend, split, buckets, tiny_sdxl, batch_size=1)  # one process, one shard
    sharded, single = open_latents(tmp_path / "sharded"), open_latents(backend.vae_dir)
    assert sorted(sharded) == sorted(single) and len(single) == buckets.num_rows
    for name in single:
        assert torch.equal(sharded[name], single[name]) and torch.equal(sharded.std(name), single.std(name))
        assert sharded.entry(name)["key"] == single.entry(name)["key"]


def test_a_retried_shard_encodes_only_what_its_failed_attempt_did_not_write(tmp_path, dataset, tiny_sdxl):
    backend, split, _, encoders, plan, meta = planned(tmp_path, tiny_sdxl, 2)
    shard = plan.busy_shards[0]
    calls = []

    def failing_vae():
        vae = encoders.vae()

        class Flaky(torch.nn.Module):  # the VAE, failing on its third batch like a lost device
            def __init__(self):
                super().__init__()
                self.inner = vae

            def encode(self, x):
                calls.append(len(x))
                if len(calls) == 3:
                    raise RuntimeError("CUDA error: an illegal memory access was encountered")
                return self.inner.encode(x)

        return Flaky()

    with pytest.raises(RuntimeError, match="illegal memory"):
        small_shards = replace(plan, settings=encode_settings(batch_size=2, shard_bytes=1))
        encode_shard(small_shards, shard, split, failing_vae, IMAGES)
    retry = encode_shard(replace(plan, settings=encode_settings(batch_size=2)), shard, split, encoders.vae, IMAGES)
    assert retry.resumed > 0 and retry.resumed + retry.encoded == plan.shard_sizes[shard]
    for k in plan.busy_shards[1:]:
        encode_shard(plan, k, split, encoders.vae, IMAGES)
    assert commit_latents(plan, IMAGES).encoded == plan.to_encode  # the reports the shards left in the plan


def test_lane_writers_write_side_by_side_and_the_commit_waits_for_them(tmp_path):
    cache = EncodedCache(tmp_path / "cache", prefix="latents", lock_wait=0)  # the commit would wait: say so now
    with cache.writer(lane="shard-0") as a, cache.writer(lane="shard-1") as b:
        a.add("0" * 32, {"mean": torch.zeros(2)})
        b.add("1" * 32, {"mean": torch.ones(2)})
        with pytest.raises(CacheBusyError):
            cache.writer(lane="shard-1").__enter__()  # one writer per lane
        with pytest.raises(CacheBusyError):
            cache.commit(pa.table({"content_hash": ["a"], "settings_hash": ["b"]}), allow_missing=True)
    assert len(cache.known_entries()) == 2


def test_a_step_that_cannot_see_the_plan_is_refused_naming_the_shared_filesystem(tmp_path, dataset, tiny_sdxl):
    *_, plan, _ = planned(tmp_path, tiny_sdxl, 2)
    require_visible(plan)
    elsewhere = type(plan)(tmp_path / "not-mounted" / "plans" / "x", plan.shards, plan.shard_sizes, 0, "node-a")
    with pytest.raises(CacheNotShared, match="written by the plan step on node-a.*shared|NFS"):
        elsewhere.shard_rows(plan.busy_shards[0])
