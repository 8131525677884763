"""The VAE runner: the input takes the model's memory layout, compiled full batches and padded or eager partial ones
give the eager latents, and a batch size that ran out of memory is remembered per shape."""

import pytest
import torch

from hf_assets.encode.model_loading import load_vae
from hf_assets.encode.vae import encode_latents
from hf_assets.encode.vae_runner import (
    CPU_BATCH,
    MAX_BATCH_PIXELS,
    VaeRunner,
    model_memory_format,
    resolve_memory_format,
    runner_for,
)


@pytest.fixture
def vae(tiny_pipelines):
    return load_vae(tiny_pipelines["sdxl"])  # a fresh copy: runners change its memory layout


def images(n: int, height: int = 32, width: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def encoder_inputs(vae) -> list[torch.Tensor]:
    """Records every tensor the VAE's encoder is called with."""
    seen: list[torch.Tensor] = []
    vae.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


def reference(vae, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_latents on the batch converted the plain way: NCHW, [-1, 1]."""
    return encode_latents(vae, batch.permute(0, 3, 1, 2).float() / 127.5 - 1)


def test_auto_layout_is_nchw_and_the_input_is_contiguous(vae):
    assert resolve_memory_format("auto", torch.device("cuda")) == "nchw"
    seen = encoder_inputs(vae)
    runner = VaeRunner(vae)
    batch = images(3)
    mean, std = runner(batch)
    assert runner.memory_format == torch.contiguous_format and seen[0].is_contiguous()
    expected = reference(vae, batch)
    torch.testing.assert_close(mean, expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(std, expected[1], atol=1e-5, rtol=1e-5)


def test_channels_last_converts_model_and_input_together(vae):
    seen = encoder_inputs(vae)
    runner = VaeRunner(vae, memory_format="channels_last")
    assert model_memory_format(vae) == torch.channels_last
    runner(images(2))
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()


def test_a_model_converted_elsewhere_is_converted_back_before_it_runs(vae):
    seen = encoder_inputs(vae)
    runner = VaeRunner(vae, memory_format="nchw")
    VaeRunner(vae, memory_format="channels_last")  # e.g. a bench converting the shared model afterwards
    assert model_memory_format(vae) == torch.channels_last
    runner(images(2))
    assert model_memory_format(vae) == torch.contiguous_format and seen[0].is_contiguous()
    with pytest.raises(ValueError, match="memory_format='nhwc'"):
        VaeRunner(vae, memory_format="nhwc")


def test_compiled_full_batches_padded_or_eager_partial_ones_give_eager_latents(vae, monkeypatch):
    messages: list[str] = []
    runner = VaeRunner(vae, compile="default", batch_size=4, log=messages.append, backend="eager")
    compiled_shapes = []
    real = runner.compiled.compiled
    monkeypatch.setattr(runner.compiled, "compiled", lambda x: compiled_shapes.append(tuple(x.shape)) or real(x))
    batch = images(11)
    mean, std = runner(batch)  # 4 + 4 + 3: the last padded to 4
    assert compiled_shapes == [(4, 3, 32, 48)] * 3
    expected = reference(vae, batch)
    torch.testing.assert_close(mean, expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(std, expected[1], atol=1e-5, rtol=1e-5)
    runner(images(1, seed=1))  # less than half a batch: eager
    runner(images(4, 64, 32))  # another shape: its own static graph
    assert compiled_shapes[3:] == [(4, 3, 64, 32)]
    compiled = [m for m in messages if m.startswith("compiled the VAE encoder")]
    assert len(compiled) == 2 and "4x3x32x48" in compiled[0] and "4x3x64x32" in compiled[1]


def test_an_out_of_memory_batch_size_is_remembered_for_its_shape(vae, monkeypatch):
    runner = VaeRunner(vae, batch_size=8, log=lambda m: None)
    real, sizes = runner._moments, []

    def limited(x):
        sizes.append(x.shape[0])
        if x.shape[0] > 3 and x.shape[2] == 32:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real(x)

    monkeypatch.setattr(runner, "_moments", limited)
    batch = images(8)
    mean, _ = runner(batch)
    torch.testing.assert_close(mean, reference(vae, batch)[0], atol=1e-5, rtol=1e-5)
    assert sizes == [8, 4, 2, 2, 2, 2] and runner.fits[(32, 48)] == 2
    sizes.clear()
    runner(images(8, seed=1))  # the same shape starts at what fitted
    assert sizes == [2, 2, 2, 2]
    sizes.clear()
    runner(images(8, 64, 32))  # another shape starts at the batch size
    assert sizes == [8]


def test_automatic_batches_are_capped_by_pixels_and_cpu_batches_by_a_constant(vae):
    cpu = VaeRunner(vae)
    assert cpu.batch_limit(256, 256) == CPU_BATCH and cpu.batch_limit(4096, 4096) == 2
    assert VaeRunner(vae, batch_size=3).batch_limit(2048, 2048) == 3
    assert MAX_BATCH_PIXELS // (1024 * 1024) == 32


def test_one_runner_per_model_and_settings(vae):
    first = runner_for(vae, "nchw", "off", 4)
    assert runner_for(vae, "auto", "off", 4) is first  # auto is nchw here
    assert runner_for(vae, "nchw", "off", 8) is not first
