"""Read back what runs stored in the Dagster instance: per backend, each asset's latest materialization and each
check's latest result. For CI after `dagster asset materialize`:

    DAGSTER_HOME=... python -m hf_assets.instance_report photos grids    # no ids: every backend

prints one JSON object and exits 1 when an asset of a partition was never materialized or a check failed or never ran.
"""

import argparse
import json
import sys

import dagster as dg

from hf_assets.dagster_internals import latest_check_evaluation

SCALARS = (int, float, str, bool)


def _scalar_metadata(metadata) -> dict:
    return {
        k: v.value for k, v in metadata.items() if isinstance(v.value, SCALARS) and not str(v.value).startswith("![")
    }


def partition_report(instance: dg.DagsterInstance, defs: dg.Definitions, partition: str) -> dict:
    """{"assets": {asset: {run_id, metadata}}, "checks": {asset:check: passed}, "ok": bool} for one partition."""
    assets, checks, ok = {}, {}, True
    graph = defs.resolve_asset_graph()  # checks on their own steps included
    for key in sorted(defs.resolve_all_asset_keys(), key=lambda k: k.to_user_string()):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        if not records:
            assets[key.to_user_string()] = None
            ok = False
            continue
        materialization = records[0].asset_materialization
        assets[key.to_user_string()] = {
            "run_id": records[0].run_id,
            "metadata": _scalar_metadata(materialization.metadata),
        }
        for check_key in sorted(graph.get_check_keys_for_assets({key}), key=lambda k: k.name):
            evaluation = latest_check_evaluation(instance, check_key, partition)
            passed = bool(evaluation and evaluation.passed)
            checks[f"{key.to_user_string()}:{check_key.name}"] = passed if evaluation else None
            ok = ok and passed
    return {"assets": assets, "checks": checks, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("partitions", nargs="*", help="backend ids (default: every backend)")
    args = parser.parse_args(argv)
    from hf_assets.definitions import defs

    partitions = args.partitions or defs.resolve_job_def("prepare_datasets").partitions_def.get_partition_keys()
    with dg.DagsterInstance.get() as instance:
        report = {partition: partition_report(instance, defs, partition) for partition in partitions}
    print(json.dumps(report, indent=2, sort_keys=True, default=str))
    return 0 if all(r["ok"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
