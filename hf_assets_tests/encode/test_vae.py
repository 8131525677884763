"""VAE latent distributions, factors, and the out-of-memory backoff that never loses a sample."""

import pytest
import torch

from hf_assets.encode.vae import encode_latents, encode_with_oom_backoff, is_oom, vae_factors_from_config

FACTORS = {
    "sd": {"scaling_factor": 0.18215, "shift_factor": 0.0, "downscale": 8, "latent_channels": 4},
    "sdxl": {"scaling_factor": 0.13025, "shift_factor": 0.0, "downscale": 8, "latent_channels": 4},
    "sd3": {"scaling_factor": 1.5305, "shift_factor": 0.0609, "downscale": 8, "latent_channels": 16},
    "flux": {"scaling_factor": 0.3611, "shift_factor": 0.1159, "downscale": 8, "latent_channels": 16},
}


@pytest.mark.parametrize("family", sorted(FACTORS))
def test_latent_distribution_shapes(loaded, family):
    vae, _ = loaded(family)
    factors = vae_factors_from_config(vae.config)
    assert factors == FACTORS[family]
    pixels = torch.rand(3, 3, 48, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mean, std = encode_latents(vae, pixels)
    f, c = factors["downscale"], factors["latent_channels"]
    assert mean.shape == std.shape == (3, c, 48 // f, 64 // f)
    assert torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()
    expected = vae.encode(pixels).latent_dist
    torch.testing.assert_close(mean, expected.mean)
    torch.testing.assert_close(std, expected.std)


def test_encode_latents_casts_pixels_to_the_vae_dtype(tiny_pipelines):
    from hf_assets.encode.model_loading import load_vae

    vae = load_vae(tiny_pipelines["sdxl"], dtype=torch.bfloat16)
    mean, std = encode_latents(vae, torch.zeros(1, 3, 64, 64))
    assert mean.dtype == torch.bfloat16 and mean.shape == (1, 4, 8, 8)


class FakeOom:
    """Raises an out-of-memory error for batches above `limit` and records every batch size tried."""

    def __init__(self, limit: int, error=lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate")):
        self.limit, self.error, self.sizes = limit, error, []

    def __call__(self, batch):
        self.sizes.append(len(batch))
        if len(batch) > self.limit:
            raise self.error()
        return batch * 10 if isinstance(batch, torch.Tensor) else [x * 10 for x in batch]


def test_backoff_halves_and_keeps_every_sample_in_order():
    fn, messages = FakeOom(limit=2), []
    result = encode_with_oom_backoff(fn, torch.arange(7), messages.append)
    assert result.tolist() == [x * 10 for x in range(7)]
    assert fn.sizes == [7, 4, 2, 2, 2, 1]
    assert messages == [
        "out of memory encoding 7 samples; retrying in chunks of 4",
        "out of memory encoding 4 samples; retrying in chunks of 2",
    ]


def test_backoff_sizes_and_list_batches():
    fn = FakeOom(limit=2)
    assert encode_with_oom_backoff(fn, list(range(8)), lambda _: None) == [x * 10 for x in range(8)]
    assert fn.sizes == [8, 4, 2, 2, 2, 2]


def test_backoff_joins_tuples_from_a_real_vae(loaded):
    vae, _ = loaded("sd")
    pixels = torch.rand(5, 3, 16, 16) * 2 - 1
    attempts = []

    def encode(chunk):
        attempts.append(len(chunk))
        if len(chunk) > 2:
            raise RuntimeError("CUDA error: out of memory")
        return encode_latents(vae, chunk)

    mean, std = encode_with_oom_backoff(encode, pixels, lambda _: None)
    ref_mean, ref_std = encode_latents(vae, pixels)
    assert attempts == [5, 3, 2, 2, 1]
    torch.testing.assert_close(mean, ref_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std, ref_std, rtol=1e-4, atol=1e-5)


def test_backoff_gives_up_at_one_sample_and_passes_other_errors():
    with pytest.raises(torch.OutOfMemoryError):
        encode_with_oom_backoff(FakeOom(limit=0), [1, 2, 3], lambda _: None)
    boom = FakeOom(limit=0, error=lambda: ValueError("bad pixels"))
    with pytest.raises(ValueError, match="bad pixels"):
        encode_with_oom_backoff(boom, [1, 2, 3], lambda _: None)
    assert boom.sizes == [3]


def test_is_oom():
    assert is_oom(torch.OutOfMemoryError("x")) and is_oom(RuntimeError("MPS backend out of memory"))
    assert not is_oom(RuntimeError("shape mismatch")) and not is_oom(ValueError("out of memory"))
