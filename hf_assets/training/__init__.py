"""The trainer's door: prepared backends as torch Datasets and same-size batch samplers (no Dagster import)."""

from hf_assets.training.dataset import CachedSamples, MultiBackendSamples
from hf_assets.training.sampler import (
    SHORT_BUCKET_POLICIES,
    BucketBatchSampler,
    MultiBackendSampler,
    SamplerSummary,
)

__all__ = [
    "SHORT_BUCKET_POLICIES",
    "BucketBatchSampler",
    "CachedSamples",
    "MultiBackendSampler",
    "MultiBackendSamples",
    "SamplerSummary",
]
