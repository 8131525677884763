"""The accelerator resource: which models encode, on which device, in which dtype and batch sizes, and the device
and threads each shard step encodes with.

Every setting has an environment variable, `HF_ASSETS_<SETTING>` (e.g. `HF_ASSETS_MODEL`). They merge field by
field: a setting given in the run config (launchpad or `--config-json`) wins, the run's environment fills every
setting the run config leaves out, then values bound in code, then the built-in defaults.

The model is chosen per backend (`for_backend`): the run config's `model`, else the backend's own
`pretrained_model_name_or_path`, else HF_ASSETS_VIDEO_MODEL for a video backend, else HF_ASSETS_MODEL. Nothing is
loaded or checked when a run starts, so a run of the metadata assets alone needs no model.
"""

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import dagster as dg
from pydantic import Field, PrivateAttr, ValidationError

from hf_assets.config.backend_models import ModelChoice, choose_model
from hf_assets.env import resource_variable

RESOURCE_KEY = "encoders"  # the key this resource is bound to in the Definitions (its run config lives under it)
MAX_CUDA_INDEX = 16

Dtype = Literal["auto", "bf16", "fp16", "fp32"]
Compile = Literal["auto", "off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
MemoryFormat = Literal["auto", "nchw", "channels_last"]
Decode = Literal["pillow", "nvjpeg"]
# The settings that change what is encoded (the others change only how fast).
RESULT_SETTINGS = ("model", "vae", "depth_model", "device", "dtype", "latent_dtype", "max_length", "decode")
Device = Literal["auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(MAX_CUDA_INDEX))]  # type: ignore[valid-type]


class EncodersResource(dg.ConfigurableResource):
    """VAE and text encoders of a diffusers pipeline; loaded lazily per process, never at import."""

    model: str = Field(
        default="",
        description="HF_ASSETS_MODEL: a diffusers pipeline folder or hub id; its vae, text_encoder* and tokenizer* "
        "subfolders are loaded (e.g. stabilityai/stable-diffusion-xl-base-1.0).",
    )
    vae: str = Field(
        default="",
        description="HF_ASSETS_VAE: an AutoencoderKL folder or hub id replacing the pipeline's VAE "
        "(e.g. madebyollin/sdxl-vae-fp16-fix for fp16 SDXL). Empty: the pipeline's own VAE.",
    )
    depth_model: str = Field(
        default="",
        description="HF_ASSETS_DEPTH_MODEL: the DPT depth model (DPTForDepthEstimation folder or hub id) of depth "
        "conditioning datasets, loaded once per step on the step's device. Empty: Intel/dpt-large, as SimpleTuner.",
    )
    device: Device = Field(
        default="auto",
        description="HF_ASSETS_DEVICE: auto (cuda when available, else cpu), cpu, cuda or cuda:N.",
    )
    dtype: Dtype = Field(
        default="auto",
        description="HF_ASSETS_DTYPE: the models' dtype. auto is bf16 on cuda, fp32 on cpu.",
    )
    latent_dtype: Dtype = Field(
        default="auto",
        description="HF_ASSETS_LATENT_DTYPE: the dtype latents are stored in. auto is bf16 on cuda, fp32 on cpu.",
    )
    vae_batch_size: int = Field(
        default=0,
        ge=0,
        description="HF_ASSETS_VAE_BATCH_SIZE: images per VAE forward pass. 0: on cuda the most images of each bucket "
        "shape that fit the free memory (measured with one image), at most 32 megapixels a batch (32 at 1024x1024, "
        "128 at 512x512); on cpu 8. Halved for a shape that runs out of memory, and remembered.",
    )
    text_batch_size: int = Field(
        default=64, ge=1, description="HF_ASSETS_TEXT_BATCH_SIZE: captions per text-encoder forward pass."
    )
    max_length: int = Field(
        default=0,
        ge=0,
        description="HF_ASSETS_MAX_LENGTH: token length for T5 and generic text encoders; 0 keeps the model's "
        "default (CLIP always uses 77).",
    )
    decode_workers: int = Field(
        default=0,
        ge=0,
        description="HF_ASSETS_DECODE_WORKERS: threads decoding and resizing images ahead of the VAE. 0: the cores "
        "this process may use (CPU affinity, container quota) divided among the GPUs whose steps encode at once on "
        "the machine (all of them under the multiprocess and dask executors), less one per GPU for the thread "
        "driving it; at least 1.",
    )
    compile: Compile = Field(
        default="auto",
        description="HF_ASSETS_COMPILE: torch.compile the image VAE's encoder, one static graph per bucket shape "
        "(compile time logged; compiled graphs cached on disk, see compile_cache). auto: 'default' on cuda (1.7x "
        "eager on an H200, bf16, 1024x1024), off on cpu. A named mode also compiles the text encoders.",
    )
    compile_cache: str = Field(
        default="",
        description="HF_ASSETS_COMPILE_CACHE: folder of the compiled graphs a later process loads instead of "
        "compiling again (put it on a shared disk for a cluster). Empty: ~/.cache/hf_assets/torch_compile "
        "($XDG_CACHE_HOME); TORCHINDUCTOR_CACHE_DIR, when set, wins.",
    )
    memory_format: MemoryFormat = Field(
        default="auto",
        description="HF_ASSETS_MEMORY_FORMAT: memory layout of the image VAE and its input (always the same for "
        "both). auto: nchw (on an H200 in bf16 channels_last ran the SD/SDXL encoder at 0.57x).",
    )
    decode: Decode = Field(
        default="pillow",
        description="HF_ASSETS_DECODE: pillow decodes and resizes (LANCZOS) on the decode threads; nvjpeg decodes "
        "JPEGs on the GPU and resizes them there (antialiased bicubic), other formats and failures with Pillow; "
        "needs cuda and torchvision (pip install 'hf_assets[gpu-decode]'). Part of the latent cache key.",
    )
    shard_mb: int = Field(
        default=256, ge=1, description="HF_ASSETS_SHARD_MB: size of one safetensors shard of the caches, in MiB."
    )
    cpu_threads: int = Field(
        default=0,
        ge=0,
        description="HF_ASSETS_CPU_THREADS: torch threads of a shard step on CPU, the same on every executor (a CPU "
        "convolution's rounding follows the thread count); 0 is the machine's cores.",
    )
    full_verify: bool = Field(
        default=False,
        description="HF_ASSETS_FULL_VERIFY: read every cached shard again (header and every value) instead of only "
        "those changed since they were last verified; for files changed with their modification time kept.",
    )

    _device: Any = PrivateAttr(default=None)  # the torch device, resolved when a run sets the resource up
    _dtype: Any = PrivateAttr(default=None)  # the models' torch dtype
    _given: frozenset = PrivateAttr(default=frozenset())  # the settings the run config names
    _log: Any = PrivateAttr(default=print)
    _by_backend: dict = PrivateAttr(default_factory=dict)  # backend id -> its Encoders

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """setting -> the environment variable that sets it."""
        return {name: resource_variable(name) for name in cls.model_fields}

    def result_settings(self) -> dict[str, str]:
        """The settings that change what is encoded (models, device, dtypes, caption length, decode path), as text:
        part of the encoder assets' code version. Batch sizes, workers, compilation and shard size are not."""
        return {name: str(getattr(self, name)) for name in RESULT_SETTINGS}

    @classmethod
    def from_environment(
        cls, given: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> "EncodersResource":
        """The settings in `given`, each other one from its environment variable when set, else its default.

        A bad value is reported with the setting and where it came from (run config or the variable's name).
        """
        environ = os.environ if environ is None else environ
        given = dict(given or {})
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name, variable in cls.env_names().items():
            if name in given:
                values[name], origin[name] = given[name], f"run config resources.{RESOURCE_KEY}.config.{name}"
            elif environ.get(variable, "").strip():
                values[name], origin[name] = environ[variable].strip(), f"environment variable {variable}"
        try:
            return cls(**values)
        except ValidationError as error:
            problems = []
            for item in error.errors():
                name = str(item["loc"][0]) if item["loc"] else "?"
                problems.append(f"{name} (from {origin.get(name, 'default')}) = {values.get(name)!r}: {item['msg']}")
            raise ValueError("invalid encoder setting(s): " + "; ".join(problems)) from None

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["EncodersResource"]:
        """Set up a copy whose settings are the run config's, filled in from the environment field by field.

        Dagster hands a resource either the Definitions' values (no run config for it) or the run config with
        every other field at its class default; the environment is merged back here, where the raw run config
        tells which fields the user actually set.
        """
        environ = {**{name: str(v) for name, v in self._bound_in_definitions().items()}, **os.environ}
        given = given_in_run_config(context)
        effective = self.from_environment(given, environ)
        effective._given = frozenset(given)
        if context.log:
            context.log.info(f"encoder settings: {effective.settings()}")
        effective.setup_for_execution(context)
        try:
            yield effective
        finally:
            effective.teardown_after_execution(context)

    def _bound_in_definitions(self) -> dict[str, Any]:
        """env name -> value of the settings bound in code that differ from the class defaults.

        They rank below the environment of the run: `encoder_resource()` binds the environment read when the
        definitions loaded, and a variable changed since (or set only for the run) must win over that copy.
        """
        names = self.env_names()
        return {
            names[name]: getattr(self, name)
            for name, f in type(self).model_fields.items()
            if getattr(self, name) != f.default
        }

    def settings(self) -> dict[str, Any]:
        """The setting values, by name."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from hf_assets.encode.encoder_set import resolve_device, resolve_dtype  # torch: runs only

        # Only the device and dtype: the models are the backends' (`for_backend`), found and loaded when a step
        # first needs them, so a run of assets that need no model never asks for one.
        self._device = resolve_device(self.device)
        self._dtype = resolve_dtype(self.dtype, self._device)
        self._log = context.log.info if context.log else print

    @property
    def resolved_device(self):
        """The torch device the encoders run on (`device`, "auto" resolved)."""
        if self._device is None:
            raise RuntimeError("EncodersResource used outside a run (setup_for_execution was not called)")
        return self._device

    def model_choice(self, backend) -> "ModelChoice":
        """Which pipeline and VAE encode `backend`, and where each came from (see the module's docstring)."""
        return choose_model(backend, self.model, self.vae, self._given, f"run config resources.{RESOURCE_KEY}.config")

    def for_backend(self, backend, log: Callable[[str], None] | None = None):
        """This process's `hf_assets.encode.encoder_set.Encoders` for `backend` (models load when first used)."""
        from hf_assets.encode.encoder_set import shared_encoders

        log = log or self._log
        choice = self.model_choice(backend)
        if not choice.model and not choice.vae:
            raise ValueError(choice.missing_message(backend.id))
        try:
            encoders = shared_encoders(
                choice.model, choice.vae, self.resolved_device, self._dtype, log=log, depth_model=self.depth_model
            )
        except (ValueError, OSError) as error:  # a folder or repo that is not there: name where the setting came from
            raise type(error)(choice.explain(str(error))) from None
        if backend.id not in self._by_backend:
            log(f"{backend.id}: encoding with {choice.describe()}")
            note = encoders.random_weights_note()
            if note:
                log(f"WARNING: {note}")
        self._by_backend[backend.id] = encoders
        return encoders

    @property
    def shard_bytes(self) -> int:
        """The size of one safetensors shard of the caches, in bytes."""
        return self.shard_mb << 20

    def encode_settings(self):
        """The `hf_assets.encode.engine_types.EncodeSettings` of a latent encoding job with these settings."""
        from hf_assets.cores import usable_cores
        from hf_assets.encode.compiled import resolve_compile
        from hf_assets.encode.decode_workers import default_decode_workers
        from hf_assets.encode.engine_types import EncodeSettings

        device = self.resolved_device
        if self.decode == "nvjpeg" and device.type != "cuda":
            raise ValueError(f"decode=nvjpeg decodes on the GPU, but the encoders run on {device}: use decode=pillow")
        return EncodeSettings(
            batch_size=self.vae_batch_size,
            decode_workers=self.decode_workers or default_decode_workers(usable_cores(), concurrent_gpus(device)),
            shard_bytes=self.shard_bytes,
            model_dtype=str(self._dtype),
            latent_dtype=str(self.resolved_latent_dtype),
            compile=resolve_compile(self.compile, device),
            memory_format=self.memory_format,
            decode=self.decode,
            compile_cache=self.compile_cache,
        )

    @contextlib.contextmanager
    def for_shard(self, backend, shard: int, log: Callable[[str], None] = print) -> Iterator[Any]:
        """The `Encoders` one shard step of `backend` encodes with, set up for the step.

        On CPU, `cpu_threads` torch threads, whatever the executor set (Dask workers start with OMP_NUM_THREADS=1),
        so the same latents come out bitwise on every executor. On a machine whose GPUs several steps share at once
        (multiprocess, a Dask worker with many GPUs), a GPU of its own, preferring shard mod GPUs, held by a lock
        file until the step ends. Elsewhere this resource's device.
        """
        import torch

        from hf_assets.encode.devices import claim_device
        from hf_assets.encode.encoder_set import shared_encoders
        from hf_assets.executors import executor_name

        loaded = self.for_backend(backend, log)
        if loaded.device.type == "cpu":
            before = torch.get_num_threads()
            torch.set_num_threads(self.cpu_threads or os.cpu_count() or 1)
            try:
                yield loaded
            finally:
                torch.set_num_threads(before)
            return
        count = torch.cuda.device_count() if loaded.device.type == "cuda" else 0
        if loaded.device.index is not None or count < 2 or executor_name() == "in_process":
            yield loaded
            return
        with claim_device(count, shard, log=log) as index:
            log(f"shard {shard} encodes on cuda:{index} of {count}")
            device = torch.device("cuda", index)
            yield shared_encoders(loaded.model, loaded.vae_path, device, loaded.dtype, log, loaded.depth_model)

    @property
    def text_compile(self) -> str:
        """The torch.compile mode of the text encoders: only a mode named outright (auto leaves them eager: the
        measured gain is the VAE's)."""
        return "off" if self.compile == "auto" else self.compile

    @property
    def resolved_latent_dtype(self):
        """The torch dtype latents are stored in: the latent_dtype setting, "auto" resolved for the device."""
        from hf_assets.encode.encoder_set import resolve_dtype

        return resolve_dtype(self.latent_dtype, self.resolved_device)


def concurrent_gpus(device) -> int:
    """GPUs whose steps encode at once on this machine: every visible one under the executors that run steps side
    by side (multiprocess, dask), else one (in-process runs its steps one after another; a k8s pod has its own)."""
    if device.type != "cuda":
        return 1
    from hf_assets.executors import executor_name, visible_gpus

    return max(1, visible_gpus()) if executor_name() in ("multiprocess", "dask") else 1


def given_in_run_config(context: dg.InitResourceContext) -> dict[str, Any]:
    """The encoder settings the run's own config names (not Dagster's filled-in defaults); {} when none."""
    run = context.dagster_run
    resources = (run.run_config or {}).get("resources") if run is not None else None
    entry = (resources or {}).get(RESOURCE_KEY) or {}
    config = entry.get("config") if isinstance(entry, Mapping) else None
    if not isinstance(config, Mapping):
        return {}
    resolved = context.resource_config or {}
    # Take the processed value (EnvVar and coercions resolved) of each field the user wrote.
    return {name: resolved.get(name, value) for name, value in config.items()}
