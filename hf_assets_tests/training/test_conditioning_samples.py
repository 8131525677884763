"""The trainer's door with conditioning datasets: pairs come together, partners of another size batch apart."""

import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader

from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.hashing import content_hash, settings_hash
from hf_assets.cache.latents import open_latents
from hf_assets.training import BucketBatchSampler, CachedSamples
from hf_assets.training.conditioning_samples import ConditioningSamples

META = {"scaling_factor": 0.13025, "downscale": 8, "latent_channels": 4}


def conditioning_cache(directory, names, sizes, extra=None, meta=None):
    """A committed latent cache of `names` with (target width, height) `sizes`, plus `extra(name, w, h)` tensors."""
    cache = EncodedCache(directory, prefix="latents")
    wanted = pa.table(
        {
            "filename": names,
            "content_hash": [content_hash(n.encode()) for n in names],
            "settings_hash": [settings_hash({"size": list(s)}) for s in sizes],
            "target_width": pa.array([w for w, _ in sizes], pa.int32()),
            "target_height": pa.array([h for _, h in sizes], pa.int32()),
        }
    )
    keyed = cache.with_keys(wanted)
    with cache.writer() as writer:
        for row, (w, h) in zip(keyed.to_pylist(), sizes):
            g = torch.Generator().manual_seed(len(row["filename"]) + w)
            tensors = {"mean": torch.randn(4, h // 8, w // 8, generator=g), "std": torch.full((4, h // 8, w // 8), 0.1)}
            tensors.update(extra(row["filename"], w, h) if extra else {})
            writer.add(row["key"], tensors)
    cache.commit(keyed, {**META, **(meta or {})})
    return open_latents(directory)


def pairs_table(names, sources, sizes):
    return pa.table(
        {
            "filename": names,
            "source_filename": sources,
            "target_width": pa.array([w for w, _ in sizes], pa.int32()),
            "target_height": pa.array([h for _, h in sizes], pa.int32()),
        }
    )


def control_pixels(name, w, h):
    return {"pixels": torch.full((3, h, w), 255, dtype=torch.uint8)}


@pytest.fixture
def source(prepared):
    """The prepared photos backend: its bucket table and caches."""
    samples, buckets = prepared
    return buckets, samples.latents, samples.text_embeds


def strict_partner(tmp_path, buckets, keep=None, **kwargs):
    rows = [r for r in buckets.to_pylist() if keep is None or r["filename"] in keep]
    names = [f"control/{r['filename']}" for r in rows]
    sizes = [(r["target_width"], r["target_height"]) for r in rows]
    latents = conditioning_cache(
        tmp_path / "control", names, sizes, control_pixels, {"conditioning_type": "controlnet"}
    )
    return ConditioningSamples("photos-control", pairs_table(names, [r["filename"] for r in rows], sizes), latents)


def test_a_sample_comes_with_its_partners_latents_and_control_pixels(tmp_path, source):
    buckets, latents, embeds = source
    partner = strict_partner(tmp_path, buckets)
    assert partner.conditioning_type == "controlnet" and partner.strict  # read from the cache's manifest
    dataset = CachedSamples(buckets, latents, embeds, conditioning=[partner])
    item = dataset[0]
    control = item["conditioning"]["photos-control"]
    assert control["filename"] == f"control/{item['filename']}"
    assert control["latents"].shape == item["latents"].shape
    assert control["pixel_values"].shape == (3, *(8 * s for s in item["latents"].shape[-2:]))
    assert torch.all(control["pixel_values"] == 1.0)
    again = dataset[0]["conditioning"]["photos-control"]["latents"]
    assert torch.equal(control["latents"], again)  # a draw per (seed, epoch, sample), as the latents
    dataset.set_epoch(1)
    assert not torch.equal(control["latents"], dataset[0]["conditioning"]["photos-control"]["latents"])


def test_samples_without_a_partner_are_left_out(tmp_path, source):
    buckets, latents, embeds = source
    alone = CachedSamples(buckets, latents, embeds)
    keep = set(alone.filenames[::2])
    paired = CachedSamples(buckets, latents, embeds, conditioning=[strict_partner(tmp_path, buckets, keep)])
    assert set(paired.filenames) == keep and paired.missing == alone.missing + len(alone) - len(keep)


def test_loose_partners_of_other_sizes_are_batched_by_both_sizes(tmp_path, source):
    buckets, latents, embeds = source
    rows = buckets.to_pylist()
    names = [f"ref/{r['filename']}" for r in rows]
    sizes = [(64, 64) if i % 2 else (96, 64) for i in range(len(rows))]
    refs = ConditioningSamples(
        "photos-refs",
        pairs_table(names, [r["filename"] for r in rows], sizes),
        conditioning_cache(tmp_path / "refs", names, sizes, meta={"conditioning_type": "reference_loose"}),
    )
    dataset = CachedSamples(buckets, latents, embeds, conditioning=[refs])
    assert not refs.strict and dataset.target_sizes.shape[1] == 4
    sampler = BucketBatchSampler.from_samples(dataset, 3, seed=0)
    assert all(group.partners in (((64, 64),), ((96, 64),)) for group in sampler.summary.groups)
    loader = DataLoader(dataset, batch_sampler=sampler)
    for batch in loader:  # every batch stacks: one source size and one reference size
        refs_batch = batch["conditioning"]["photos-refs"]["latents"]
        assert refs_batch.shape[0] == batch["latents"].shape[0]
    assert "+ 64x64" in str(sampler.summary) or "+ 96x64" in str(sampler.summary)


def test_a_table_without_source_names_is_not_a_conditioning_dataset(tmp_path, source):
    buckets, latents, _ = source
    with pytest.raises(ValueError, match="not a conditioning dataset"):
        ConditioningSamples("photos", buckets, latents)
