"""The text-embedding cache update: every caption variant, each distinct text encoded once, incremental, pruned."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from hf_assets.cache.manifest import read_manifest
from hf_assets.cache.shards import list_shards
from hf_assets.cache.text_embed_cache import open_text_embeds
from hf_assets.encode.encoder_set import Encoders, text_identity
from hf_assets.encode.text import encode_captions
from hf_assets.encode.text_update import update_text_embeds, wanted_captions
from hf_assets_tests.conftest import photo_rows, write_hub_dataset
from hf_assets_tests.encode.test_image_media import prepare

N = 12  # row 5 is corrupt and filtered out: 11 samples
SDXL_SHAPES = {"prompt_embeds": (77, 32 + 48), "pooled_prompt_embeds": (40,)}


@pytest.fixture(scope="module")
def encoders(tiny_sdxl):
    """One Encoders for the module: the tiny SDXL text encoders load once."""
    return Encoders(str(tiny_sdxl))


@pytest.fixture
def buckets(tmp_path):
    """Buckets of a realistic dataset: list captions (caption + tags, or a nested fallback), shared texts."""
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(N))
    return prepare(tmp_path)[2]


def update(encoders, buckets, directory, max_length=77, only=None, loader=None, **kwargs):
    identity = text_identity(encoders, max_length)
    wanted = wanted_captions(buckets, identity, only=only)
    report = update_text_embeds(
        wanted,
        loader or encoders.text_encoders,
        identity["family"],
        max_length,
        directory,
        {"identity": identity, "backend": "photos"},
        batch_size=4,
        **kwargs,
    )
    return wanted, report


def distinct_texts(wanted) -> int:
    return len(set(wanted.column("caption").to_pylist()))


def test_encoded_and_reused_both_count_distinct_texts_and_add_up(tmp_path, buckets, encoders):
    update(encoders, buckets, tmp_path / "text")
    rows = photo_rows(N)
    rows[0]["caption"] = "a photo of item 0, retouched"
    write_hub_dataset(tmp_path / "data" / "photos", rows)
    wanted, report = update(encoders, prepare(tmp_path)[2], tmp_path / "text")
    assert report.encoded == 1
    assert report.encoded + report.reused == distinct_texts(wanted) < wanted.num_rows


def must_not_load():
    pytest.fail("the text encoders were loaded although nothing needed encoding")


def captions_by_file(buckets) -> dict[str, list[str]]:
    return dict(zip(buckets.column("filename").to_pylist(), buckets.column("captions").to_pylist()))


def test_buckets_hold_list_captions_shared_across_samples(buckets):
    captions = captions_by_file(buckets)
    assert captions["0.jpg"] == ["a photo of item 0", "outdoor", "sunny"]
    assert captions["1.jpg"] == ["nested caption 1"]
    assert captions["2.jpg"] == captions["6.jpg"] == ["studio"]


def test_wanted_captions_explodes_every_variant_with_its_index(buckets, encoders):
    identity = text_identity(encoders, 77)
    wanted = wanted_captions(buckets, identity)
    expected = [(name, i, text) for name, texts in captions_by_file(buckets).items() for i, text in enumerate(texts)]
    got = list(zip(*(wanted.column(c).to_pylist() for c in ("filename", "variant", "caption"))))
    assert got == expected
    assert wanted.num_rows > buckets.num_rows  # several variants per sample
    by_text: dict[str, set[str]] = {}
    for text, digest in zip(wanted.column("caption").to_pylist(), wanted.column("content_hash").to_pylist()):
        by_text.setdefault(text, set()).add(digest)
    assert all(len(d) == 1 for d in by_text.values())  # equal texts, equal hashes
    assert len({next(iter(d)) for d in by_text.values()}) == len(by_text)  # different texts, different hashes
    assert set(wanted.column("settings_hash").to_pylist()) == {wanted.column("settings_hash")[0].as_py()}


def test_wanted_captions_excludes_samples_not_in_only(buckets, encoders):
    only = pa.array(["0.jpg", "2.jpg", "not-in-the-split.jpg"], pa.string())
    wanted = wanted_captions(buckets, text_identity(encoders, 77), only=only)
    assert wanted.column("filename").to_pylist() == ["0.jpg"] * 3 + ["2.jpg"]
    assert wanted.column("variant").to_pylist() == [0, 1, 2, 0]
    nothing = wanted_captions(buckets, text_identity(encoders, 77), only=pa.array([], pa.string()))
    assert nothing.num_rows == 0


def test_identical_captions_are_encoded_once_and_every_variant_is_readable(tmp_path, buckets, encoders):
    wanted, report = update(encoders, buckets, tmp_path / "text")
    texts = wanted.column("caption").to_pylist()
    assert report.encoded == len(set(texts)) < len(texts)
    assert report.reused == 0 and report.size_bytes > 0

    cache = open_text_embeds(tmp_path / "text")
    assert set(cache) == set(buckets.column("filename").to_pylist())
    reference = dict(zip(sorted(set(texts)), encode_captions(encoders.text_encoders(), sorted(set(texts)), "sdxl")))
    for name, captions in captions_by_file(buckets).items():
        variants = cache[name]
        assert len(variants) == len(captions) and cache.captions(name) == captions
        for text, tensors in zip(captions, variants):
            assert {k: tuple(v.shape) for k, v in tensors.items()} == SDXL_SHAPES
            assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in tensors.values())
            for key, value in tensors.items():
                assert torch.allclose(value, reference[text][key], atol=1e-5), (name, text, key)
    # One stored copy per distinct text: the manifest rows of equal texts point at the same key.
    manifest = read_manifest(tmp_path / "text").table
    assert manifest.num_rows == len(texts) and len(set(manifest.column("key").to_pylist())) == len(set(texts))


def test_rerun_encodes_nothing_and_loads_no_encoder(tmp_path, buckets, encoders):
    wanted, _ = update(encoders, buckets, tmp_path / "text")
    _, second = update(encoders, buckets, tmp_path / "text", loader=must_not_load)
    assert second.encoded == 0 and second.reused == distinct_texts(wanted) < wanted.num_rows


def test_changed_caption_reencodes_only_that_text(tmp_path, buckets, encoders):
    update(encoders, buckets, tmp_path / "text")
    first = read_manifest(tmp_path / "text").table
    first_shard_of = dict(zip(first.column("caption").to_pylist(), first.column("shard").to_pylist()))
    rows = photo_rows(N)
    rows[0]["caption"] = "a photo of item 0, retouched"  # a unique text changes
    rows[4]["tags"] = ["outdoor", "rainy"]  # one sample's copy of a shared text changes
    rows[8]["tags"] = []  # two variants disappear
    write_hub_dataset(tmp_path / "data" / "photos", rows)
    changed = prepare(tmp_path)[2]
    again, report = update(encoders, changed, tmp_path / "text")
    assert report.encoded == 2 and report.reused == distinct_texts(again) - 2

    cache = open_text_embeds(tmp_path / "text")
    assert cache.captions("0.jpg") == ["a photo of item 0, retouched", "outdoor", "sunny"]
    assert cache.captions("4.jpg") == ["a photo of item 4", "outdoor", "rainy"]
    assert cache.captions("8.jpg") == ["a photo of item 8"] and len(cache["8.jpg"]) == 1
    assert "a photo of item 0" not in read_manifest(tmp_path / "text").table.column("caption").to_pylist()
    # The shared text the other samples keep is still served from the first run's shard.
    assert cache.rows("4.jpg")[1]["shard"] == first_shard_of["outdoor"] == cache.rows("0.jpg")[1]["shard"]
    assert torch.equal(cache["0.jpg"][1]["prompt_embeds"], cache["4.jpg"][1]["prompt_embeds"])


def test_max_length_changes_nothing_for_clip_only_recipes(tmp_path, buckets, encoders):
    update(encoders, buckets, tmp_path / "text", max_length=77)
    _, report = update(encoders, buckets, tmp_path / "text", max_length=120, loader=must_not_load)
    assert report.encoded == 0


def test_changed_max_length_reencodes_everything_for_t5_recipes(tmp_path, buckets):
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    flux = Encoders(str(build_tiny_pipeline(tmp_path / "tiny-flux", "flux")))
    wanted, _ = update(flux, buckets, tmp_path / "text", max_length=64)
    longer, report = update(flux, buckets, tmp_path / "text", max_length=96)
    distinct = len(set(wanted.column("caption").to_pylist()))
    assert report.encoded == distinct and report.reused == 0
    assert set(longer.column("settings_hash").to_pylist()).isdisjoint(wanted.column("settings_hash").to_pylist())
    assert read_manifest(tmp_path / "text").meta["identity"]["max_length"] == 96
    first = buckets.column("filename")[0].as_py()
    assert open_text_embeds(tmp_path / "text")[first][0]["prompt_embeds"].shape[0] == 96


def test_captions_of_samples_not_in_only_are_excluded(tmp_path, buckets, encoders):
    only = pa.array(["0.jpg", "2.jpg", "6.jpg"], pa.string())
    wanted, report = update(encoders, buckets, tmp_path / "text", only=only)
    assert report.encoded == 4  # item 0, outdoor, sunny, studio (shared by 2.jpg and 6.jpg)
    cache = open_text_embeds(tmp_path / "text")
    assert sorted(cache) == ["0.jpg", "2.jpg", "6.jpg"]
    assert "1.jpg" not in cache and len(cache["6.jpg"]) == 1


def test_samples_no_longer_wanted_are_pruned(tmp_path, buckets, encoders):
    directory = tmp_path / "text"
    update(encoders, buckets, directory, shard_bytes=1)  # one shard per distinct text
    shards_before = set(list_shards(directory / "shards"))
    keep = pa.array(["0.jpg", "3.jpg"], pa.string())
    wanted, report = update(encoders, buckets, directory, only=keep, shard_bytes=1, loader=must_not_load)
    assert report.encoded == 0 and report.reused == distinct_texts(wanted) and wanted.num_rows == 4
    manifest = read_manifest(directory).table
    assert sorted(set(manifest.column("filename").to_pylist())) == ["0.jpg", "3.jpg"]
    assert manifest.num_rows == 4
    shards_after = set(list_shards(directory / "shards"))
    assert shards_after == set(manifest.column("shard").to_pylist()) and len(shards_after) == 4
    assert shards_after < shards_before
    cache = open_text_embeds(directory)
    assert sorted(cache) == ["0.jpg", "3.jpg"]
    assert cache.captions("3.jpg") == ["nested caption 3"]


def test_captions_come_back_in_variant_order_whatever_the_manifest_order(tmp_path, buckets, encoders):
    identity = text_identity(encoders, 77)
    wanted = wanted_captions(buckets, identity)
    shuffled = wanted.take(pa.array(np.random.default_rng(3).permutation(wanted.num_rows)))
    update_text_embeds(shuffled, encoders.text_encoders, "sdxl", 77, tmp_path / "text", {}, batch_size=4)
    stored = read_manifest(tmp_path / "text").table
    assert stored.column("variant").to_pylist() != sorted(stored.column("variant").to_pylist())  # really shuffled
    cache = open_text_embeds(tmp_path / "text")
    reference = {
        t: e
        for t, e in zip(
            wanted.column("caption").to_pylist(),
            encode_captions(encoders.text_encoders(), wanted.column("caption").to_pylist(), "sdxl"),
        )
    }
    for name, captions in captions_by_file(buckets).items():
        assert cache.captions(name) == captions
        assert [r["variant"] for r in cache.rows(name)] == list(range(len(captions)))
        for text, tensors in zip(captions, cache[name]):
            assert torch.allclose(tensors["pooled_prompt_embeds"], reference[text]["pooled_prompt_embeds"], atol=1e-5)
