"""The environment variable names: one module spells them, and the encoders resource reads exactly those."""

from hf_assets import env
from hf_assets.resources.gpu import EncoderResource


def test_resource_settings_are_read_from_the_named_variables():
    names = EncoderResource.env_names()
    assert names["model"] == env.MODEL == "HF_ASSETS_MODEL"
    assert names["vae"] == env.VAE == "HF_ASSETS_VAE"
    assert names["device"] == env.DEVICE == "HF_ASSETS_DEVICE"
    assert names["latent_dtype"] == "HF_ASSETS_LATENT_DTYPE"
    assert set(names.values()) == {env.resource_variable(setting) for setting in EncoderResource.model_fields}

