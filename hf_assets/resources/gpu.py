"""The accelerator resource: which models encode, on which device, in which dtype and batch sizes."""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr


class EncoderResource(dg.ConfigurableResource):
    """VAE and text encoders of a diffusers pipeline; loaded lazily per process, never at import."""

    model: str = ""  # HF_ASSETS_MODEL: a diffusers pipeline folder or hub id
    vae: str = ""  # HF_ASSETS_VAE: an AutoencoderKL folder or hub id overriding the pipeline's VAE
    device: str = "auto"  # HF_ASSETS_DEVICE: auto, cuda, cuda:N or cpu
    dtype: str = "auto"  # model dtype: bf16 on cuda, fp32 on cpu
    latent_dtype: str = "auto"  # stored latents: bf16 on cuda, fp32 on cpu
    vae_batch_size: int = 8
    text_batch_size: int = 64
    max_length: int = 0  # text sequence length for T5/generic encoders; 0 keeps the model's default
    decode_workers: int = 4
    shard_mb: int = 256

    _encoders: Any = PrivateAttr(default=None)  # hf_assets.encode.encoders.Encoders

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from hf_assets.encode.encoders import Encoders, resolve_device, resolve_dtype  # torch loads in runs only

        device = resolve_device(self.device)
        log = context.log.info if context.log else print
        self._encoders = Encoders(self.model, self.vae, device, resolve_dtype(self.dtype, device), log=log)
        note = self._encoders.random_weights_note()
        if note and context.log:
            context.log.warning(note)

    @property
    def encoders(self):
        if self._encoders is None:
            raise RuntimeError("EncoderResource used outside a run (setup_for_execution was not called)")
        return self._encoders

    @property
    def storage_dtype(self):
        """The dtype latents are stored in."""
        from hf_assets.encode.encoders import resolve_dtype

        return resolve_dtype(self.latent_dtype, self.encoders.device)
