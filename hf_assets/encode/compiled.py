"""torch.compile for the encoders: one static graph per input shape, each compile timed and logged, the compiled code
cached on disk so that the next process loads it instead of compiling again.

Static graphs (`dynamic=False`): a run has a few bucket shapes, each compiled once; a dynamic-shape graph (what
torch.compile falls back to after the second shape) ran every shape slower than eager on an H200
(field notes §6). The recompile limit is raised so that those few shapes never hit it.
"""

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
RECOMPILE_LIMIT = 64  # graphs per compiled function: bucket shapes x the batch sizes they run at
INDUCTOR_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"  # inductor's FX graph, AOTAutograd and Triton kernel caches


def resolve_compile(mode: str, device: torch.device) -> str:
    """'auto' is 'default' on cuda (the measured gain, field notes §6) and 'off' elsewhere; other modes are kept."""
    if mode in ("", "auto"):
        return "default" if device.type == "cuda" else "off"
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile={mode!r}: choose auto or one of {', '.join(COMPILE_MODES)}")
    return mode


def default_cache_dir() -> Path:
    """Where compiled graphs are kept between processes: $XDG_CACHE_HOME/hf_assets/torch_compile (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hf_assets" / "torch_compile"


def use_compile_cache(directory: str | Path | None, log: Callable[[str], None] = print) -> Path:
    """Keep inductor's on-disk caches in `directory` (default `default_cache_dir()`) and return where they are.

    An explicit TORCHINDUCTOR_CACHE_DIR wins (a cluster may point every worker at one shared folder). The
    variable is what inductor reads each time it looks for a compiled graph, so it is set in this process's
    environment; the caches are keyed by torch version, device and graph, so one folder serves every model.
    """
    if os.environ.get(INDUCTOR_CACHE_ENV):
        return Path(os.environ[INDUCTOR_CACHE_ENV])
    folder = Path(directory).expanduser() if directory else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[INDUCTOR_CACHE_ENV] = str(folder.resolve())
    log(f"compiled graphs are cached in {folder}")
    return folder


def raise_recompile_limit(limit: int = RECOMPILE_LIMIT) -> None:
    """Let each compiled function hold `limit` static graphs (torch's default, 8, is below a run's bucket shapes)."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(int(getattr(config, name)), limit))


def cache_counters() -> dict[str, int]:
    """inductor's FX graph cache hits and misses so far in this process."""
    from torch._dynamo.utils import counters

    inductor = counters["inductor"]
    return {"hits": int(inductor["fxgraph_cache_hit"]), "misses": int(inductor["fxgraph_cache_miss"])}


class StaticCompiled:
    """`fn` under torch.compile with one static graph per input shape; the first call of each shape is timed and
    logged (with whether inductor's on-disk cache served it)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        mode: str,
        what: str,
        log: Callable[[str], None] = logging.getLogger(__name__).info,
        backend: str | Callable = "inductor",
    ):
        if mode == "off":
            raise ValueError("StaticCompiled: mode 'off' means no compile; call fn directly")
        raise_recompile_limit()
        options = {"mode": None if mode == "default" else mode} if backend == "inductor" else {}
        self.compiled = torch.compile(fn, dynamic=False, backend=backend, **options)
        self.mode, self.what, self.log = mode, what, log
        self.compile_seconds: dict[tuple, float] = {}  # input signature -> seconds its first call took

    def __call__(self, *args, **kwargs):
        tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]
        signature = tuple((tuple(t.shape), t.dtype, t.device.type) for t in tensors)
        signature += tuple((k, v) for k, v in sorted(kwargs.items()) if not isinstance(v, torch.Tensor))
        if signature in self.compile_seconds:
            return self.compiled(*args, **kwargs)
        before, started = cache_counters(), time.perf_counter()
        result = self.compiled(*args, **kwargs)
        if tensors and tensors[0].device.type == "cuda":
            torch.cuda.synchronize(tensors[0].device)
        seconds = time.perf_counter() - started
        self.compile_seconds[signature] = seconds
        after = cache_counters()
        hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
        source = " (from the on-disk cache)" if hits and not misses else ""
        shapes = ", ".join("x".join(map(str, t.shape)) + f" {t.dtype}" for t in tensors)
        self.log(f"compiled {self.what} ({self.mode}) for {shapes} in {seconds:.1f}s{source}")
        return result

    @property
    def total_compile_seconds(self) -> float:
        """Seconds spent in first calls (compiling or loading compiled graphs) so far."""
        return sum(self.compile_seconds.values())


def compile_text_encoders(
    encoders: list,
    mode: str,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
    backend: str | Callable = "inductor",
) -> list:
    """Text encoders (`models.TextEncoder`) whose models run compiled, one static graph per batch shape; each model
    is compiled once per process (they are shared), in place."""
    if mode == "off":
        return encoders
    if backend == "inductor":
        use_compile_cache(cache_dir, log)
    for encoder in encoders:
        if not isinstance(encoder.model.forward, StaticCompiled):
            what = f"the text encoder {encoder.name or encoder.kind}"
            encoder.model.forward = StaticCompiled(encoder.model.forward, mode, what, log, backend)
    return encoders
