"""Locate and load a pipeline's VAE and text encoders through from_pretrained, and name them for cache keys."""

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

DEFAULT_SETTING = "HF_ASSETS_MODEL"
REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".msgpack", ".h5", ".onnx")
CONTENT_HASH_LIMIT = 16 << 20

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
}
MODEL_CLASSES = {"clip": "CLIPTextModel", "clip_projection": "CLIPTextModelWithProjection", "t5": "T5EncoderModel"}
T5_LENGTH = {"sd3": 256, "flux": 512}  # the pipelines' default max_sequence_length
ENCODER_ONLY = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


ENCODER_FILES = ["model_index.json", "*.json", "vae/*", "text_encoder*/*", "tokenizer*/*"]


class ModelNotFound(FileNotFoundError):
    """A configured model path or repo id that is neither a folder nor a cached hub repo."""


@dataclass
class TextEncoder:
    """One loaded text encoder: its tokenizer, model, subfolder name, sequence length, kind and identity."""
    tokenizer: Any
    model: Any
    name: str | None
    max_length: int
    kind: str  # clip | clip_projection | t5 | auto
    identity: str = ""


@dataclass(frozen=True)
class ModelRoot:
    """Where a model lives on disk, and its hub repo and commit when it came from the hub cache."""
    path: Path
    repo_id: str | None = None
    commit: str | None = None


def _offline() -> bool:
    """True when the hub must not be contacted (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_root(path_or_id: str | Path, setting: str = DEFAULT_SETTING, revision: str | None = None) -> ModelRoot:
    """A local folder as is; a hub id through the local hub cache only (never downloads); else ModelNotFound."""
    text = str(path_or_id)
    local = Path(text).expanduser()
    if local.is_dir():
        return ModelRoot(local.resolve())
    hint = f"set {setting} to a diffusers pipeline folder or repo id"
    if local.exists():
        raise ModelNotFound(f"{setting}={text!r}: is a file, not a folder; {hint}")
    if REPO_ID.match(text) and not text.startswith("."):
        try:
            from huggingface_hub import snapshot_download

            snap = Path(snapshot_download(text, revision=revision, local_files_only=True))
            return ModelRoot(snap, repo_id=text, commit=snap.name)
        except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
            pass
        if not _offline():
            try:  # only what the encoders need: never the denoiser's weights
                snap = Path(snapshot_download(text, revision=revision, allow_patterns=ENCODER_FILES))
                return ModelRoot(snap, repo_id=text, commit=snap.name)
            except Exception as error:  # noqa: BLE001 - reported with the setting below
                hint = f"{hint} (download failed: {str(error).splitlines()[0][:200]})"
    raise ModelNotFound(f"{setting}={text!r}: no such folder and no cached hub repo; {hint}")


def detect_family(pipeline_dir: str | Path, setting: str = DEFAULT_SETTING) -> str:
    """'sd', 'sdxl', 'sd3', 'flux' or 'generic' from model_index.json's _class_name."""
    index = _model_index(resolve_root(pipeline_dir, setting).path)
    name = str(index.get("_class_name", ""))
    for prefix, family in (("StableDiffusionXL", "sdxl"), ("StableDiffusion3", "sd3"), ("Flux", "flux")):
        if name.startswith(prefix):
            return family
    return "sd" if name.startswith("StableDiffusion") else "generic"


def _model_index(root: Path) -> dict:
    """The pipeline's model_index.json, or {} when the folder is a single model."""
    path = root / "model_index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _component(root: ModelRoot, subfolder: str | None, setting: str, value: Any) -> str | None:
    """The subfolder to load from, falling back to the root when the root itself is that component."""
    if subfolder is None or (root.path / subfolder / "config.json").is_file():
        return subfolder
    if (root.path / "config.json").is_file():
        return None
    found = sorted(p.name for p in root.path.iterdir() if (p / "config.json").is_file())
    raise ModelNotFound(
        f"{setting}={str(value)!r}: no {subfolder!r} component in {root.path} (found: {found or 'none'})"
    )


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


def load_vae(path_or_id, subfolder: str | None = "vae", dtype=torch.float32, device="cpu", *, setting=DEFAULT_SETTING,
             revision=None):
    """AutoencoderKL.from_pretrained on the resolved folder, in eval mode without gradients."""
    from diffusers import AutoencoderKL

    root = resolve_root(path_or_id, setting, revision)
    sub = _component(root, subfolder, setting, path_or_id)
    low_mem = importlib.util.find_spec("accelerate") is not None  # without it diffusers warns and falls back
    vae = AutoencoderKL.from_pretrained(
        root.path, subfolder=sub, torch_dtype=as_dtype(dtype), low_cpu_mem_usage=low_mem
    )
    return vae.to(device).eval().requires_grad_(False)


def load_text_encoders(
    path_or_id, family: str | None = None, dtype=torch.float32, device="cpu", *, setting=DEFAULT_SETTING, revision=None
) -> list[TextEncoder]:
    """The family's tokenizers and text encoders in the order its pipeline's encode_prompt uses them."""
    root = resolve_root(path_or_id, setting, revision)
    family = family or detect_family(root.path)
    if family not in ENCODERS:
        index = _model_index(root.path)
        parts = _generic_parts(root, setting, path_or_id)
        return [_load_auto(root, enc, tok, index.get(enc or ""), dtype, device) for enc, tok in parts]
    plan = [part for part in ENCODERS[family] if part[3] or (root.path / part[0] / "config.json").is_file()]
    missing = [n for enc, tok, _, _ in plan for n in (enc, tok) if not (root.path / n).is_dir()]
    if missing:
        raise ModelNotFound(
            f"{setting}={str(path_or_id)!r}: the {family} recipe needs {missing}, missing in {root.path}"
        )
    t5_length = T5_LENGTH.get(family, 512)
    return [_load_known(root, enc, tok, kind, t5_length, dtype, device) for enc, tok, kind, _ in plan]


def _load_known(root: ModelRoot, enc_name: str, tok_name: str, kind: str, t5_length: int, dtype, device):
    """Load one CLIP/T5 encoder with its class from the recipe."""
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(root.path, subfolder=tok_name)
    cls = getattr(transformers, MODEL_CLASSES[kind])
    model = cls.from_pretrained(root.path, subfolder=enc_name, **_dtype_kwargs(dtype))
    if kind == "t5":
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
    enc.identity = f"{_identity(root, enc.name)}+tok:{_identity(root, tok_sub)}"
    return enc


def model_identity(path_or_id, subfolder: str | None = None, *, setting=DEFAULT_SETTING, revision=None) -> str:
    """A stable id for cache keys: hub repo@commit[/subfolder], or a hash of a local folder's files."""
    return _identity(resolve_root(path_or_id, setting, revision), subfolder)


def _identity(root: ModelRoot, subfolder: str | None) -> str:
    """hub:repo@commit/sub for cached hub repos; local:<sha256 of small files' bytes and weights' size+mtime>."""
    if root.repo_id:
        return f"hub:{root.repo_id}@{root.commit}" + (f"/{subfolder}" if subfolder else "")
    folder = root.path / subfolder if subfolder else root.path
    if not folder.is_dir():
        raise ModelNotFound(f"no {subfolder!r} folder in {root.path}")
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder)):
        stat = path.stat()
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        if path.name.endswith(WEIGHT_SUFFIXES) or stat.st_size > CONTENT_HASH_LIMIT:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            digest.update(path.read_bytes())
    return f"local:{digest.hexdigest()[:20]}"


def _hidden(path: Path, folder: Path) -> bool:
    """Files under dot-folders (.cache, .git) do not change the model."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)
