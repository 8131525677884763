"""The cache checks fail on planted problems: a missing sample, a wrong shape, a NaN or an inf."""

import json
import os

import pyarrow as pa
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from hf_assets.cache import health, verify
from hf_assets.cache.encoded import EncodedCache
from hf_assets.encode.model_loading import load_vae
from hf_assets.encode.vae import encode_latents
from hf_assets_tests.imagegen import pixels


def latent_cache(tmp_path, shapes: dict[str, tuple], poison: dict[str, float] | None = None):
    """A committed cache of latents for files with targets 64x32 (latent 4x4x8 at f=8)."""
    poison = poison or {}
    names = list(shapes)
    wanted = pa.table(
        {
            "filename": names,
            "content_hash": [f"c{i}" for i in range(len(names))],
            "settings_hash": ["s"] * len(names),
            "target_width": [64] * len(names),
            "target_height": [32] * len(names),
        }
    )
    cache = EncodedCache(tmp_path / "vae")
    to_encode, _ = cache.triage(wanted)
    with cache.writer() as writer:
        for name, key in zip(to_encode.column("filename").to_pylist(), to_encode.column("key").to_pylist()):
            mean = torch.randn(shapes[name])
            if name in poison:
                mean[0, 0, 0] = poison[name]
            writer.add(key, {"mean": mean, "std": torch.ones(shapes[name])})
    cache.commit(wanted)
    return cache.read().table


def test_complete_cache_passes_every_check(tmp_path):
    manifest = latent_cache(tmp_path, {"0.jpg": (4, 4, 8), "1.jpg": (4, 4, 8)})
    expected = pa.table({"filename": ["0.jpg", "1.jpg"]})
    assert verify.missing(expected, manifest, ["filename"]).passed
    assert verify.latent_shape_mismatches(manifest, channels=4, downscale=8).passed
    assert verify.nonfinite_tensors(tmp_path / "vae").passed


def test_missing_sample_fails_unless_it_was_dropped_with_a_reason(tmp_path):
    manifest = latent_cache(tmp_path, {"0.jpg": (4, 4, 8)})
    expected = pa.table({"filename": ["0.jpg", "7.jpg"]})
    finding = verify.missing(expected, manifest, ["filename"])
    assert finding.count == 1 and finding.examples == ["7.jpg"]
    assert verify.missing(expected, manifest, ["filename"], excused={"7.jpg"}).passed


def test_wrong_latent_shape_fails(tmp_path):
    manifest = latent_cache(tmp_path, {"0.jpg": (4, 4, 8), "1.jpg": (4, 8, 8)})
    finding = verify.latent_shape_mismatches(manifest, channels=4, downscale=8)
    assert finding.count == 2 and all(e.startswith("1.jpg") for e in finding.examples)  # mean and std


def test_nan_or_inf_fails_the_finite_check(tmp_path):
    latent_cache(
        tmp_path,
        {"0.jpg": (4, 4, 8), "1.jpg": (4, 4, 8), "2.jpg": (4, 4, 8)},
        poison={"1.jpg": float("nan"), "2.jpg": float("inf")},
    )
    assert verify.nonfinite_tensors(tmp_path / "vae").count == 2


def test_text_shapes_must_agree_per_tensor_name():
    manifest = pa.table(
        {
            "filename": ["0.jpg", "0.jpg", "1.jpg"],
            "variant": [0, 1, 0],
            "tensor_names": [["prompt_embeds"]] * 3,
            "shapes": [[[77, 80]], [[77, 80]], [[76, 80]]],
        }
    )
    finding, expected = verify.inconsistent_shapes(manifest)
    assert expected == {"prompt_embeds": [77, 80]} and finding.count == 1 and "1.jpg#0" in finding.examples[0]


def test_missing_matches_on_every_column_and_keeps_the_expected_order():
    # A text-embedding manifest stores variant as int32; the wanted table's variant is int64.
    manifest = pa.table(
        {
            "filename": ["0.jpg", "0.jpg", "1.jpg", "3.jpg"],
            "variant": pa.array([0, 1, 0, 0], pa.int32()),
        }
    )
    expected = pa.table(
        {
            "filename": ["3.jpg", "2.jpg", "1.jpg", "1.jpg", "0.jpg", "0.jpg", "4.jpg"],
            "variant": pa.array([0, 0, 1, 0, 1, 0, 0], pa.int64()),
        }
    )
    finding = verify.missing(expected, manifest, ["filename", "variant"])
    assert finding.count == 3 and finding.examples == [("2.jpg", 0), ("1.jpg", 1), ("4.jpg", 0)]
    excused = verify.missing(expected, manifest, ["filename", "variant"], excused={"1.jpg"})
    assert excused.count == 2 and excused.examples == [("2.jpg", 0), ("4.jpg", 0)]


def test_missing_reports_every_row_but_at_most_five_examples_and_all_when_the_manifest_is_empty():
    expected = pa.table({"filename": [f"{i}.jpg" for i in range(9)]})
    empty = pa.table({"filename": pa.array([], pa.string())})
    finding = verify.missing(expected, empty, ["filename"])
    assert finding.count == 9 and finding.examples == ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    partial = verify.missing(expected, pa.table({"filename": ["8.jpg", "0.jpg", "5.jpg"]}), ["filename"])
    assert partial.count == 6 and partial.examples == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "6.jpg"]


# The finite check remembers clean shards in verified.json: real latents of the tiny SDXL VAE, one entry per shard.


@pytest.fixture(scope="module")
def tiny_vae(tiny_sdxl):
    return load_vae(tiny_sdxl)


def vae_cache(directory, vae, names: list[str]) -> EncodedCache:
    """Commit mean/std latents of 64x32 pictures (4x4x8 at f=8) for `names`, each entry in its own shard."""
    wanted = pa.table(
        {
            "filename": names,
            "content_hash": [f"c-{n}" for n in names],
            "settings_hash": ["s"] * len(names),
            "target_width": [64] * len(names),
            "target_height": [32] * len(names),
        }
    )
    cache = EncodedCache(directory)
    to_encode, _ = cache.triage(wanted)
    todo = to_encode.column("filename").to_pylist()
    if todo:
        images = torch.stack(
            [
                torch.from_numpy(pixels(64, 32, seed=int(n.split(".")[0]))).permute(2, 0, 1).float() / 127.5 - 1
                for n in todo
            ]
        )
        mean, std = encode_latents(vae, images)
        with cache.writer(max_bytes=mean[0].nbytes + std[0].nbytes) as writer:
            for i, key in enumerate(to_encode.column("key").to_pylist()):
                writer.add(key, {"mean": mean[i], "std": std[i]})
    cache.commit(wanted)
    return cache


@pytest.fixture
def opened(monkeypatch):
    """The shard files whose tensors are read (by commits, plans and checks), call after call."""
    paths = []
    real = health.safe_open

    def counting(path, *args, **kwargs):
        paths.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(health, "safe_open", counting)
    return paths


def memo(directory) -> dict:
    return json.loads((directory / verify.VERIFIED_FILE).read_text())


def stamp(path) -> str:
    return f"{path.stat().st_size}:{path.stat().st_mtime_ns}"


def test_each_shard_is_read_once_by_the_commit_and_never_by_the_checks_after(tmp_path, tiny_vae, opened):
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg", "2.jpg"])
    shards = cache.read().shards()
    assert len(shards) == 3 and sorted(opened) == sorted(shards)  # the commit inspected each new shard
    assert memo(cache.directory) == {s: stamp(cache.shards_dir / s) for s in shards}

    opened.clear()
    assert verify.nonfinite_tensors(cache.directory).passed
    assert verify.nonfinite_tensors(cache.directory).passed
    assert opened == []


def test_a_rerun_reads_only_the_shards_it_added(tmp_path, tiny_vae, opened):
    vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg"])
    before = set(memo(tmp_path / "vae"))
    opened.clear()
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg", "2.jpg"])
    assert verify.nonfinite_tensors(cache.directory).passed
    assert opened == sorted(cache.read().shards() - before) and len(opened) == 1


def poison_in_place(shard, suffix="/mean", value=float("nan")) -> str:
    """Rewrite a shard with the same size and header but one non-finite tensor; return that tensor's name."""
    tensors = load_file(shard)
    with safe_open(str(shard), framework="pt") as f:
        header = f.metadata()
    name = next(n for n in tensors if n.endswith(suffix))
    tensors[name] = torch.full_like(tensors[name], value)
    save_file(tensors, shard, metadata=header)
    return name


def test_rewritten_shard_is_read_again_and_its_nan_found(tmp_path, tiny_vae, opened):
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg", "2.jpg"])
    shard = cache.shards_dir / sorted(cache.read().shards())[1]
    old = shard.stat()
    os.utime(shard, ns=(old.st_atime_ns, old.st_mtime_ns - 10**9))  # verified a while ago...
    assert verify.nonfinite_tensors(cache.directory).passed
    name = poison_in_place(shard)  # ...then rewritten in place: same size and header, NaN in the mean
    assert shard.stat().st_size == old.st_size  # only the mtime tells

    opened.clear()
    finding = verify.nonfinite_tensors(cache.directory)
    assert finding.count == 1 and finding.examples == [name]
    assert opened == [shard.name]
    assert memo(cache.directory)[shard.name] == {"stamp": stamp(shard), "nonfinite": [name]}


def test_shard_holding_nan_fails_on_every_call_and_is_read_once(tmp_path, tiny_vae, opened):
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg"])
    shard = cache.shards_dir / sorted(cache.read().shards())[0]
    name = poison_in_place(shard, "/std", float("inf"))

    opened.clear()
    for call in range(3):
        finding = verify.nonfinite_tensors(cache.directory)
        assert finding.count == 1 and finding.examples == [name], call
    assert opened == [shard.name]


def test_full_verification_reads_every_shard_and_finds_a_change_that_kept_the_mtime(tmp_path, tiny_vae, opened):
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg", "2.jpg"])
    shard = cache.shards_dir / sorted(cache.read().shards())[2]
    old = shard.stat()
    name = poison_in_place(shard)
    os.utime(shard, ns=(old.st_atime_ns, old.st_mtime_ns))  # size and mtime as before: the memo cannot tell
    opened.clear()
    assert verify.nonfinite_tensors(cache.directory).passed and opened == []
    finding = verify.nonfinite_tensors(cache.directory, full=True)
    assert finding.examples == [name] and sorted(opened) == sorted(cache.read().shards())


def test_memo_forgets_shards_the_manifest_no_longer_references(tmp_path, tiny_vae):
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg", "2.jpg"])
    assert verify.nonfinite_tensors(cache.directory).passed
    assert len(memo(cache.directory)) == 3
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["1.jpg"])  # a smaller dataset: two shards are pruned
    assert verify.nonfinite_tensors(cache.directory).passed
    assert set(memo(cache.directory)) == cache.read().shards() and len(cache.read().shards()) == 1
    assert set(os.listdir(cache.shards_dir)) == cache.read().shards()


def test_unreadable_memo_means_every_shard_is_read_again(tmp_path, tiny_vae, opened):
    cache = vae_cache(tmp_path / "vae", tiny_vae, ["0.jpg", "1.jpg"])
    assert verify.nonfinite_tensors(cache.directory).passed
    (cache.directory / verify.VERIFIED_FILE).write_text('{"shard-')  # cut short

    opened.clear()
    assert verify.nonfinite_tensors(cache.directory).passed
    assert sorted(opened) == sorted(cache.read().shards())
    assert set(memo(cache.directory)) == cache.read().shards()


def test_finite_check_of_an_empty_cache_passes_and_reads_nothing(tmp_path, opened):
    assert verify.nonfinite_tensors(tmp_path / "never-written").passed
    assert opened == []
