"""Load a pipeline's VAE and text encoders through from_pretrained, by family and config class."""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hf_assets import env
from hf_assets.encode.model_files import (
    ModelNotFound,
    ModelRoot,
    component_config,
    component_folder,
    folder_identity,
    model_index,
    resolve_root,
)

# family -> [(encoder subfolder, tokenizer subfolder, kind, required)]
ENCODERS = {
    "sd": [("text_encoder", "tokenizer", "clip", True)],
    "sdxl": [("text_encoder", "tokenizer", "clip", False), ("text_encoder_2", "tokenizer_2", "clip_projection", True)],
    "sd3": [
        ("text_encoder", "tokenizer", "clip_projection", True),
        ("text_encoder_2", "tokenizer_2", "clip_projection", True),
        ("text_encoder_3", "tokenizer_3", "t5", True),
    ],
    "flux": [("text_encoder", "tokenizer", "clip", True), ("text_encoder_2", "tokenizer_2", "t5", True)],
    "wan": [("text_encoder", "tokenizer", "umt5", True)],
    "ltx": [("text_encoder", "tokenizer", "t5", True)],
    "cogvideox": [("text_encoder", "tokenizer", "t5", True)],
}
MODEL_CLASSES = {
    "clip": "CLIPTextModel",
    "clip_projection": "CLIPTextModelWithProjection",
    "t5": "T5EncoderModel",
    "umt5": "UMT5EncoderModel",
}
# the pipelines' default max_sequence_length (Wan's __call__ uses 512, LTX 128, CogVideoX 226)
T5_LENGTH = {"sd3": 256, "flux": 512, "wan": 512, "ltx": 128, "cogvideox": 226}
# model_index.json _class_name prefix -> family, first match wins
FAMILY_PREFIXES = (
    ("StableDiffusionXL", "sdxl"),
    ("StableDiffusion3", "sd3"),
    ("Flux", "flux"),
    ("Wan", "wan"),
    ("LTX", "ltx"),
    ("CogVideoX", "cogvideox"),
    ("HunyuanVideo", "hunyuanvideo"),
)
# the diffusers autoencoders a VAE folder may name in its config.json _class_name
VAE_CLASSES = (
    "AutoencoderKL",
    "AutoencoderKLWan",
    "AutoencoderKLLTXVideo",
    "AutoencoderKLHunyuanVideo",
    "AutoencoderKLCogVideoX",
)
ENCODER_ONLY = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


@dataclass
class TextEncoder:
    """One loaded text encoder: its tokenizer, model, subfolder name, sequence length, kind and identity."""

    tokenizer: Any
    model: Any
    name: str | None
    max_length: int
    kind: str  # clip | clip_projection | t5 | auto
    identity: str = ""


def detect_family(pipeline_dir: str | Path, setting: str = env.MODEL) -> str:
    """'sd', 'sdxl', 'sd3', 'flux', 'wan', 'ltx', 'cogvideox', 'hunyuanvideo' or 'generic' from model_index.json."""
    index = model_index(resolve_root(pipeline_dir, setting).path)
    name = str(index.get("_class_name", ""))
    for prefix, family in FAMILY_PREFIXES:
        if name.startswith(prefix):
            return family
    return "sd" if name.startswith("StableDiffusion") else "generic"


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """torch.float32 for None; accepts 'bf16', 'fp16', 'float32', 'torch.bfloat16' and dtypes."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype or torch.float32
    name = str(dtype).removeprefix("torch.").lower()
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    result = getattr(torch, aliases.get(name, name), None)
    if not isinstance(result, torch.dtype):
        raise ValueError(f"dtype={dtype!r}: expected one of bf16, fp16, fp32")
    return result


def load_vae(
    path_or_id, subfolder: str | None = "vae", dtype=torch.float32, device="cpu", *, setting=env.MODEL, revision=None
):
    """The VAE class its config.json names (AutoencoderKL or a video VAE), from_pretrained, in eval mode."""
    import diffusers

    root = resolve_root(path_or_id, setting, revision)
    sub = component_folder(root, subfolder, setting, path_or_id)
    cls = getattr(
        diffusers, vae_class_name(component_config(path_or_id, subfolder, setting=setting, revision=revision), setting)
    )
    low_mem = importlib.util.find_spec("accelerate") is not None  # without it diffusers warns and falls back
    vae = cls.from_pretrained(root.path, subfolder=sub, torch_dtype=as_dtype(dtype), low_cpu_mem_usage=low_mem)
    return vae.to(device).eval().requires_grad_(False)


def vae_class_name(config: dict, setting: str = env.MODEL) -> str:
    """The diffusers autoencoder class a VAE config names (AutoencoderKL when it names none)."""
    name = str(config.get("_class_name") or "AutoencoderKL")
    if name not in VAE_CLASSES:
        raise ModelNotFound(f"{setting}: the VAE's config.json names {name!r}; supported: {', '.join(VAE_CLASSES)}")
    return name


def is_video_vae(config: dict) -> bool:
    """True for the video autoencoders (Wan, LTX-Video, HunyuanVideo, CogVideoX)."""
    return vae_class_name(config) != "AutoencoderKL"


def load_text_encoders(
    path_or_id, family: str | None = None, dtype=torch.float32, device="cpu", *, setting=env.MODEL, revision=None
) -> list[TextEncoder]:
    """The family's tokenizers and text encoders in the order its pipeline's encode_prompt uses them."""
    root = resolve_root(path_or_id, setting, revision)
    family = family or detect_family(root.path)
    if family not in ENCODERS:
        index = model_index(root.path)
        parts = _generic_parts(root, setting, path_or_id)
        return [_load_auto(root, enc, tok, index.get(enc or ""), dtype, device) for enc, tok in parts]
    parts = [part for part in ENCODERS[family] if part[3] or (root.path / part[0] / "config.json").is_file()]
    missing = [n for enc, tok, _, _ in parts for n in (enc, tok) if not (root.path / n).is_dir()]
    if missing:
        raise ModelNotFound(
            f"{setting}={str(path_or_id)!r}: the {family} recipe needs {missing}, missing in {root.path}"
        )
    t5_length = T5_LENGTH.get(family, 512)
    return [_load_known(root, enc, tok, kind, t5_length, dtype, device) for enc, tok, kind, _ in parts]


def _load_known(root: ModelRoot, enc_name: str, tok_name: str, kind: str, t5_length: int, dtype, device):
    """Load one CLIP/T5 encoder with its class from the recipe."""
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(root.path, subfolder=tok_name)
    name = MODEL_CLASSES[kind]
    if kind in ("t5", "umt5"):  # the T5 flavour the folder holds (a Wan pipeline may ship T5, an LTX one UMT5)
        model_type = json.loads((root.path / enc_name / "config.json").read_text()).get("model_type")
        name = ENCODER_ONLY.get(model_type, name)
    cls = getattr(transformers, name)
    model = cls.from_pretrained(root.path, subfolder=enc_name, **_dtype_kwargs(dtype))
    if kind in ("t5", "umt5"):
        length = t5_length
    else:
        length = min(int(tokenizer.model_max_length), int(model.config.max_position_embeddings))
    return _finish(TextEncoder(tokenizer, model, enc_name, length, kind), root, tok_name, device)


def _generic_parts(root: ModelRoot, setting: str, value) -> list[tuple[str | None, str | None]]:
    """(encoder, tokenizer) subfolders of an unknown pipeline, or the root itself for a single model."""
    subs = [p.name for p in root.path.glob("text_encoder*") if (p / "config.json").is_file()]
    subs.sort(key=lambda n: (len(n), n))
    if subs:
        return [(s, s.replace("text_encoder", "tokenizer")) for s in subs]
    if (root.path / "config.json").is_file():
        return [(None, None)]
    raise ModelNotFound(f"{setting}={str(value)!r}: no text_encoder* folder and no config.json in {root.path}")


def _load_auto(root: ModelRoot, enc_name, tok_name, entry, dtype, device) -> TextEncoder:
    """Load an encoder by its model_index class, an encoder-only class for T5-like configs, else AutoModel."""
    import transformers
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    tok_sub = tok_name if tok_name and (root.path / tok_name).is_dir() else enc_name
    tokenizer = AutoTokenizer.from_pretrained(root.path, subfolder=tok_sub or "")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    config = AutoConfig.from_pretrained(root.path, subfolder=enc_name or "")
    cls_name = ENCODER_ONLY.get(config.model_type) or (entry[1] if entry and entry[1] else None)
    cls = getattr(transformers, cls_name, None) if cls_name else None
    if cls is None or "Tokenizer" in cls_name:
        cls = AutoModel
    model = cls.from_pretrained(root.path, subfolder=enc_name or "", **_dtype_kwargs(dtype))
    limit = int(getattr(config, "max_position_embeddings", 0) or 512)
    length = min(int(tokenizer.model_max_length), limit, 512)
    return _finish(TextEncoder(tokenizer, model, enc_name, length, "auto"), root, tok_sub, device)


def _dtype_kwargs(dtype) -> dict:
    """The dtype keyword of transformers' from_pretrained ('dtype' from 5.x, 'torch_dtype' before)."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"dtype" if major >= 5 else "torch_dtype": as_dtype(dtype)}


def _finish(enc: TextEncoder, root: ModelRoot, tok_sub: str | None, device) -> TextEncoder:
    """Move to the device, freeze, and record the identity of model and tokenizer."""
    enc.model = enc.model.to(device).eval().requires_grad_(False)
    enc.identity = f"{folder_identity(root, enc.name)}+tok:{folder_identity(root, tok_sub)}"
    return enc
