"""The dataloader config as a Dagster resource: parsed once per process, re-read when the file changes."""

from functools import lru_cache
from pathlib import Path

import dagster as dg

from hf_assets.config import BackendConfig, DataloaderConfig, load_config


@lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int) -> DataloaderConfig:
    return load_config(path, strict=False)


def cached_config(path: str) -> DataloaderConfig:
    """The parsed config at `path`, from cache unless the file changed. A broken backend does not stop the others:
    `backend()` raises its problems (a ConfigError) for it alone."""
    return _parsed(path, Path(path).stat().st_mtime_ns)


class DataloaderConfigResource(dg.ConfigurableResource):
    """Where the SimpleTuner dataloader JSON lives; gives typed backend configs."""

    path: str

    def config(self) -> DataloaderConfig:
        return cached_config(self.path)

    def backend(self, backend_id: str) -> BackendConfig:
        return self.config().backend(backend_id)
