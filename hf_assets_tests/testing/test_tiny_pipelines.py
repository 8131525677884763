"""The tiny pipeline builder: real classes, complete model_index.json, fast and deterministic."""

import hashlib
import json
from pathlib import Path

import pytest

from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

EXPECTED = {
    "sd": ("StableDiffusionPipeline", {"text_encoder": "CLIPTextModel"}),
    "sdxl": (
        "StableDiffusionXLPipeline",
        {"text_encoder": "CLIPTextModel", "text_encoder_2": "CLIPTextModelWithProjection"},
    ),
    "sd3": (
        "StableDiffusion3Pipeline",
        {
            "text_encoder": "CLIPTextModelWithProjection",
            "text_encoder_2": "CLIPTextModelWithProjection",
            "text_encoder_3": "T5EncoderModel",
        },
    ),
    "flux": ("FluxPipeline", {"text_encoder": "CLIPTextModel", "text_encoder_2": "T5EncoderModel"}),
}


def tree_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_model_index_lists_exactly_the_written_components(tiny_pipelines, family):
    folder = tiny_pipelines[family]
    index = json.loads((folder / "model_index.json").read_text())
    class_name, encoders = EXPECTED[family]
    assert index["_class_name"] == class_name
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    for name, cls in encoders.items():
        assert index[name] == ["transformers", cls]
        assert (folder / name / "config.json").is_file()
        assert (folder / name / "model.safetensors").is_file()
        assert index[name.replace("text_encoder", "tokenizer")][0] == "transformers"
    components = {k for k in index if not k.startswith("_")}
    assert components == {p.name for p in folder.iterdir() if p.is_dir()}
    assert not (folder / "unet").exists() and not (folder / "transformer").exists()


def test_build_is_deterministic_per_seed(tiny_pipelines, tmp_path):
    first = build_tiny_pipeline(tmp_path / "a", "sd3", seed=3)
    second = build_tiny_pipeline(tmp_path / "b", "sd3", seed=3)
    other = build_tiny_pipeline(tmp_path / "c", "sd3", seed=4)
    assert tree_digest(first) == tree_digest(second)
    assert tree_digest(first) != tree_digest(other)


def test_family_aliases_and_unknown_family(tmp_path):
    folder = build_tiny_pipeline(tmp_path / "sd15", "sd1")
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    with pytest.raises(ValueError, match="family='kandinsky'"):
        build_tiny_pipeline(tmp_path / "k", "kandinsky")


def test_tokenizers_reload_offline(tiny_pipelines):
    from transformers import AutoTokenizer

    folder = tiny_pipelines["flux"]
    clip = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
    t5 = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer_2")
    ids = clip("the cat, A photo!").input_ids
    assert ids[0] == clip.bos_token_id and ids[-1] == clip.eos_token_id and clip.unk_token_id not in ids[1:-1]
    assert clip.decode(ids, skip_special_tokens=True) == "the cat , a photo !"
    assert clip.model_max_length == 77
    t5_ids = t5("a photo of the cat, Zebra!").input_ids
    assert t5_ids[-1] == t5.eos_token_id and t5.unk_token_id not in t5_ids
    assert t5.decode(t5_ids, skip_special_tokens=True) == "a photo of the cat, Zebra!"
    assert (t5.pad_token_id, t5.model_max_length) == (0, 512)
