"""Which model encodes each backend: its own `pretrained_model_name_or_path` and
`pretrained_vae_model_name_or_path` (hf_assets extensions), for a conditioning dataset that names none its source's
(both sides of a pair are encoded by one VAE), merged with the run config and the environment (`choose_model`)."""

import os
from dataclasses import dataclass, replace

from hf_assets import env
from hf_assets.config.schema import BackendConfig


def inherit_models(backends: list[BackendConfig]) -> list[BackendConfig]:
    """The backends, each conditioning dataset without a model of its own given its source's model and VAE."""
    by_id = {b.id: b for b in backends}
    out = []
    for backend in backends:
        source = by_id.get(backend.conditioning.source or "")
        if source is not None and backend.model is None and backend.vae_model is None:
            backend = replace(backend, model=source.model, vae_model=source.vae_model)
        out.append(backend)
    return out


@dataclass(frozen=True)
class ModelChoice:
    """The pipeline and VAE that encode one backend, and where each setting came from (for messages)."""

    model: str
    model_origin: str
    vae: str
    vae_origin: str

    def describe(self) -> str:
        """ "model X (from ...)", with the VAE when one replaces the pipeline's."""
        text = f"model {self.model!r} ({self.model_origin})" if self.model else "no pipeline"
        return text + (f", VAE {self.vae!r} ({self.vae_origin})" if self.vae else "")

    def explain(self, message: str) -> str:
        """A loader's message, its variable names replaced by where this backend's setting really came from."""
        for name, origin in ((env.MODEL, self.model_origin), (env.VAE, self.vae_origin)):
            if origin and not origin.endswith(name):
                message = message.replace(name, origin)
        return message

    @staticmethod
    def missing_message(backend_id: str) -> str:
        return (
            f"backend '{backend_id}' has no model to encode with: set pretrained_model_name_or_path in its entry of "
            f"the dataloader config (a diffusers pipeline folder or hub id), or {env.MODEL} "
            f"({env.VIDEO_MODEL} for video backends), or `model` in the run's encoders config; the metadata assets "
            "(raw_split, filtered_index, aspect_buckets, bucket_previews: the scan_datasets job) need none"
        )


def choose_model(
    backend: BackendConfig, model: str, vae: str, given: frozenset | set = frozenset(), run_config: str = "run config"
) -> ModelChoice:
    """The pipeline and VAE of `backend`: the run config's `model` (with `vae`), else the backend's own keys, else
    HF_ASSETS_VIDEO_MODEL for a video backend, else `model` and `vae` from the environment (HF_ASSETS_MODEL,
    HF_ASSETS_VAE). A VAE from the environment goes with the environment's pipeline only: it never replaces the
    VAE of a pipeline the backend names (an image VAE must not encode clips). `given`: the settings the run config
    names; `run_config`: where they are, for messages."""
    given_vae = (vae, f"{run_config}.vae") if "vae" in given and vae else None
    env_vae = (vae, f"environment variable {env.VAE}") if vae else ("", "")
    if "model" in given and model:
        return ModelChoice(model, f"{run_config}.model", *(given_vae or env_vae))
    own = f"backend '{backend.id}' key"
    if backend.model or backend.vae_model:
        own_vae = (backend.vae_model, f"{own} pretrained_vae_model_name_or_path") if backend.vae_model else ("", "")
        return ModelChoice(backend.model or "", f"{own} pretrained_model_name_or_path", *(given_vae or own_vae))
    video_model = os.environ.get(env.VIDEO_MODEL, "").strip()
    if backend.dataset_type == "video" and video_model:
        return ModelChoice(video_model, f"environment variable {env.VIDEO_MODEL}", *(given_vae or ("", "")))
    return ModelChoice(model, f"environment variable {env.MODEL}" if model else "", *(given_vae or env_vae))
