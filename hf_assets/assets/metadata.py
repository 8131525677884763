"""Turn plain results into Dagster materialization metadata: schemas, count tables, pictures."""

import dagster as dg
import pyarrow as pa


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """An Arrow schema as a Dagster table schema (shown in the UI's column list)."""
    return dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema])


def counts_table(counts: dict[str, int], key: str = "reason", value: str = "rows") -> dg.MetadataValue:
    """A two-column table of named counts; the text "none" when every count is zero (not a bare header)."""
    if not any(int(v) for v in counts.values()):
        return dg.MetadataValue.text("none")
    records = [dg.TableRecord({key: k, value: int(v)}) for k, v in counts.items()]
    schema = dg.TableSchema(columns=[dg.TableColumn(key, "string"), dg.TableColumn(value, "int")])
    return dg.MetadataValue.table(records=records, schema=schema)


def preview(table: pa.Table, columns: list[str], rows: int = 5) -> dg.MetadataValue:
    """The first rows of a table as markdown."""
    head = table.select([c for c in columns if c in table.column_names]).slice(0, rows).to_pylist()
    if not head:
        return dg.MetadataValue.md("_(no rows)_")
    names = list(head[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for record in head:
        cells = [str(record[n]).replace("|", "\\|").replace("\n", " ")[:80] for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def reason_counts(dropped: dict[str, str]) -> dict[str, int]:
    """Drop reasons ("corrupt_image: <detail>") counted by their kind."""
    counts: dict[str, int] = {}
    for reason in dropped.values():
        kind = reason.split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def check_result(
    context,
    name: str,
    finding,
    repaired: dict | None = None,
    asset: str | None = None,
    figures: dict | None = None,
) -> dg.AssetCheckResult:
    """A check result (of `asset`, else the step's asset) for this run's partition from a `cache.verify.Finding`:
    failures with examples, what the cache's last plan repaired before it was checked (unreadable shards, NaN
    entries, a lost manifest; encoder caches only), and the figures the check measured."""
    metadata = {
        "partition": context.partition_key,
        "failures": finding.count,
        "examples": dg.MetadataValue.json(finding.examples),
    }
    if repaired is not None:
        metadata["repaired"] = dg.MetadataValue.json(repaired)
    return dg.AssetCheckResult(
        asset_key=asset, check_name=name, passed=finding.passed, metadata={**metadata, **(figures or {})}
    )
