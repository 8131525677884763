"""The dataloader config: parsed once into typed objects."""

from hf_assets.config.loader import ConfigError, config_path_from_env, load_config, parse_config
from hf_assets.config.schema import (
    BackendConfig,
    BucketConfig,
    CaptionConfig,
    CompositeConfig,
    DataloaderConfig,
    FilterConfig,
)

__all__ = [
    "BackendConfig",
    "BucketConfig",
    "CaptionConfig",
    "CompositeConfig",
    "ConfigError",
    "DataloaderConfig",
    "FilterConfig",
    "config_path_from_env",
    "load_config",
    "parse_config",
]
