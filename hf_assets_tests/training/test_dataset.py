"""CachedSamples over the caches the real graph writes: a tiny SDXL pipeline, generated photos, one encode-time drop."""

import pickle
from collections import Counter

import pyarrow.compute as pc
import pytest
import torch
from torch.utils.data import DataLoader

from hf_assets.training import BucketBatchSampler, CachedSamples, MultiBackendSampler, MultiBackendSamples
from hf_assets_tests.training.conftest import TRUNCATED


@pytest.fixture
def samples(prepared):
    """A fresh dataset (its epoch is state) over the values loaded once."""
    return with_seed(prepared, 7)


def with_seed(prepared, seed, **kwargs):
    loaded, buckets = prepared
    return CachedSamples(buckets, loaded.latents, loaded.text_embeds, seed=seed, **kwargs)


def bucket_rows(buckets):
    return {row["filename"]: row for row in buckets.to_pylist()}


def items(dataset, epoch=0):
    dataset.set_epoch(epoch)
    return [dataset[i] for i in range(len(dataset))]


def test_from_definitions_loads_the_samples_in_both_caches(prepared):
    samples, buckets = prepared
    assert TRUNCATED in buckets.column("filename").to_pylist()
    assert TRUNCATED not in samples.filenames and samples.missing == 1
    assert sorted(samples.filenames) == sorted(set(samples.latents) & set(samples.text_embeds))
    assert len(samples) == buckets.num_rows - 1 == 22


def test_latents_have_their_bucket_shape_and_come_from_the_stored_distribution(samples, prepared):
    rows = bucket_rows(prepared[1])
    cache = samples.latents
    for item in items(samples):
        row = rows[item["filename"]]
        assert item["bucket"] == row["bucket"]
        assert item["latents"].shape == (4, row["target_height"] // 8, row["target_width"] // 8)
        unscaled = item["latents"] / cache.scaling_factor + cache.shift_factor
        deviation = (unscaled - cache[item["filename"]]) / cache.std(item["filename"])
        assert deviation.abs().max() < 6 and deviation.std() > 0.5  # a draw, scaled for the denoiser


def test_noise_is_fresh_each_epoch_and_reproducible_per_seed(samples, prepared):
    first, second = items(samples, epoch=0), items(samples, epoch=1)
    again, other_seed = items(with_seed(prepared, 7)), items(with_seed(prepared, 8))
    for a, b, c, d in zip(first, second, again, other_seed):
        assert not torch.equal(a["latents"], b["latents"])
        assert torch.equal(a["latents"], c["latents"]) and a["variant"] == c["variant"]
        assert not torch.equal(a["latents"], d["latents"])
    assert torch.equal(samples[(0, 4)]["latents"], first[4]["latents"])  # an explicit epoch overrides set_epoch


def test_one_caption_variant_with_its_cached_embeds(samples, prepared):
    rows = bucket_rows(prepared[1])
    seen = {}
    for epoch in range(6):
        for item in items(samples, epoch):
            name = item["filename"]
            assert item["caption"] in rows[name]["captions"]
            assert item["caption"] == samples.text_embeds.captions(name)[item["variant"]]
            stored = samples.text_embeds[name][item["variant"]]
            assert set(stored) == {"prompt_embeds", "pooled_prompt_embeds"}
            assert all(torch.equal(item[key], tensor) for key, tensor in stored.items())
            seen.setdefault(name, set()).add(item["variant"])
    several = [name for name in seen if len(rows[name]["captions"]) > 1]
    assert several and all(len(seen[name]) > 1 for name in several)  # every variant gets its turn


def test_time_ids_are_original_size_crop_and_target_from_the_bucket_table(samples, prepared):
    buckets = prepared[1]
    rows = bucket_rows(buckets)
    resized = with_seed(prepared, 7, original_size="resized")
    for item, other in zip(items(samples), items(resized)):
        r = rows[item["filename"]]
        crop_and_target = [r["crop_top"], r["crop_left"], r["target_height"], r["target_width"]]
        assert item["time_ids"].tolist() == [r["height"], r["width"], *crop_and_target]
        assert other["time_ids"].tolist() == [r["resize_height"], r["resize_width"], *crop_and_target]
    with pytest.raises(ValueError, match="original_size"):
        CachedSamples(buckets, samples.latents, samples.text_embeds, original_size="source")


def test_a_bucket_table_newer_than_the_latents_is_refused(prepared):
    loaded, buckets = prepared
    doubled = pc.multiply(buckets.column("target_width"), 2)
    stale = buckets.set_column(buckets.column_names.index("target_width"), "target_width", doubled)
    with pytest.raises(ValueError, match="materialize it again"):
        CachedSamples(stale, loaded.latents, loaded.text_embeds)[0]


def loader_epochs(samples, epochs=2, short_buckets="keep", **loader_kwargs):
    sampler = BucketBatchSampler.from_samples(samples, batch_size=4, seed=samples.seed, short_buckets=short_buckets)
    loader = DataLoader(samples, batch_sampler=sampler, **loader_kwargs)
    result = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        samples.set_epoch(epoch)
        result.append(list(loader))
    return result


def test_same_size_batches_collate_and_cover_every_sample_once_per_epoch(samples):
    for batches in loader_epochs(samples):
        names = [name for batch in batches for name in batch["filename"]]
        assert sorted(names) == sorted(samples.filenames)
        for batch in batches:
            size = len(batch["filename"])
            assert len(set(batch["bucket"])) == 1 and 1 <= size <= 4
            assert len({tuple(t) for t in batch["time_ids"][:, 4:].tolist()}) == 1  # one target size
            assert batch["latents"].shape[:2] == (size, 4)
            assert batch["prompt_embeds"].shape == (size, 77, 80) and batch["pooled_prompt_embeds"].shape == (size, 40)
            assert batch["time_ids"].shape == (size, 6) and len(batch["caption"]) == size


def test_target_sizes_are_the_bucket_tables_width_and_height(samples, prepared):
    rows = bucket_rows(prepared[1])
    expected = [[rows[n]["target_width"], rows[n]["target_height"]] for n in samples.filenames]
    assert samples.target_sizes.tolist() == expected


def test_short_bucket_policies_through_a_loader(samples):
    sizes = Counter(map(tuple, samples.target_sizes.tolist()))
    (dropped,) = loader_epochs(samples, epochs=1, short_buckets="drop")
    assert all(len(batch["filename"]) == 4 for batch in dropped)
    assert len(dropped) == sum(n // 4 for n in sizes.values()) < len(samples)
    (repeated,) = loader_epochs(samples, epochs=1, short_buckets="repeat")
    assert all(len(batch["filename"]) == 4 for batch in repeated)
    assert {name for batch in repeated for name in batch["filename"]} == set(samples.filenames)


def test_caches_pickle_and_two_workers_give_the_same_batches(samples):
    clone = pickle.loads(pickle.dumps(samples))
    assert torch.equal(clone[(3, 5)]["latents"], samples[(3, 5)]["latents"])
    single = loader_epochs(samples, epochs=2)
    workers = loader_epochs(samples, epochs=2, num_workers=2)
    for epoch_single, epoch_workers in zip(single, workers):
        for a, b in zip(epoch_single, epoch_workers):
            assert a["filename"] == b["filename"] and torch.equal(a["latents"], b["latents"])


def test_two_backends_interleave_through_one_loader(samples):
    both = MultiBackendSamples([samples, samples], names=["photos", "photos-again"])
    samplers = [BucketBatchSampler.from_samples(samples, 4, seed=k, short_buckets="keep") for k in range(2)]
    multi = MultiBackendSampler(samplers, probabilities=[0.6, 0.4], repeats=[0, 1], seed=1)
    batches = list(DataLoader(both, batch_sampler=multi))
    assert len(batches) == len(multi) == 3 * len(samplers[0])
    assert all(len(set(batch["backend"])) == 1 and len(set(batch["bucket"])) == 1 for batch in batches)
    repeated = [name for batch in batches if batch["backend"][0] == "photos-again" for name in batch["filename"]]
    assert sorted(repeated) == sorted(samples.filenames * 2)
