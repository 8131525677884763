"""The dataloader config: parsed once into typed objects."""

from hf_assets.config.errors import ConfigError
from hf_assets.config.loader import config_path_from_env, load_config, parse_config
from hf_assets.config.schema import (
    BackendConfig,
    BucketConfig,
    CaptionConfig,
    CompositeConfig,
    ConditioningConfig,
    DataloaderConfig,
    DrawSchedule,
    FilterConfig,
    S3Location,
)

__all__ = [
    "BackendConfig",
    "BucketConfig",
    "CaptionConfig",
    "CompositeConfig",
    "ConditioningConfig",
    "ConfigError",
    "DataloaderConfig",
    "DrawSchedule",
    "FilterConfig",
    "S3Location",
    "config_path_from_env",
    "load_config",
    "parse_config",
]
