"""Locate and load a pipeline's VAE and text encoders through from_pretrained, and name them for cache keys."""

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hf_assets import env

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


# What a download fetches: only what the encoders load, never the denoiser, single-file checkpoints or other formats.
PIPELINE_FILES = ["model_index.json", "vae/*", "text_encoder*/*", "tokenizer*/*"]
VAE_FILES = ["config.json", "diffusion_pytorch_model*.safetensors"]  # what AutoencoderKL loads
IGNORED_FILES = [
    "*.bin",
    "*.msgpack",
    "*.onnx",
    "*.onnx_data",
    "*.h5",
    "*.ckpt",
    "*.fp16.*",
]  # never loaded (no variant)


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


def download_patterns(setting: str = env.MODEL) -> tuple[list[str], list[str]]:
    """(allow_patterns, ignore_patterns) of snapshot_download for a model named by `setting`.

    HF_ASSETS_VAE names a bare VAE repo (config.json and weights at the root); anything else a pipeline repo,
    of which only model_index.json and the vae, text_encoder* and tokenizer* folders are fetched, as safetensors.
    """
    if setting == env.VAE:
        return list(VAE_FILES), []
    return list(PIPELINE_FILES), list(IGNORED_FILES)


def missing_weights(folder: Path, setting: str = env.MODEL) -> list[str]:
    """The component folders the encoders need ("." for the root) that hold no complete set of weight files.

    A pipeline needs the vae and text_encoder* components its model_index.json names (or, without one, those
    present); a bare model (and any HF_ASSETS_VAE) needs its root.
    """
    if not folder.is_dir():
        return ["."]
    index = {} if setting == env.VAE else _model_index(folder)
    if index:
        needed = sorted(n for n, v in index.items() if _encoder_part(n) and isinstance(v, list) and v and v[0])
    elif setting == env.VAE:
        needed = []
    else:
        needed = sorted(p.name for p in folder.iterdir() if p.is_dir() and _encoder_part(p.name))
    return [name for name in needed or ["."] if not _has_weights(folder / name)]


def _encoder_part(name: str) -> bool:
    return name == "vae" or name.startswith("text_encoder")


def _has_weights(folder: Path) -> bool:
    """A single weight file, or every shard of a sharded checkpoint's *.index.json, in `folder`.

    Files are tested with is_file, which follows a hub snapshot's symlink to its blob: a missing blob is absent.
    """
    if not folder.is_dir():
        return False
    files = [p for p in folder.iterdir() if p.is_file()]
    sharded: set[str] = set()
    for path in files:
        if path.name.endswith(".index.json"):
            try:
                shards = set(json.loads(path.read_text()).get("weight_map", {}).values())
            except (OSError, ValueError, AttributeError):
                continue
            if shards and all((folder / shard).is_file() for shard in shards):
                return True
            sharded |= shards
    return any(p.name.endswith(WEIGHT_SUFFIXES) and p.name not in sharded for p in files)


def resolve_root(path_or_id: str | Path, setting: str = env.MODEL, revision: str | None = None) -> ModelRoot:
    """A local folder as is; a hub id through the local hub cache, downloading the encoders' files only when
    the repo is not cached, or its snapshot is incomplete, and the hub may be contacted; else ModelNotFound."""
    text = str(path_or_id)
    local = Path(text).expanduser()
    if local.is_dir():
        return ModelRoot(local.resolve())
    hint = f"set {setting} to a diffusers pipeline folder or repo id"
    if local.exists():
        raise ModelNotFound(f"{setting}={text!r}: is a file, not a folder; {hint}")
    if not REPO_ID.match(text) or text.startswith("."):
        raise ModelNotFound(f"{setting}={text!r}: no such folder and no cached hub repo; {hint}")
    from huggingface_hub import snapshot_download

    try:
        cached = Path(snapshot_download(text, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
        cached = None
    incomplete = missing_weights(cached, setting) if cached is not None else []
    if cached is not None and not incomplete:
        return ModelRoot(cached, repo_id=text, commit=cached.name)
    if env.hub_offline():
        fix = "unset HF_HUB_OFFLINE so that it is downloaded again"
    else:
        allow, ignore = download_patterns(setting)
        try:  # only what the encoders need: never the denoiser's weights
            snap = Path(snapshot_download(text, revision=revision, allow_patterns=allow, ignore_patterns=ignore))
        except Exception as error:  # noqa: BLE001 - reported with the setting below
            fix = f"the download failed: {str(error).splitlines()[0][:200]}"
        else:
            missing = missing_weights(snap, setting)
            if not missing:
                return ModelRoot(snap, repo_id=text, commit=snap.name)
            expected = (
                "config.json and safetensors weights at its root"
                if setting == env.VAE
                else ("safetensors weights in model_index.json's vae and text_encoder* folders")
            )
            raise ModelNotFound(
                f"{setting}={text!r}: the downloaded snapshot {snap} has no weights in {missing}; "
                f"{setting} needs a repo with {expected}"
                + ("" if setting == env.VAE else f" (a bare VAE repo goes in {env.VAE})")
            )
    if incomplete:
        raise ModelNotFound(
            f"{setting}={text!r}: the cached snapshot {cached} is incomplete (no weights in {incomplete}, "
            f"an interrupted or filtered download); {fix}"
        )
    raise ModelNotFound(
        f"{setting}={text!r}: no such folder and no cached hub repo; {hint}"
        + (f" ({fix})" if not env.hub_offline() else "")
    )


def detect_family(pipeline_dir: str | Path, setting: str = env.MODEL) -> str:
    """'sd', 'sdxl', 'sd3', 'flux', 'wan', 'ltx', 'cogvideox', 'hunyuanvideo' or 'generic' from model_index.json."""
    index = _model_index(resolve_root(pipeline_dir, setting).path)
    name = str(index.get("_class_name", ""))
    for prefix, family in FAMILY_PREFIXES:
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


def load_vae(
    path_or_id, subfolder: str | None = "vae", dtype=torch.float32, device="cpu", *, setting=env.MODEL, revision=None
):
    """The VAE class its config.json names (AutoencoderKL or a video VAE), from_pretrained, in eval mode."""
    import diffusers

    root = resolve_root(path_or_id, setting, revision)
    sub = _component(root, subfolder, setting, path_or_id)
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
    enc.identity = f"{_identity(root, enc.name)}+tok:{_identity(root, tok_sub)}"
    return enc


def model_identity(path_or_id, subfolder: str | None = None, *, setting=env.MODEL, revision=None) -> str:
    """A stable id for cache keys: hub repo@commit[/subfolder], or a hash of a local folder's files."""
    return _identity(resolve_root(path_or_id, setting, revision), subfolder)


def component_identity(path_or_id, subfolder: str | None, *, setting=env.MODEL, revision=None) -> str:
    """model_identity of the folder a loader reads: the subfolder, or the root when the root is that component."""
    root = resolve_root(path_or_id, setting, revision)
    return _identity(root, _component(root, subfolder, setting, path_or_id))


def component_config(path_or_id, subfolder: str | None, *, setting=env.MODEL, revision=None) -> dict:
    """The config.json of the folder a loader reads (the subfolder, or the root when it is that component)."""
    root = resolve_root(path_or_id, setting, revision)
    sub = _component(root, subfolder, setting, path_or_id)
    return json.loads(((root.path / sub if sub else root.path) / "config.json").read_text())


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
