"""The tiny pipelines' loaded encoders, once per session (the `tiny_pipelines` fixture is in the top conftest)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def loaded(tiny_pipelines):
    """family -> (vae, text encoders), loaded through from_pretrained once per session."""
    from hf_assets.encode.model_loading import load_text_encoders, load_vae

    cache = {}

    def get(family: str):
        if family not in cache:
            path = tiny_pipelines[family]
            cache[family] = (load_vae(path), load_text_encoders(path))
        return cache[family]

    return get
