"""The trainer's door: prepared backends as torch Datasets and same-bucket batch samplers (no Dagster import)."""

from hf_assets.training.dataset import CachedSamples, MultiBackendSamples
from hf_assets.training.sampler import BucketBatchSampler, MultiBackendSampler

__all__ = ["BucketBatchSampler", "CachedSamples", "MultiBackendSampler", "MultiBackendSamples"]
