"""Same-size batches reshuffled per epoch, sharded evenly across ranks, and interleaved across backends."""

import logging
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from hf_assets.training.sampler import BucketBatchSampler, MultiBackendSampler

# (bucket key, target size, count): uneven groups, groups smaller than a batch, and one key ("0.2") that stands for
# two target sizes, as `crop: false` can give (issue 6): a sampler grouping by key would mix 2560 and 2624 rows.
GROUPS = [
    ("1.0", (1024, 1024), 7),
    ("1.46", (1216, 832), 5),
    ("0.68", (832, 1216), 2),
    ("2.4", (1536, 640), 1),
    ("0.2", (512, 2560), 3),
    ("0.2", (512, 2624), 2),
]


def interleave(groups, seed=0):
    """Bucket keys and sizes of the groups' samples, in a shuffled order (indices do not follow the groups)."""
    rows = [(key, size) for key, size, count in groups for _ in range(count)]
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i][0] for i in order], [rows[i][1] for i in order]


KEYS, SIZES = interleave(GROUPS)


def flatten(batches):
    return [i for batch in batches for i in batch]


def sampler_for(sizes=SIZES, keys=KEYS, batch_size=3, **kwargs):
    return BucketBatchSampler(sizes, batch_size, buckets=keys, **kwargs)


def test_every_batch_holds_one_target_size_even_where_a_bucket_key_holds_two():
    sampler = sampler_for(short_buckets="keep", seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert all(len({SIZES[i] for i in batch}) == 1 for batch in batches)
        assert sorted(flatten(batches)) == list(range(len(SIZES)))
        assert len(batches) == len(sampler) == 3 + 2 + 1 + 1 + 1 + 1  # ceil(7/3), ceil(5/3), then one each
        two_sizes = [batch for batch in batches if KEYS[batch[0]] == "0.2"]
        assert sorted(SIZES[b[0]] for b in two_sizes) == [(512, 2560), (512, 2624)]


def test_bucket_keys_are_refused_as_sizes():
    with pytest.raises(ValueError, match="could mix two sizes"):
        BucketBatchSampler(KEYS, batch_size=2)
    with pytest.raises(ValueError, match="6 sizes but 2 bucket keys"):
        BucketBatchSampler(SIZES[:6], batch_size=2, buckets=KEYS[:2])


class SizedLatents(Dataset):
    """Latent-shaped tensors of each sample's target size / 8, as CachedSamples gives."""

    def __init__(self, sizes, keys):
        self.sizes, self.keys = sizes, keys

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, index):
        width, height = self.sizes[index]
        return {"latents": torch.full((1, height // 8, width // 8), float(index)), "bucket": self.keys[index]}


@pytest.mark.parametrize("policy", ["repeat", "drop", "keep"])
@pytest.mark.parametrize("world_size", [1, 2])
def test_a_dataloader_on_the_sampler_stacks_every_batch(policy, world_size):
    dataset = SizedLatents(SIZES, KEYS)
    seen = []
    for rank in range(world_size):
        sampler = sampler_for(batch_size=2, short_buckets=policy, rank=rank, world_size=world_size)
        for batch in DataLoader(dataset, batch_sampler=sampler):  # default collate stacks the latents
            width, height = SIZES[int(batch["latents"][0, 0, 0, 0])]
            assert batch["latents"].shape[1:] == (1, height // 8, width // 8)
            seen += batch["latents"][:, 0, 0, 0].long().tolist()
    assert set(seen) <= set(range(len(SIZES))) and len(seen) > 0


def test_repeat_fills_short_batches_with_samples_of_the_same_size():
    sampler = sampler_for(batch_size=3, short_buckets="repeat")
    batches = list(sampler)
    assert all(len(batch) == 3 for batch in batches) and len(batches) == len(sampler) == 9
    assert all(len({SIZES[i] for i in batch}) == 1 for batch in batches)
    assert set(flatten(batches)) == set(range(len(SIZES)))  # every sample at least once
    panorama = next(batch for batch in batches if SIZES[batch[0]] == (1536, 640))
    assert len(set(panorama)) == 1  # a group of one is repeated to fill its batch


def test_drop_leaves_out_the_short_remainder_of_each_size():
    sampler = sampler_for(batch_size=3, short_buckets="drop")
    batches = list(sampler)
    assert [len(b) for b in batches] == [3, 3, 3, 3] and len(sampler) == 4
    assert Counter(SIZES[i] for i in flatten(batches)) == {(1024, 1024): 6, (1216, 832): 3, (512, 2560): 3}


def test_the_policy_and_short_buckets_are_reported_when_the_sampler_is_built(caplog):
    with caplog.at_level(logging.INFO, logger="hf_assets.training.sampler"):
        sampler = sampler_for(batch_size=3, short_buckets="drop")
    summary = sampler.summary
    assert summary.policy == "drop" and summary.batches_per_rank == 4
    shorts = {(g.width, g.height): g.short for g in summary.short_groups}
    assert shorts == {(1024, 1024): 1, (1216, 832): 2, (832, 1216): 2, (1536, 640): 1, (512, 2624): 2}
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "short buckets: drop" in record.message and "512x2624 (bucket 0.2): 2 samples" in record.message
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hf_assets.training.sampler"):
        sampler_for(sizes=[(64, 64)] * 4, keys=["1.0"] * 4, batch_size=2)
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_shuffle_is_deterministic_per_seed_and_epoch_and_differs_between_epochs():
    def order(seed, epoch):
        sampler = sampler_for(batch_size=2, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)


def test_without_shuffle_batches_follow_size_and_sample_order():
    sizes = [(64, 64), (96, 64), (64, 64), (64, 96), (64, 64), (96, 64)]
    sampler = BucketBatchSampler(sizes, batch_size=2, shuffle=False, short_buckets="keep")
    sampler.set_epoch(5)
    assert list(sampler) == [[0, 2], [4], [3], [1, 5]]  # sizes sorted by (width, height)


def test_bad_settings_and_empty_input():
    with pytest.raises(ValueError, match="batch_size"):
        sampler_for(batch_size=0)
    with pytest.raises(ValueError, match="short_buckets must be one of"):
        sampler_for(short_buckets="merge")
    with pytest.raises(ValueError, match="rank < world_size"):
        sampler_for(rank=2, world_size=2)
    empty = BucketBatchSampler([], batch_size=2)
    assert list(empty) == [] and len(empty) == 0


def test_rank_and_world_size_default_to_one_process_without_a_process_group():
    assert not torch.distributed.is_initialized()
    sampler = sampler_for()
    assert (sampler.rank, sampler.world_size) == (0, 1)


# Uneven groups from 61 samples down to 1, with the two-size key, for the distributed tests.
UNEVEN = [
    ("1.0", (1024, 1024), 61),
    ("1.46", (1216, 832), 23),
    ("0.68", (832, 1216), 9),
    ("2.4", (1536, 640), 1),
    ("0.2", (512, 2560), 6),
    ("0.2", (512, 2624), 3),
]
UNEVEN_KEYS, UNEVEN_SIZES = interleave(UNEVEN, seed=3)


def rank_batches(world_size, policy, epoch, seed=0, batch_size=4):
    samplers = [
        BucketBatchSampler(
            UNEVEN_SIZES,
            batch_size,
            buckets=UNEVEN_KEYS,
            seed=seed,
            short_buckets=policy,
            rank=rank,
            world_size=world_size,
        )
        for rank in range(world_size)
    ]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return samplers, [list(sampler) for sampler in samplers]


@pytest.mark.parametrize("policy", ["repeat", "drop", "keep"])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_every_rank_gets_the_same_number_of_same_size_batches(world_size, policy):
    for epoch in range(2):
        samplers, per_rank = rank_batches(world_size, policy, epoch)
        counts = {len(batches) for batches in per_rank}
        assert counts == {len(samplers[0])} and len(samplers[0]) > 0  # no rank waits at a collective
        for batches in per_rank:
            assert all(len({UNEVEN_SIZES[i] for i in batch}) == 1 for batch in batches)
            if policy != "keep":
                assert all(len(batch) == 4 for batch in batches)
        owners = Counter(i for r, batches in enumerate(per_rank) for i in set(flatten(batches)))
        evened = samplers[0].summary.evened
        if policy == "drop":  # disjoint across ranks; only the short remainders and the evening-out are left out
            assert set(owners.values()) == {1}
            left_out = len(UNEVEN_SIZES) - len(owners)
            assert left_out == sum(n % 4 for _, _, n in UNEVEN) + 4 * evened
        else:  # every sample trained; shared between ranks only through repeats (fillers, evening-out batches)
            fillers = sum(-n % 4 for _, _, n in UNEVEN) if policy == "repeat" else 0
            assert len(owners) == len(UNEVEN_SIZES)
            assert sum(n - 1 for n in owners.values()) <= fillers + 4 * evened
            assert evened == len(samplers[0]) * world_size - sum(-(-n // 4) for _, _, n in UNEVEN)


def test_ranks_reshuffle_together_by_seed_and_epoch():
    _, first = rank_batches(3, "repeat", epoch=0)
    _, again = rank_batches(3, "repeat", epoch=0)
    _, later = rank_batches(3, "repeat", epoch=1)
    _, other = rank_batches(3, "repeat", epoch=0, seed=1)
    assert first == again
    assert all(a != b for a, b in zip(first, later)) and all(a != b for a, b in zip(first, other))


def test_eight_ranks_with_fewer_batches_than_ranks_still_step_together():
    sizes, keys = [(64, 64)] * 5 + [(96, 64)] * 2, ["1.0"] * 5 + ["1.5"] * 2
    for policy, expected in [("repeat", 1), ("keep", 1), ("drop", 0)]:
        samplers = [
            BucketBatchSampler(sizes, 2, buckets=keys, short_buckets=policy, rank=r, world_size=8) for r in range(8)
        ]
        assert {len(list(s)) for s in samplers} == {len(samplers[0])} == {expected}


def size_sampler(count, seed, **kwargs):
    return BucketBatchSampler([(64, 64)] * count, batch_size=2, buckets=["1.0"] * count, seed=seed, **kwargs)


def sampler_pair(sizes=(40, 40), **kwargs):
    return [size_sampler(n, k, **kwargs) for k, n in enumerate(sizes)]


def test_backends_are_drawn_in_proportion_to_probability_and_zero_excludes():
    multi = MultiBackendSampler(sampler_pair((400, 400, 50)), probabilities=[0.75, 0.25, 0.0], seed=3)
    batches = list(multi)
    first = Counter(batch[0][0] for batch in batches[:120])  # both backends still have batches here
    assert 0.6 < first[0] / 120 < 0.9
    assert {batch[0][0] for batch in batches} == {0, 1}
    assert len(batches) == len(multi) == 400


def test_an_epoch_spends_every_batch_of_every_backend_once_per_repeat():
    multi = MultiBackendSampler(sampler_pair((6, 5), short_buckets="keep"), probabilities=[1, 1], repeats=[0, 2])
    multi.set_epoch(4)
    batches = list(multi)
    assert len(batches) == len(multi) == 3 + 3 * 3
    assert all(len({(b, e) for b, e, _ in batch}) == 1 for batch in batches)  # one backend, one draw per batch
    keys = Counter((b, e, i) for batch in batches for b, e, i in batch)
    assert set(keys.values()) == {1}
    assert {e for b, e, _ in keys if b == 0} == {4}
    assert {e for b, e, _ in keys if b == 1} == {12, 13, 14}  # a fresh draw epoch per repeat
    assert sorted(i for b, e, i in keys if b == 1 and e == 13) == list(range(5))


@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_ranks_draw_the_same_backend_at_every_step_and_the_same_number_of_steps(world_size):
    per_rank = []
    for rank in range(world_size):
        samplers = [
            BucketBatchSampler(UNEVEN_SIZES, 4, buckets=UNEVEN_KEYS, seed=0, rank=rank, world_size=world_size),
            size_sampler(13, seed=1, rank=rank, world_size=world_size),
        ]
        multi = MultiBackendSampler(samplers, probabilities=[0.7, 0.3], repeats=[0, 1], seed=5)
        multi.set_epoch(2)
        per_rank.append(list(multi))
        assert len(per_rank[-1]) == len(multi) and (multi.rank, multi.world_size) == (rank, world_size)
    assert len({len(batches) for batches in per_rank}) == 1
    backends = [[batch[0][0] for batch in batches] for batches in per_rank]
    assert all(b == backends[0] for b in backends)
    for batches in per_rank:
        for batch in batches:
            assert len({b for b, _, _ in batch}) == 1
            if batch[0][0] == 0:
                assert len({UNEVEN_SIZES[i] for _, _, i in batch}) == 1


def test_backend_samplers_must_be_sharded_alike():
    samplers = [size_sampler(8, 0, rank=0, world_size=2), size_sampler(8, 1, rank=1, world_size=2)]
    with pytest.raises(ValueError, match="same \\(rank, world_size\\)"):
        MultiBackendSampler(samplers, probabilities=[1, 1])


def test_multi_backend_order_is_deterministic_per_seed_and_epoch():
    def order(seed, epoch):
        multi = MultiBackendSampler(sampler_pair(), probabilities=[0.5, 0.5], seed=seed)
        multi.set_epoch(epoch)
        return list(multi)

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1) and order(0, 0) != order(1, 0)


def test_from_backends_reads_probability_and_repeats():
    from types import SimpleNamespace

    backends = [SimpleNamespace(probability=0.6, repeats=0), SimpleNamespace(probability=0.0, repeats=1)]
    multi = MultiBackendSampler.from_backends(sampler_pair((4, 4)), backends)
    assert multi.probabilities == [0.6, 0.0] and multi.repeats == [0, 1] and len(multi) == 2


@pytest.mark.parametrize(
    "probabilities, repeats, message",
    [([0, 0], None, "not all 0"), ([1, -1], None, ">= 0"), ([1], None, "2 samplers, 1"), ([1, 1], [0, -1], "repeats")],
)
def test_multi_backend_rejects_bad_settings(probabilities, repeats, message):
    with pytest.raises(ValueError, match=message):
        MultiBackendSampler(sampler_pair(), probabilities=probabilities, repeats=repeats)


@pytest.mark.parametrize("crop_aspect", ["preserve", "closest"])
def test_a_loader_stacks_every_batch_of_a_real_bucket_table_over_a_grid_of_sizes(crop_aspect):
    """assign_buckets on a grid of image sizes (crop off, then on): whatever the keys hold, every batch stacks."""
    import pyarrow as pa

    from hf_assets.config.schema import BucketConfig
    from hf_assets.data.buckets import assign_buckets

    sides = np.arange(200, 6001, 97)
    widths, heights = (a.ravel() for a in np.meshgrid(sides, sides))
    index = pa.table(
        {
            "filename": [f"{i}.jpg" for i in range(len(widths))],
            "row": np.arange(len(widths)),
            "width": widths.astype(np.int32),
            "height": heights.astype(np.int32),
        }
    )
    for crop in (False, True):
        cfg = BucketConfig(
            resolution=512,
            resolution_type="pixel",
            crop=crop,
            crop_aspect=crop_aspect,
            crop_aspect_buckets=(0.5, 0.75, 1.0, 1.5, 2.0) if crop_aspect == "closest" else None,
        )
        table = assign_buckets(index, cfg, "grid")
        sizes = list(zip(table.column("target_width").to_pylist(), table.column("target_height").to_pylist()))
        keys = table.column("bucket").to_pylist()
        sampler = BucketBatchSampler(sizes, 16, buckets=keys, short_buckets="repeat")
        batches = list(DataLoader(SizedLatents(sizes, keys), batch_sampler=sampler))  # collate stacks each batch
        assert len(batches) == len(sampler) and all(len(b["latents"]) == 16 for b in batches)
        assert sum(g.samples for g in sampler.summary.groups) == table.num_rows
