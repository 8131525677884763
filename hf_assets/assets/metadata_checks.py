"""The metadata assets' checks, each its own step reading what its asset stored for one partition (raw_split's
record, filtered_index's kept and dropped rows, aspect_buckets' table): a check runs after its asset in a run, and
alone from the UI ("Execute") or a job selecting only it, rebuilding nothing. They do not block: a failing partition
shows red (and `hf_assets.instance_report` exits 1) while the run goes on, since a high drop rate may be wanted."""

import dagster as dg

from hf_assets.assets.metadata import check_result
from hf_assets.assets.partitions import partition_check_specs
from hf_assets.progress import ProgressLog
from hf_assets.resources.dataloader_config import DataloaderConfigResource

SPLIT_CHECKS = {
    "split_current": "The split raw_split stored still matches its source (the same files, sizes and identities); "
    "else materialize raw_split, filtered_index and aspect_buckets again (job scan_datasets).",
}
INDEX_CHECKS = {
    "drop_rate": "filtered_index dropped at most max_drop_rate of the split's rows (entry key, default 0.5): "
    "filters, size limits, corrupt rows; rows left out by max_num_samples are not counted.",
}
BUCKET_CHECKS = {
    "buckets_not_empty": "aspect_buckets' stored table holds at least one bucket with samples.",
}
METADATA_CHECKS = {"raw_split": SPLIT_CHECKS, "filtered_index": INDEX_CHECKS, "aspect_buckets": BUCKET_CHECKS}


def _specs(asset: str, partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return partition_check_specs(asset, METADATA_CHECKS[asset], partitions, blocking=False)


def build_metadata_checks(partitions: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """raw_split's, filtered_index's and aspect_buckets' checks over the given backend partitions."""

    @dg.multi_asset_check(specs=_specs("raw_split", partitions), name="check_raw_split")
    def check_raw_split(context: dg.AssetCheckExecutionContext, dataloader_config: DataloaderConfigResource):
        """Open the source again (a listing, no row read) and compare it with the split raw_split stored; in the
        run that materialized raw_split, its listing is the current one and is not repeated."""
        from hf_assets.data.metadata_verify import split_current
        from hf_assets.data.sources import open_split

        backend = dataloader_config.backend(context.partition_key)
        with ProgressLog(context.log.info).waiting(f"{backend.id}: comparing the stored split with its source"):
            finding, figures = split_current(
                backend.metadata_dir, backend, open_split, run_id=context.op_execution_context.run_id
            )
        yield check_result(context, "split_current", finding, asset="raw_split", figures=figures)

    @dg.multi_asset_check(specs=_specs("filtered_index", partitions), name="check_filtered_index")
    def check_filtered_index(context: dg.AssetCheckExecutionContext, dataloader_config: DataloaderConfigResource):
        """Count the stored index's rows (its footer) and the stored drop record's reasons."""
        from hf_assets.data.metadata_verify import drop_rate

        backend = dataloader_config.backend(context.partition_key)
        finding, figures = drop_rate(backend.metadata_dir, backend)
        yield check_result(context, "drop_rate", finding, asset="filtered_index", figures=figures)

    @dg.multi_asset_check(specs=_specs("aspect_buckets", partitions), name="check_aspect_buckets")
    def check_aspect_buckets(context: dg.AssetCheckExecutionContext, dataloader_config: DataloaderConfigResource):
        """Count the stored bucket table's rows and buckets."""
        from hf_assets.data.metadata_verify import buckets_not_empty

        backend = dataloader_config.backend(context.partition_key)
        finding, figures = buckets_not_empty(backend.metadata_dir, backend)
        yield check_result(context, "buckets_not_empty", finding, asset="aspect_buckets", figures=figures)

    return [check_raw_split, check_filtered_index, check_aspect_buckets]
