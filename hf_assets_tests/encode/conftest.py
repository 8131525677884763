"""Tiny pipelines for every family, built once per session, and their loaded encoders."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

FAMILIES = ("sd", "sdxl", "sd3", "flux")


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory) -> dict:
    """family -> folder of a tiny pipeline written with save_pretrained."""
    from hf_assets.encode.tiny_pipeline import build_tiny_pipeline

    root = tmp_path_factory.mktemp("pipelines")
    return {family: build_tiny_pipeline(root / family, family) for family in FAMILIES}


@pytest.fixture(scope="session")
def loaded(tiny_pipelines):
    """family -> (vae, text encoders), loaded through from_pretrained once per session."""
    from hf_assets.encode.models import load_text_encoders, load_vae

    cache = {}

    def get(family: str):
        if family not in cache:
            path = tiny_pipelines[family]
            cache[family] = (load_vae(path), load_text_encoders(path))
        return cache[family]

    return get
