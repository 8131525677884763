"""Turn plain results into Dagster materialization metadata: schemas, count tables, pictures."""

import dagster as dg
import pyarrow as pa

# What each column of the tables hf_assets writes holds (the UI's column list shows it beside the type).
COLUMNS = {
    "filename": "the sample's name: its path under the folder, else '{row}.jpg' (or .mp4) from its row of the split",
    "row": "the sample's row in the split raw_split lists",
    "caption": "the first caption variant",
    "captions": "every caption variant (list captions, several caption columns, multi-line caption files)",
    "width": "width as shown: after EXIF rotation and the composite split",
    "height": "height as shown: after EXIF rotation and the composite split",
    "source_width": "the stored image's width, before EXIF rotation",
    "source_height": "the stored image's height, before EXIF rotation",
    "tile_left": "the composite tile's box in the stored image: left edge (0 when not a composite)",
    "tile_top": "the composite tile's box in the stored image: top edge",
    "tile_right": "the composite tile's box in the stored image: right edge",
    "tile_bottom": "the composite tile's box in the stored image: bottom edge",
    "num_frames": "the clip's frame count",
    "fps": "the clip's frames per second",
    "bucket": "the aspect bucket: its aspect ratio, width / height",
    "target_width": "the width the sample is encoded at (the latent is target_width / f wide)",
    "target_height": "the height the sample is encoded at (the latent is target_height / f high)",
    "resize_width": "the width the image is resized to before the crop",
    "resize_height": "the height the image is resized to before the crop",
    "crop_left": "the crop box's left edge in the resized image",
    "crop_top": "the crop box's top edge in the resized image",
    "reason": "why the row was dropped",
    "caption_problem": "why the sample's caption file could not be read (none: it was read)",
}
# A split's own columns, by the config key that names them.
ROLES = {
    "image_column": "the images (or clips) encoded: bytes or a path",
    "caption_column": "a caption column",
    "fallback_caption_column": "the caption column read when the caption columns are empty",
    "description_column": "a caption column read as an extra variant",
    "width_column": "image widths, read instead of image headers",
    "height_column": "image heights, read instead of image headers",
}


def column_schema(schema: pa.Schema, roles: dict[str, str] | None = None) -> dg.TableSchema:
    """An Arrow schema as a Dagster table schema (the UI's column list), each column described: the tables' own
    columns by what they hold, a split's columns by the config key that names them (`roles`: column -> key)."""
    described = {**COLUMNS, **{column: f"{ROLES[key]} ({key})" for column, key in (roles or {}).items()}}
    return dg.TableSchema(
        columns=[dg.TableColumn(name=f.name, type=str(f.type), description=described.get(f.name)) for f in schema]
    )


def human_size(size: int | None) -> str:
    """A byte count as people read it: "7.5 MB" (decimal units, as file browsers show them)."""
    if size is None:
        return "unknown"
    units, value, step = ("B", "kB", "MB", "GB", "TB"), float(size), 0
    while value >= 1000 and step < len(units) - 1:
        value, step = value / 1000, step + 1
    return f"{int(size)} B" if step == 0 else f"{value:.1f} {units[step]}"


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
    failures with examples, what the cache's last triage repaired before it was checked (unreadable shards, NaN
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
