"""Hash while fetching: shards made of whole fetch units, and the keys a shard gives the rows the plan left keyless."""

import numpy as np

from hf_assets.cache.hashing import cache_key, content_hash
from hf_assets.encode.fetch_hashes import HashWhileFetching, shards_by_unit
from hf_assets_tests.imagegen import encode_image


def test_no_fetch_unit_is_split_across_shards_and_the_shards_are_balanced():
    rng = np.random.default_rng(0)
    units = rng.permutation(np.repeat(np.arange(40), rng.integers(1, 30, 40)))
    assignment = shards_by_unit(units, 8)
    for unit in np.unique(units):
        assert len(np.unique(assignment[units == unit])) == 1
    sizes = np.bincount(assignment, minlength=8)
    assert sizes.sum() == len(units) and sizes.max() <= len(units) / 8 + 30  # at most one unit over an even share
    assert np.array_equal(shards_by_unit(units[::-1], 8), assignment[::-1])  # the rows' order does not matter


def test_fewer_units_than_shards_leave_shards_idle_and_one_shard_takes_all():
    units = np.repeat([3, 7, 9], 40)
    assert len(np.unique(shards_by_unit(units, 8))) == 3
    assert set(shards_by_unit(units, 1).tolist()) == {0}
    assert shards_by_unit(np.array([], np.int64), 8).size == 0


def test_a_shard_keys_each_fetched_image_by_its_bytes_and_skips_what_needs_no_encoding():
    images = [encode_image(64, 48, "JPEG", seed=i) for i in range(5)]
    settings = "s" * 32
    keys = [cache_key(content_hash(b), settings) for b in images]
    hashing = HashWhileFetching(
        entries={r: f"piece#{r}" for r in range(7)},
        present={keys[1]},
        flushed={keys[2]},
        carried={keys[3]: "decode_failed: broken"},
    )
    records = [{"row": r, "settings_hash": settings} for r in range(7)]
    sources = [*images, images[4], None]  # row 5 repeats row 4's image; row 6 has no bytes
    got = [hashing.key(record, source) for record, source in zip(records, sources)]
    assert got == [keys[0], None, None, None, keys[4], None, None]
    assert (hashing.reused, hashing.resumed, hashing.carried) == (1, 1, {keys[3]: "decode_failed: broken"})
    assert [h for _, _, h, _ in hashing.hashed] == [content_hash(b) for b in sources[:6]] + [""]
