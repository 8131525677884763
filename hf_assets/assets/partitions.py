"""One static partition per enabled dataset backend of the dataloader config."""

import warnings

import dagster as dg

from hf_assets.config import DataloaderConfig


def backend_partitions(config: DataloaderConfig) -> dg.StaticPartitionsDefinition:
    """The partitions definition shared by every asset: the backend ids, in file order. A broken backend keeps its
    partition, whose first step fails at once listing its problems."""
    return dg.StaticPartitionsDefinition(config.partition_ids)


def partition_check_specs(
    asset: str,
    checks: dict[str, str],
    partitions: dg.PartitionsDefinition,
    reads: list[str] = (),
    blocking: bool = True,
) -> list[dg.AssetCheckSpec]:
    """Checks whose results belong to one backend partition each (shown per partition in the UI; blocking unless
    told otherwise); `reads`: the other assets they load."""
    with warnings.catch_warnings():  # partitioned check specs are a preview feature of dagster 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name,
                asset=asset,
                blocking=blocking,
                description=text,
                partitions_def=partitions,
                additional_deps=list(reads),
            )
            for name, text in checks.items()
        ]
