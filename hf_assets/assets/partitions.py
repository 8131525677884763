"""One static partition per enabled dataset backend of the dataloader config."""

import dagster as dg

from hf_assets.config import DataloaderConfig


def backend_partitions(config: DataloaderConfig) -> dg.StaticPartitionsDefinition:
    """The partitions definition shared by every asset: the backend ids, in file order."""
    return dg.StaticPartitionsDefinition(config.backend_ids)
