"""The cache checks fail on planted problems: a missing sample, a wrong shape, a NaN or an inf."""

import pyarrow as pa
import torch

from hf_assets.cache import verify
from hf_assets.cache.encoded import EncodedCache


def latent_cache(tmp_path, shapes: dict[str, tuple], poison: dict[str, float] | None = None):
    """A committed cache of latents for files with targets 64x32 (latent 4x4x8 at f=8)."""
    poison = poison or {}
    names = list(shapes)
    wanted = pa.table({
        "filename": names,
        "content_hash": [f"c{i}" for i in range(len(names))],
        "settings_hash": ["s"] * len(names),
        "target_width": [64] * len(names),
        "target_height": [32] * len(names),
    })
    cache = EncodedCache(tmp_path / "vae")
    to_encode, _ = cache.plan(wanted)
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
    latent_cache(tmp_path, {"0.jpg": (4, 4, 8), "1.jpg": (4, 4, 8), "2.jpg": (4, 4, 8)},
                 poison={"1.jpg": float("nan"), "2.jpg": float("inf")})
    assert verify.nonfinite_tensors(tmp_path / "vae").count == 2


def test_text_shapes_must_agree_per_tensor_name():
    manifest = pa.table({
        "filename": ["0.jpg", "0.jpg", "1.jpg"],
        "variant": [0, 1, 0],
        "tensor_names": [["prompt_embeds"]] * 3,
        "shapes": [[[77, 80]], [[77, 80]], [[76, 80]]],
    })
    finding, expected = verify.inconsistent_shapes(manifest)
    assert expected == {"prompt_embeds": [77, 80]} and finding.count == 1 and "1.jpg#0" in finding.examples[0]
