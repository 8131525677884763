"""Every supported video VAE: the factors read from its saved config give the shape its encoder really returns."""

import json

import pytest
import torch

from hf_assets.encode.model_loading import is_video_vae, load_vae
from hf_assets.encode.video_vae import encode_clips, video_vae_factors


def tiny_vae(name: str):
    import diffusers

    if name == "AutoencoderKLWan":
        return diffusers.AutoencoderKLWan(
            base_dim=8,
            z_dim=4,
            dim_mult=[1, 2, 2, 2],
            num_res_blocks=1,
            latents_mean=[0.1, -0.2, 0.3, 0.0],
            latents_std=[1.5, 2.0, 0.5, 1.0],
        )
    if name == "AutoencoderKLLTXVideo":
        return diffusers.AutoencoderKLLTXVideo(
            latent_channels=8,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, False, False),
            decoder_spatio_temporal_scaling=(True, True, False, False),
            decoder_inject_noise=(False,) * 5,
            upsample_residual=(False,) * 4,
            upsample_factor=(1,) * 4,
            timestep_conditioning=False,
            patch_size=1,
            patch_size_t=1,
        )
    if name == "AutoencoderKLHunyuanVideo":
        return diffusers.AutoencoderKLHunyuanVideo(
            latent_channels=4,
            down_block_types=("HunyuanVideoDownBlock3D",) * 4,
            up_block_types=("HunyuanVideoUpBlock3D",) * 4,
            block_out_channels=(8, 8, 8, 8),
            layers_per_block=1,
            norm_num_groups=4,
        )
    return diffusers.AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
    )


@pytest.mark.parametrize(
    "name", ["AutoencoderKLWan", "AutoencoderKLLTXVideo", "AutoencoderKLHunyuanVideo", "AutoencoderKLCogVideoX"]
)
def test_factors_from_the_saved_config_predict_the_encoded_shape(tmp_path, name):
    torch.manual_seed(0)
    vae = tiny_vae(name)
    if name == "AutoencoderKLLTXVideo":  # LTX keeps its statistics as buffers in the weights, not in the config
        vae.latents_mean.copy_(torch.linspace(-1, 1, 8))
        vae.latents_std.copy_(torch.linspace(0.5, 2, 8))
    vae.save_pretrained(tmp_path / "vae")
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    factors = video_vae_factors(config, tmp_path / "vae")
    loaded = load_vae(tmp_path, "vae")
    assert type(loaded).__name__ == name and is_video_vae(config)
    frames, height, width = 9, 32, 48
    mean, std = encode_clips(loaded, torch.rand(1, 3, frames, height, width) * 2 - 1)
    t, f = factors["temporal_downscale"], factors["downscale"]
    assert tuple(mean.shape[1:]) == (factors["latent_channels"], 1 + (frames - 1) // t, height // f, width // f)
    assert mean.shape == std.shape
    if name in ("AutoencoderKLWan", "AutoencoderKLLTXVideo"):
        assert factors["latents_mean"] is not None and len(factors["latents_mean"]) == factors["latent_channels"]
    else:
        assert factors["latents_mean"] is None and factors["scaling_factor"] == config["scaling_factor"]
    if name == "AutoencoderKLLTXVideo":
        assert factors["latents_mean"] == pytest.approx(torch.linspace(-1, 1, 8).tolist())


def test_an_image_vae_is_not_a_video_vae(tiny_pipelines):
    config = json.loads((tiny_pipelines["sd"] / "vae" / "config.json").read_text())
    assert not is_video_vae(config)
    with pytest.raises(ValueError, match="not a video VAE"):
        video_vae_factors(config)
