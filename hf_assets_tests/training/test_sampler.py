"""Same-bucket batches reshuffled per epoch, and batches interleaved across backends by probability."""

from collections import Counter

import pytest

from hf_assets.training.sampler import BucketBatchSampler, MultiBackendSampler

# 7 square, 5 wide, 2 tall, 1 panorama: uneven, interleaved, with buckets smaller than a batch.
BUCKETS = ["1.0", "1.5", "1.0", "0.67", "1.0", "1.5", "1.0", "1.5", "1.0", "2.5", "1.0", "0.67", "1.5", "1.0", "1.5"]


def flatten(batches):
    return [i for batch in batches for i in batch]


def test_every_batch_shares_a_bucket_and_every_sample_comes_once_per_epoch():
    sampler = BucketBatchSampler(BUCKETS, batch_size=3, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert all(len({BUCKETS[i] for i in batch}) == 1 for batch in batches)
        assert sorted(flatten(batches)) == list(range(len(BUCKETS)))
        assert len(batches) == len(sampler) == 3 + 2 + 1 + 1  # ceil(7/3) + ceil(5/3) + 1 + 1


def test_short_buckets_give_short_batches_unless_drop_last():
    kept = list(BucketBatchSampler(BUCKETS, batch_size=3))
    assert sorted(len(b) for b in kept) == [1, 1, 2, 2, 3, 3, 3]
    dropped = BucketBatchSampler(BUCKETS, batch_size=3, drop_last=True)
    batches = list(dropped)
    assert [len(b) for b in batches] == [3, 3, 3] and len(dropped) == 3
    assert not {BUCKETS[i] for i in flatten(batches)} & {"0.67", "2.5"}


def test_shuffle_is_deterministic_per_seed_and_epoch_and_differs_between_epochs():
    def order(seed, epoch):
        sampler = BucketBatchSampler(BUCKETS, batch_size=2, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)


def test_without_shuffle_batches_follow_bucket_and_sample_order():
    sampler = BucketBatchSampler(BUCKETS, batch_size=4, shuffle=False)
    sampler.set_epoch(5)
    assert list(sampler) == [[3, 11], [0, 2, 4, 6], [8, 10, 13], [1, 5, 7, 12], [14], [9]]


def test_bad_batch_size_and_empty_input():
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler(BUCKETS, batch_size=0)
    empty = BucketBatchSampler([], batch_size=2)
    assert list(empty) == [] and len(empty) == 0


def sampler_pair(sizes=(40, 40), batch_size=2):
    return [BucketBatchSampler(["1.0"] * n, batch_size=batch_size, seed=k) for k, n in enumerate(sizes)]


def test_backends_are_drawn_in_proportion_to_probability_and_zero_excludes():
    multi = MultiBackendSampler(sampler_pair((400, 400, 50)), probabilities=[0.75, 0.25, 0.0], seed=3)
    batches = list(multi)
    first = Counter(batch[0][0] for batch in batches[:120])  # both backends still have batches here
    assert 0.6 < first[0] / 120 < 0.9
    assert {batch[0][0] for batch in batches} == {0, 1}
    assert len(batches) == len(multi) == 400


def test_an_epoch_spends_every_batch_of_every_backend_once_per_repeat():
    multi = MultiBackendSampler(sampler_pair((6, 5)), probabilities=[1, 1], repeats=[0, 2], seed=0)
    multi.set_epoch(4)
    batches = list(multi)
    assert len(batches) == len(multi) == 3 + 3 * 3
    assert all(len({(b, e) for b, e, _ in batch}) == 1 for batch in batches)  # one backend, one draw per batch
    keys = Counter((b, e, i) for batch in batches for b, e, i in batch)
    assert set(keys.values()) == {1}
    assert {e for b, e, _ in keys if b == 0} == {4}
    assert {e for b, e, _ in keys if b == 1} == {12, 13, 14}  # a fresh draw epoch per repeat
    assert sorted(i for b, e, i in keys if b == 1 and e == 13) == list(range(5))


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
