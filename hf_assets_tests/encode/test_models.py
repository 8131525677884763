"""Locating and loading models: family detection, loaders, identities and errors that name the setting."""

import json
import os
import shutil

import pytest
import torch

from hf_assets.encode.models import (
    ModelNotFound,
    as_dtype,
    detect_family,
    load_text_encoders,
    load_vae,
    model_identity,
)

CLASSES = {
    "sd": ["CLIPTextModel"],
    "sdxl": ["CLIPTextModel", "CLIPTextModelWithProjection"],
    "sd3": ["CLIPTextModelWithProjection", "CLIPTextModelWithProjection", "T5EncoderModel"],
    "flux": ["CLIPTextModel", "T5EncoderModel"],
}
LENGTHS = {"sd": [77], "sdxl": [77, 77], "sd3": [77, 77, 256], "flux": [77, 512]}


@pytest.mark.parametrize("family", sorted(CLASSES))
def test_detect_family_and_load(tiny_pipelines, loaded, family):
    assert detect_family(tiny_pipelines[family]) == family
    vae, encoders = loaded(family)
    assert type(vae).__name__ == "AutoencoderKL" and not vae.training
    assert [type(e.model).__name__ for e in encoders] == CLASSES[family]
    assert [e.max_length for e in encoders] == LENGTHS[family]
    assert all(not p.requires_grad for e in encoders for p in e.model.parameters())
    assert all(e.identity.startswith("local:") and "+tok:local:" in e.identity for e in encoders)


@pytest.mark.parametrize(
    ("class_name", "family"),
    [("StableDiffusionImg2ImgPipeline", "sd"), ("StableDiffusionXLImg2ImgPipeline", "sdxl"),
     ("FluxKontextPipeline", "flux"), ("StableDiffusion3Img2ImgPipeline", "sd3"), ("PixArtAlphaPipeline", "generic")],
)
def test_detect_family_by_class_name(tmp_path, class_name, family):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    assert detect_family(tmp_path) == family


def test_folder_without_model_index_is_generic(tmp_path):
    assert detect_family(tmp_path) == "generic"


def test_load_vae_from_its_own_folder_and_in_bf16(tiny_pipelines):
    vae = load_vae(tiny_pipelines["sdxl"] / "vae", dtype="bf16")
    assert vae.dtype == torch.bfloat16
    assert load_vae(tiny_pipelines["sdxl"] / "vae", subfolder=None).config.latent_channels == 4


def test_generic_loads_every_text_encoder_by_its_index_class(tiny_pipelines):
    encoders = load_text_encoders(tiny_pipelines["sdxl"], "generic")
    assert [(e.name, e.kind, type(e.model).__name__) for e in encoders] == [
        ("text_encoder", "auto", "CLIPTextModel"),
        ("text_encoder_2", "auto", "CLIPTextModelWithProjection"),
    ]
    single = load_text_encoders(tiny_pipelines["flux"] / "text_encoder_2", "generic")
    assert len(single) == 1 and single[0].name is None


def test_generic_t5_loads_encoder_only(tiny_pipelines, tmp_path):
    folder = tmp_path / "t5"
    shutil.copytree(tiny_pipelines["flux"] / "text_encoder_2", folder)
    for item in (tiny_pipelines["flux"] / "tokenizer_2").iterdir():
        shutil.copy(item, folder / item.name)
    (encoder,) = load_text_encoders(folder, "generic")
    assert type(encoder.model).__name__ == "T5EncoderModel"


def test_missing_path_names_the_setting(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelNotFound) as info:
        load_vae(missing)
    assert str(info.value) == (
        f"HF_ASSETS_MODEL={str(missing)!r}: no such folder and no cached hub repo; "
        "set HF_ASSETS_MODEL to a diffusers pipeline folder or repo id"
    )
    with pytest.raises(ModelNotFound, match="^vae_model='someone/not-cached': no such folder and no cached hub repo"):
        load_text_encoders("someone/not-cached", "sdxl", setting="vae_model")
    with pytest.raises(ModelNotFound, match="no such folder"):
        detect_family("someone/not-cached")
    with pytest.raises(ModelNotFound, match="no such folder"):
        model_identity(missing, "vae")


def test_file_instead_of_folder_and_missing_component(tiny_pipelines, tmp_path):
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFound, match="is a file, not a folder"):
        load_vae(tmp_path / "file.bin")
    with pytest.raises(ModelNotFound, match=r"no 'vae' component in .* \(found: \['text_encoder'\]\)"):
        shutil.copytree(tiny_pipelines["sd"] / "text_encoder", tmp_path / "p" / "text_encoder")
        load_vae(tmp_path / "p")
    needs = r"the flux recipe needs \['tokenizer', 'text_encoder_2', 'tokenizer_2'\], missing in"
    with pytest.raises(ModelNotFound, match=needs):
        load_text_encoders(tmp_path / "p", "flux")


def test_model_identity_is_stable_and_tracks_changes(tiny_pipelines, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_pipelines["sd"], folder)
    first = model_identity(folder, "vae")
    assert first == model_identity(folder, "vae") and first.startswith("local:")
    assert first != model_identity(folder, "text_encoder")
    with pytest.raises(ModelNotFound, match="no 'unet' folder"):
        model_identity(folder, "unet")
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = model_identity(folder, "vae")
    assert touched != first
    config = json.loads((folder / "vae" / "config.json").read_text())
    config["scaling_factor"] = 0.5
    (folder / "vae" / "config.json").write_text(json.dumps(config))
    assert model_identity(folder, "vae") not in (first, touched)


def test_model_identity_of_cached_hub_repo(tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / commit
    (snapshot / "vae").mkdir(parents=True)
    (snapshot / "vae" / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert model_identity("org/tiny", "vae") == f"hub:org/tiny@{commit}/vae"


def test_as_dtype():
    assert as_dtype(None) is torch.float32
    assert as_dtype("bf16") is torch.bfloat16 and as_dtype("torch.float16") is torch.float16
    assert as_dtype(torch.float64) is torch.float64
    with pytest.raises(ValueError, match="dtype='int8x'"):
        as_dtype("int8x")


def test_importing_the_encode_package_loads_neither_diffusers_nor_transformers():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import hf_assets.encode.images, hf_assets.encode.models, hf_assets.encode.prefetch\n"
        "import hf_assets.encode.text, hf_assets.encode.tiny_pipeline, hf_assets.encode.vae\n"
        "print(sorted(m for m in ('diffusers', 'transformers', 'dagster') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
