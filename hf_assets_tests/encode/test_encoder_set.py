"""Encoders: device and dtype settings, where the VAE and text encoders load from, lazy loading, identities."""

import shutil

import pytest
import torch

from hf_assets.encode import encoder_set
from hf_assets.encode.encoder_set import Encoders, resolve_device, resolve_dtype, text_identity
from hf_assets.encode.model_files import ModelNotFound
from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


@pytest.fixture(scope="module")
def other_sdxl(tmp_path_factory):
    """A second tiny SDXL pipeline: same architecture and configs, other random weights (seed 7)."""
    return build_tiny_pipeline(tmp_path_factory.mktemp("other") / "tiny-sdxl-seed7", "sdxl", seed=7)


@no_cuda
def test_auto_device_is_cpu_without_cuda():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_raises_naming_the_device_setting(device):
    with pytest.raises(ValueError, match="HF_ASSETS_DEVICE") as error:
        resolve_device(device)
    assert repr(device) in str(error.value)


def test_auto_dtype_is_fp32_on_cpu_and_bf16_on_cuda():
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16


@pytest.mark.parametrize(
    "name, dtype",
    [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32), ("bfloat16", torch.bfloat16)],
)
def test_explicit_dtype_names_map_to_torch_dtypes(name, dtype):
    assert resolve_dtype(name, torch.device("cpu")) == dtype


def test_unknown_dtype_is_rejected():
    with pytest.raises(ValueError, match="bf16"):
        resolve_dtype("int8x", torch.device("cpu"))


def test_no_model_configured_raises_naming_the_model_setting():
    with pytest.raises(ValueError, match="HF_ASSETS_MODEL"):
        Encoders("")


def test_missing_model_folder_raises_naming_the_model_setting(tmp_path):
    missing = tmp_path / "no-such-pipeline"
    with pytest.raises(ModelNotFound, match="HF_ASSETS_MODEL") as error:
        Encoders(str(missing))
    assert str(missing) in str(error.value)


def test_missing_vae_folder_raises_naming_the_vae_setting(tmp_path, tiny_sdxl):
    missing = tmp_path / "no-such-vae"
    with pytest.raises(ModelNotFound, match="HF_ASSETS_VAE") as error:
        Encoders(str(tiny_sdxl), vae_path=str(missing))
    assert str(missing) in str(error.value)


def test_vae_override_loads_that_vae_and_has_its_identity(tiny_sdxl, other_sdxl):
    plain = Encoders(str(tiny_sdxl))
    overridden = Encoders(str(tiny_sdxl), vae_path=str(other_sdxl / "vae"))
    assert overridden.vae_source == (str(other_sdxl / "vae"), None, "HF_ASSETS_VAE")
    # The identity is that of the weights: the other VAE's, not the pipeline's.
    assert overridden.vae_identity() != plain.vae_identity()
    assert overridden.vae_identity() == Encoders(str(other_sdxl)).vae_identity()
    assert overridden.vae_config()["scaling_factor"] == pytest.approx(0.13025)

    loaded, own = overridden.vae().state_dict(), plain.vae().state_dict()
    reference = Encoders(str(other_sdxl)).vae().state_dict()
    assert loaded.keys() == own.keys() == reference.keys()
    assert all(torch.equal(loaded[k], reference[k]) for k in loaded)
    assert not all(torch.equal(loaded[k], own[k]) for k in loaded)


def test_vae_override_pointing_at_the_pipelines_own_vae_keeps_the_identity(tiny_sdxl):
    same = Encoders(str(tiny_sdxl), vae_path=str(tiny_sdxl / "vae"))
    assert same.vae_identity() == Encoders(str(tiny_sdxl)).vae_identity()


def test_vae_override_does_not_change_the_text_identity(tiny_sdxl, other_sdxl):
    overridden = Encoders(str(tiny_sdxl), vae_path=str(other_sdxl / "vae"))
    assert text_identity(overridden, 77) == text_identity(Encoders(str(tiny_sdxl)), 77)


def test_vae_only_configuration_encodes_latents_but_refuses_text(other_sdxl):
    vae_only = Encoders("", vae_path=str(other_sdxl / "vae"))
    assert vae_only.vae_identity() == Encoders(str(other_sdxl)).vae_identity()
    with pytest.raises(ValueError, match="HF_ASSETS_MODEL"):
        vae_only.family()


def test_vae_and_text_encoders_load_lazily_exactly_once(tiny_sdxl, monkeypatch):
    calls = {"vae": 0, "text": 0}
    real_vae, real_text = encoder_set.load_vae, encoder_set.load_text_encoders

    def counting_vae(*args, **kwargs):
        calls["vae"] += 1
        return real_vae(*args, **kwargs)

    def counting_text(*args, **kwargs):
        calls["text"] += 1
        return real_text(*args, **kwargs)

    monkeypatch.setattr(encoder_set, "load_vae", counting_vae)
    monkeypatch.setattr(encoder_set, "load_text_encoders", counting_text)
    enc = Encoders(str(tiny_sdxl))
    # Identities, config and family are read without loading any weights.
    enc.vae_identity(), enc.vae_config(), enc.family(), text_identity(enc, 77)
    assert calls == {"vae": 0, "text": 0}

    vae = enc.vae()
    assert calls == {"vae": 1, "text": 0}
    assert enc.vae() is vae and enc.vae() is vae
    assert calls == {"vae": 1, "text": 0}

    text = enc.text_encoders()
    assert [t.name for t in text] == ["text_encoder", "text_encoder_2"]
    assert enc.text_encoders() is text
    assert calls == {"vae": 1, "text": 1}


def test_loaded_encoders_use_the_configured_dtype(tiny_sdxl):
    enc = Encoders(str(tiny_sdxl), dtype=torch.bfloat16)
    assert next(enc.vae().parameters()).dtype == torch.bfloat16
    assert all(next(t.model.parameters()).dtype == torch.bfloat16 for t in enc.text_encoders())


def test_text_identity_is_stable_and_changes_with_max_length_model_and_dtype(tiny_sdxl, other_sdxl):
    enc = Encoders(str(tiny_sdxl))
    base = text_identity(enc, 77)
    assert base == text_identity(Encoders(str(tiny_sdxl)), 77)
    assert base["family"] == "sdxl" and base["max_length"] == 0  # CLIP-only: always 77 tokens
    assert set(base["parts"]) == {"text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"}

    assert text_identity(enc, 120) == base
    other = text_identity(Encoders(str(other_sdxl)), 77)
    assert other != base
    assert other["parts"]["text_encoder"] != base["parts"]["text_encoder"]
    assert text_identity(Encoders(str(tiny_sdxl), dtype=torch.bfloat16), 77)["dtype"] == "bfloat16"


def test_text_identity_changes_with_max_length_for_t5_recipes(tmp_path):
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    flux = Encoders(str(build_tiny_pipeline(tmp_path / "tiny-flux", "flux")))
    assert text_identity(flux, 256) != text_identity(flux, 512)
    assert text_identity(flux, 256)["max_length"] == 256


def test_random_weights_note_only_when_the_marker_file_exists(tmp_path, tiny_sdxl):
    assert Encoders(str(tiny_sdxl)).random_weights_note() is None
    demo = shutil.copytree(tiny_sdxl, tmp_path / "demo-pipeline")
    (demo / "RANDOM_WEIGHTS").write_text("tiny random weights, for the demo\n")
    note = Encoders(str(demo)).random_weights_note()
    assert note is not None and "RANDOM" in note and "HF_ASSETS_MODEL" in note and str(demo) in note
    assert Encoders("", vae_path=str(demo / "vae")).random_weights_note() is None


def bare_text_encoder(pipeline, folder):
    """A single-model folder: a pipeline's text_encoder with its tokenizer files beside it, no model_index.json."""
    shutil.copytree(pipeline / "text_encoder", folder)
    for item in (pipeline / "tokenizer").iterdir():
        shutil.copy2(item, folder / item.name)
    return folder


def test_text_identity_of_a_bare_text_encoder_folder_is_that_of_its_weights(tmp_path, tiny_sdxl, other_sdxl):
    one = Encoders(str(bare_text_encoder(tiny_sdxl, tmp_path / "clip-seed0")))
    two = Encoders(str(bare_text_encoder(other_sdxl, tmp_path / "clip-seed7")))
    # Both load as generic single models, with the same architecture and other weights.
    (enc_one,), (enc_two,) = one.text_encoders(), two.text_encoders()
    assert one.family() == two.family() == "generic" and enc_one.name is enc_two.name is None
    assert not torch.equal(enc_one.model.get_input_embeddings().weight, enc_two.model.get_input_embeddings().weight)

    first, second = text_identity(one, 77), text_identity(two, 77)
    assert set(first["parts"]) == {"root"} and first["parts"]["root"].startswith("local:")
    assert first != second  # different weights, different cache keys
    assert first == text_identity(Encoders(str(tmp_path / "clip-seed0")), 77)
    # A copy of the same folder keeps its identity.
    copy = Encoders(str(shutil.copytree(tmp_path / "clip-seed0", tmp_path / "copy")))
    assert text_identity(copy, 77) == first


def test_bare_vae_folder_as_the_model_has_the_identity_and_config_of_the_vae_it_loads(tiny_sdxl, other_sdxl):
    bare = Encoders(str(other_sdxl / "vae"))
    assert bare.vae_source == (str(other_sdxl / "vae"), "vae", "HF_ASSETS_MODEL")
    assert bare.vae_identity() == Encoders(str(other_sdxl)).vae_identity()
    assert bare.vae_identity() == Encoders("", vae_path=str(other_sdxl / "vae")).vae_identity()
    assert bare.vae_identity() != Encoders(str(tiny_sdxl / "vae")).vae_identity()
    assert bare.vae_config()["scaling_factor"] == pytest.approx(0.13025)

    loaded, reference = bare.vae().state_dict(), Encoders(str(other_sdxl)).vae().state_dict()
    assert loaded.keys() == reference.keys() and all(torch.equal(loaded[k], reference[k]) for k in loaded)


def test_model_without_a_vae_names_the_missing_component(tmp_path, tiny_sdxl):
    text_only = tmp_path / "text-only"
    for part in ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"):
        shutil.copytree(tiny_sdxl / part, text_only / part)
    shutil.copy2(tiny_sdxl / "model_index.json", text_only / "model_index.json")
    enc = Encoders(str(text_only))
    for call in (enc.vae_identity, enc.vae_config):
        with pytest.raises(ModelNotFound, match=r"HF_ASSETS_MODEL=.*no 'vae' component in .*found: \['text_encoder'"):
            call()
