"""SimpleTuner's `parquet` caption strategy: a folder's captions from one Parquet or JSON-lines table.

The table names each image in `filename_column` (its path under the folder, without the extension unless
`identifier_includes_extension`) and holds its caption in `caption_column` (a string, or a list of variants), with
`fallback_caption_column` for rows whose caption is empty. The table is read once, by columns, and joined to the
folder's listing on that name.
"""

import io
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from hf_assets.config.schema import CaptionConfig, CaptionTableConfig
from hf_assets.data.captions import column_captions
from hf_assets.data.columns import MissingColumn, available_columns

KEY = "__listing_key__"


def read_caption_table(data: bytes, config: CaptionTableConfig) -> pa.Table:
    """The name, caption and fallback columns of the table (Parquet, or JSON lines for a .jsonl path)."""
    wanted = [config.filename_column, config.caption_column, config.fallback_caption_column]
    wanted = list(dict.fromkeys(c for c in wanted if c))
    if config.path.endswith((".jsonl", ".json")):
        table = pj.read_json(io.BytesIO(data))
    else:
        table = pq.read_table(io.BytesIO(data), columns=[c for c in wanted if c in _parquet_names(data)])
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise MissingColumn(
            f"caption table {config.path} has no column {', '.join(repr(c) for c in missing)}; "
            f"available: {', '.join(sorted(available_columns(table.schema)))}"
        )
    return table.select(wanted)


def _parquet_names(data: bytes) -> set[str]:
    return set(pq.read_schema(io.BytesIO(data)).names)


def listing_keys(names: list[str], config: CaptionTableConfig) -> list[str]:
    """The key each listed file has in the table: its relative path, without its extension unless the table's
    names include it."""
    if config.identifier_includes_extension:
        return names
    return [name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name for name in names]


def table_captions(
    names: list[str], config: CaptionTableConfig, read: Callable[[str], bytes]
) -> tuple[list[list[str] | None], list[str | None]]:
    """(variants or None, why none) per listed file, from the table `read(config.path)` returns."""
    table = read_caption_table(read(config.path), config)
    keys = pc.cast(table.column(config.filename_column), pa.string()).combine_chunks()
    _, first = np.unique(keys.fill_null("").to_numpy(zero_copy_only=False), return_index=True)  # a name's first row
    table = table.append_column(KEY, keys).take(pa.array(np.sort(first)))
    order = pa.array(np.arange(len(names), dtype=np.int64))
    listing = pa.table({KEY: pa.array(listing_keys(names, config), pa.string()), "__order__": order})
    rows = pa.table({KEY: table.column(KEY), "__row__": pa.array(np.arange(table.num_rows, dtype=np.int64))})
    matched = listing.join(rows, KEY, join_type="left outer").sort_by("__order__").column("__row__")
    joined = table.drop_columns([KEY]).take(matched)  # a null index gives a null row (list columns cannot join)
    found = pc.is_valid(matched).to_pylist()
    caption_config = CaptionConfig(columns=(config.caption_column,), fallback_column=config.fallback_caption_column)
    variants = column_captions(joined, caption_config).to_pylist()
    problems = [None if hit else f"not in the caption table {config.path}" for hit in found]
    return [v if v else None for v in variants], problems
