"""Every environment variable the project reads, by name: the one place they are spelled (no dagster, no torch).

Each setting of the encoders resource has its own variable, `HF_ASSETS_<SETTING>` (see `resource_variable`);
the constants below name the ones the code reads outside the resource as well.
"""

import os
import re

PREFIX = "HF_ASSETS_"

# Settings of the encoders resource (resources/encoders.py), also read by the core's messages and model loading.
MODEL = "HF_ASSETS_MODEL"  # a diffusers pipeline folder or hub id
VAE = "HF_ASSETS_VAE"  # a bare VAE folder or hub id replacing the pipeline's VAE
DEVICE = "HF_ASSETS_DEVICE"
DEPTH_MODEL = "HF_ASSETS_DEPTH_MODEL"  # the DPT depth model of `depth` conditioning generators

# The Definitions and their executor.
DATALOADER_CONFIG = "HF_ASSETS_DATALOADER_CONFIG"  # the dataloader JSON (default: the bundled demo config)
EXECUTOR = "HF_ASSETS_EXECUTOR"  # in_process, multiprocess, dask or k8s
GPUS = "HF_ASSETS_GPUS"  # GPUs this machine gives its steps
SHARDS = "HF_ASSETS_SHARDS"  # vae_latents shards per run (default DEFAULT_SHARDS)
CACHE_LOCK_WAIT = "HF_ASSETS_CACHE_LOCK_WAIT"  # seconds a cache writer waits for another process's lock
# Seconds before a failed step's first retry (default 15; doubling after). In-step fetch retries scale with it.
# The test suite sets 0 so that no test sleeps on a backoff.
RETRY_DELAY = "HF_ASSETS_RETRY_DELAY"
DEFAULT_RETRY_DELAY_S = 15.0

# Seconds between the progress lines of a long step (default 10): count, rate and ETA, also while one item is slow.
PROGRESS_SECONDS = "HF_ASSETS_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 10.0

# SimpleTuner's trainer arguments that its config placeholders name: {model_family} and {output_dir}.
MODEL_FAMILY = "HF_ASSETS_MODEL_FAMILY"
OUTPUT_DIR = "HF_ASSETS_OUTPUT_DIR"

# The demo (examples/run_demo.py): the model its video backends encode with.
VIDEO_MODEL = "HF_ASSETS_VIDEO_MODEL"

# The owners every asset shows in the UI: comma-separated e-mail addresses or team:<name> (default team:hf_assets).
OWNERS = "HF_ASSETS_OWNERS"
DEFAULT_OWNERS = ("team:hf_assets",)

# Hugging Face's own variables, read as huggingface_hub reads them.
HUB_OFFLINE = "HF_HUB_OFFLINE"
HUB_TOKEN = "HF_TOKEN"
HUB_ENDPOINT = "HF_ENDPOINT"


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE says not to contact the Hub (1, true, yes or on, as huggingface_hub reads it)."""
    return os.environ.get(HUB_OFFLINE, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def retry_delay_s() -> float:
    """HF_ASSETS_RETRY_DELAY in seconds (default 15): a retried step's first backoff; every backoff scales with it."""
    value = os.environ.get(RETRY_DELAY, "").strip()
    if not value:
        return DEFAULT_RETRY_DELAY_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{RETRY_DELAY}={value!r}: give a number of seconds, 0 or more")
    return seconds


DEFAULT_SHARDS = 8


def shard_count() -> int:
    """Shards of vae_latents per run: HF_ASSETS_SHARDS, else 8; a clear error for anything but a whole number >= 1."""
    value = os.environ.get(SHARDS, "").strip() or str(DEFAULT_SHARDS)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{SHARDS}={value!r}: give a whole number of shards, at least 1")
    return int(value)


def progress_seconds() -> float:
    """HF_ASSETS_PROGRESS_SECONDS (default 10): the interval of a long step's progress lines."""
    value = os.environ.get(PROGRESS_SECONDS, "").strip()
    if not value:
        return DEFAULT_PROGRESS_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{PROGRESS_SECONDS}={value!r}: give a number of seconds above 0, e.g. 10")
    return seconds


def owners() -> tuple[str, ...]:
    """HF_ASSETS_OWNERS as a tuple of owners (default: team:hf_assets); a clear error for anything Dagster refuses."""
    value = os.environ.get(OWNERS, "").strip()
    if not value:
        return DEFAULT_OWNERS
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    email, team = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+"), re.compile(r"team:[A-Za-z0-9_.-]+")
    if not names or not all(email.fullmatch(n) or team.fullmatch(n) for n in names):
        raise ValueError(
            f"{OWNERS}={value!r}: give comma-separated e-mail addresses or team:<name>, e.g. team:data,ana@example.com"
        )
    return names


def resource_variable(setting: str) -> str:
    """The environment variable of one encoders-resource setting: `model` -> `HF_ASSETS_MODEL`."""
    return PREFIX + setting.upper()
