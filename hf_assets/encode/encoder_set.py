"""The encoders of one run: where they come from, on which device and dtype, loaded only when first used."""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hf_assets import env
from hf_assets.encode.model_files import component_config, component_identity, model_identity, resolve_root
from hf_assets.encode.model_loading import as_dtype, detect_family, load_text_encoders, load_vae

_LOAD_LOCK = threading.RLock()  # threads of one process (a Dask worker) load a model once between them


def resolve_device(device: str) -> torch.device:
    """'auto' is cuda when available, else cpu; 'cuda', 'cuda:N' and 'cpu' are checked."""
    if device in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{env.DEVICE}={device!r}: CUDA is not available on this machine; use 'auto' or 'cpu'")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' is bf16 on cuda and fp32 on cpu; otherwise bf16, fp16 or fp32."""
    if dtype in ("", "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return as_dtype(dtype)


@dataclass
class Encoders:
    """A VAE and the text encoders of one pipeline, loaded lazily and kept for the process."""

    model: str
    vae_path: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    log: Callable[[str], None] = logging.getLogger(__name__).info
    depth_model: str = ""  # the DPT model of depth conditioning datasets ("": SimpleTuner's default)
    _vae: Any = None
    _text: list | None = None
    _depth: Any = None

    def __post_init__(self):
        if not self.model and not self.vae_path:
            raise ValueError(
                f"no model configured: set {env.MODEL} to a diffusers pipeline folder or hub id "
                "(e.g. stabilityai/stable-diffusion-xl-base-1.0)"
            )
        if self.model:
            resolve_root(self.model, env.MODEL)
        if self.vae_path:
            resolve_root(self.vae_path, env.VAE)

    @property
    def vae_source(self) -> tuple[str, str | None, str]:
        """(path or id, subfolder, setting name) the VAE loads from."""
        if self.vae_path:
            return self.vae_path, None, env.VAE
        return self.model, "vae", env.MODEL

    def vae_identity(self) -> str:
        """A stable identity of the VAE weights, computed without loading them, of the folder `vae()` loads:
        the pipeline's vae subfolder, or the root when HF_ASSETS_MODEL is itself a VAE."""
        path, sub, setting = self.vae_source
        return component_identity(path, sub, setting=setting)

    def vae_config(self) -> dict:
        """The VAE's config.json (scaling factors, channels, blocks) without loading weights."""
        path, sub, setting = self.vae_source
        return component_config(path, sub, setting=setting)

    def vae(self):
        """The VAE, loaded on first use."""
        with _LOAD_LOCK:
            return self._load_vae()

    def _load_vae(self):
        if self._vae is None:
            path, sub, setting = self.vae_source
            self.log(f"loading VAE from {path}{'/' + sub if sub else ''} on {self.device} as {self.dtype}")
            self._vae = load_vae(path, sub, self.dtype, self.device, setting=setting)
        return self._vae

    @property
    def depth_source(self) -> str:
        """The folder or hub id the depth model loads from."""
        from hf_assets.encode.depth import DEFAULT_DEPTH_MODEL

        return self.depth_model or DEFAULT_DEPTH_MODEL

    def depth_identity(self) -> str:
        """A stable identity of the depth model's weights, computed without loading them (it keys depth samples)."""
        return model_identity(self.depth_source, setting=env.DEPTH_MODEL)

    def depth(self):
        """The depth model (`encode.depth.DepthEstimator`) on this device and dtype, loaded on first use."""
        with _LOAD_LOCK:
            if self._depth is None or self._depth.identity != self.depth_identity():  # weights changed in place
                from hf_assets.encode.depth import load_depth_model

                self.log(f"loading the depth model {self.depth_source} on {self.device} as {self.dtype}")
                self._depth = load_depth_model(self.depth_source, self.device, self.dtype)
            return self._depth

    def family(self) -> str:
        """The pipeline family (sd, sdxl, sd3, flux or generic) that picks the text recipe."""
        if not self.model:
            raise ValueError(f"text encoders need {env.MODEL}: only {env.VAE} is set")
        return detect_family(self.model, env.MODEL)

    def text_encoders(self) -> list:
        """The family's text encoders with tokenizers, loaded on first use."""
        with _LOAD_LOCK:
            return self._load_text_encoders()

    def _load_text_encoders(self) -> list:
        if self._text is None:
            self.log(f"loading {self.family()} text encoders from {self.model} on {self.device} as {self.dtype}")
            self._text = load_text_encoders(self.model, self.family(), self.dtype, self.device, setting=env.MODEL)
        return self._text

    def random_weights_note(self) -> str | None:
        """A warning when the pipeline folder says its weights are random (the demo's tiny models)."""
        marker = Path(self.model) / "RANDOM_WEIGHTS" if self.model else None
        if marker is not None and marker.is_file():
            return f"{self.model} holds tiny models with RANDOM weights (demo only); set {env.MODEL} for real ones"
        return None


_SHARED: dict[tuple, Encoders] = {}
_SHARED_LOCK = threading.Lock()
SHARED_MAX = 2


def shared_encoders(
    model: str,
    vae_path: str,
    device: torch.device,
    dtype: torch.dtype,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    depth_model: str = "",
) -> Encoders:
    """The process's one `Encoders` for these settings: a process running many steps (a Dask worker, the in-process
    executor) loads each model once, not once per step."""
    fresh = Encoders(model, vae_path, device, dtype, log=log, depth_model=depth_model)  # checks, loads nothing
    try:  # keyed by the files' identity too: weights changed in place are loaded again
        files = [model_identity(model, setting=env.MODEL) if model else "", fresh.vae_identity()]
    except Exception:  # noqa: BLE001 - an incomplete folder fails with its own message when a model is loaded
        return fresh
    settings = (model, vae_path, str(device), str(dtype), depth_model, *files)
    with _SHARED_LOCK:
        encoders = _SHARED.setdefault(settings, fresh)
        while len(_SHARED) > SHARED_MAX:  # settings changed in a long-lived worker: drop the oldest models
            _SHARED.pop(next(iter(_SHARED)))
        encoders.log = log  # the current step's logger
        return encoders


TEXT_PARTS = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3")


def text_identity(encoders: Encoders, max_length: int) -> dict:
    """Everything that changes a caption's embeddings, computed without loading a model."""
    from hf_assets.encode.text import RECIPE_VERSION

    root = resolve_root(encoders.model, env.MODEL).path
    parts = {p: model_identity(encoders.model, p, setting=env.MODEL) for p in TEXT_PARTS if (root / p).is_dir()}
    if not parts:  # a bare single-model folder or repo: the encoder (and its tokenizer) is the root
        parts = {"root": model_identity(encoders.model, None, setting=env.MODEL)}
    family = encoders.family()
    if family in ("sd", "sdxl"):
        max_length = 0  # CLIP-only recipes always use 77 tokens: the setting changes nothing
    return {
        "family": family,
        "recipe_version": RECIPE_VERSION,
        "parts": parts,
        "dtype": str(encoders.dtype).removeprefix("torch."),
        "max_length": max_length,
    }
