"""Find a model's folder (local, or in the hub cache, fetching only the encoders) and name its parts for cache keys."""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_assets import env

REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".msgpack", ".h5", ".onnx")
CONTENT_HASH_LIMIT = 16 << 20


# What a download fetches: only what the encoders load, never the denoiser, single-file checkpoints or other formats.
PIPELINE_FILES = ["model_index.json", "vae/*", "text_encoder*/*", "tokenizer*/*"]
VAE_FILES = ["config.json", "diffusion_pytorch_model*.safetensors"]  # what AutoencoderKL loads
# what DPTForDepthEstimation and its preprocessing read (HF_ASSETS_DEPTH_MODEL)
DEPTH_FILES = ["config.json", "preprocessor_config.json", "model*.safetensors*"]
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


@dataclass(frozen=True)
class ModelRoot:
    """Where a model lives on disk, and its hub repo and commit when it came from the hub cache."""

    path: Path
    repo_id: str | None = None
    commit: str | None = None


def download_patterns(setting: str = env.MODEL) -> tuple[list[str], list[str]]:
    """(allow_patterns, ignore_patterns) of snapshot_download for a model named by `setting`.

    HF_ASSETS_VAE names a bare VAE repo (config.json and weights at the root), HF_ASSETS_DEPTH_MODEL a bare depth
    model (also its preprocessor_config.json); anything else a pipeline repo, of which only model_index.json and
    the vae, text_encoder* and tokenizer* folders are fetched, as safetensors.
    """
    if setting == env.VAE:
        return list(VAE_FILES), []
    if setting == env.DEPTH_MODEL:
        return list(DEPTH_FILES), []
    return list(PIPELINE_FILES), list(IGNORED_FILES)


def missing_weights(folder: Path, setting: str = env.MODEL) -> list[str]:
    """The component folders the encoders need ("." for the root) that hold no complete set of weight files.

    A pipeline needs the vae and text_encoder* components its model_index.json names (or, without one, those
    present); a bare model (and any HF_ASSETS_VAE) needs its root.
    """
    if not folder.is_dir():
        return ["."]
    index = {} if setting == env.VAE else model_index(folder)
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


def model_index(root: Path) -> dict:
    """The pipeline's model_index.json, or {} when the folder is a single model."""
    path = root / "model_index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def component_folder(root: ModelRoot, subfolder: str | None, setting: str, value: Any) -> str | None:
    """The subfolder to load from, falling back to the root when the root itself is that component."""
    if subfolder is None or (root.path / subfolder / "config.json").is_file():
        return subfolder
    if (root.path / "config.json").is_file():
        return None
    found = sorted(p.name for p in root.path.iterdir() if (p / "config.json").is_file())
    raise ModelNotFound(
        f"{setting}={str(value)!r}: no {subfolder!r} component in {root.path} (found: {found or 'none'})"
    )


def model_identity(path_or_id, subfolder: str | None = None, *, setting=env.MODEL, revision=None) -> str:
    """A stable id for cache keys: hub repo@commit[/subfolder], or a hash of a local folder's files."""
    return folder_identity(resolve_root(path_or_id, setting, revision), subfolder)


def component_identity(path_or_id, subfolder: str | None, *, setting=env.MODEL, revision=None) -> str:
    """model_identity of the folder a loader reads: the subfolder, or the root when the root is that component."""
    root = resolve_root(path_or_id, setting, revision)
    return folder_identity(root, component_folder(root, subfolder, setting, path_or_id))


def component_config(path_or_id, subfolder: str | None, *, setting=env.MODEL, revision=None) -> dict:
    """The config.json of the folder a loader reads (the subfolder, or the root when it is that component)."""
    root = resolve_root(path_or_id, setting, revision)
    sub = component_folder(root, subfolder, setting, path_or_id)
    return json.loads(((root.path / sub if sub else root.path) / "config.json").read_text())


def folder_identity(root: ModelRoot, subfolder: str | None) -> str:
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
