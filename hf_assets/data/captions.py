"""Caption variants per row, computed on whole Arrow columns (no per-row Python)."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import CaptionConfig
from hf_assets.data.columns import ColumnTypeError, flatten_with_rows, resolve_column

CAPTIONS_TYPE = pa.list_(pa.string())

# One caption source flattened: the row each variant belongs to, and the stripped, non-empty texts.
Variants = tuple[np.ndarray, pa.Array]


def extract_captions(table: pa.Table, cfg: CaptionConfig) -> pa.ListArray:
    """Each row's caption variants (list<string>, stripped, empties skipped; [] when none), with the instance prompt
    applied as SimpleTuner does: alone (`instanceprompt`, `only_instance_prompt`) or in front of each variant."""
    num_rows = table.num_rows
    if cfg.uses_instance_prompt_only:
        return instance_prompt_captions(num_rows, cfg.instance_prompts)
    if cfg.strategy != "huggingface":
        raise ValueError(f"caption_strategy {cfg.strategy!r} is not read from dataset columns")
    captions = column_captions(table, cfg)
    if cfg.prepend_instance_prompt:
        return prepend_prompt(captions, cfg.instance_prompts[0])
    return captions


def column_captions(table: pa.Table, cfg: CaptionConfig) -> pa.ListArray:
    """Each row's variants from the caption columns, then the fallback, then the description column."""
    num_rows = table.num_rows

    # Resolve every configured column first, so a typo fails even when no row needs that tier.
    primary = [resolve_column(table, name) for name in cfg.columns]
    fallback = resolve_column(table, cfg.fallback_column) if cfg.fallback_column else None
    description = resolve_column(table, cfg.description_column) if cfg.description_column else None

    tiers: list[Variants] = [_concat_variants([column_variants(col, name) for col, name in zip(primary, cfg.columns)])]
    has_caption = _rows_with_variants(tiers[0][0], num_rows)
    if fallback is not None and not has_caption.all():
        tier = _only_rows(column_variants(fallback, cfg.fallback_column), ~has_caption)
        tiers.append(tier)
        has_caption |= _rows_with_variants(tier[0], num_rows)
    if description is not None and not has_caption.all():
        tiers.append(_only_rows(description_variants(description, cfg.description_column), ~has_caption))
    return _lists_from_variants(_concat_variants(tiers), num_rows)


def instance_prompt_captions(num_rows: int, prompts: str | tuple[str, ...] | None) -> pa.ListArray:
    """Every row captioned with the instance prompt(s): one variant per prompt, the same for every row."""
    prompts = (prompts,) if isinstance(prompts, str) else tuple(p.strip() for p in prompts or () if p.strip())
    if not prompts or not all(prompts):
        raise ValueError("caption_strategy 'instanceprompt' needs a non-empty instance_prompt")
    values = pa.array(list(prompts) * num_rows, pa.string())
    offsets = pa.array(np.arange(num_rows + 1, dtype=np.int32) * len(prompts))
    return pa.ListArray.from_arrays(offsets, values, type=CAPTIONS_TYPE)


def prepend_prompt(captions: pa.ListArray, prompt: str) -> pa.ListArray:
    """Each variant as "prompt variant" (SimpleTuner's prepend_instance_prompt); rows without captions stay empty."""
    captions = _as_array(captions)
    joined = pc.binary_join_element_wise(pa.scalar(prompt, pa.string()), captions.values.cast(pa.string()), " ")
    return pa.ListArray.from_arrays(captions.offsets, joined, type=CAPTIONS_TYPE, mask=captions.is_null())


def first_caption(captions: pa.ListArray) -> pa.Array:
    """The first variant of each row (string), null where a row has none."""
    captions = _as_array(captions)
    offsets = captions.offsets.to_numpy()
    lengths = np.diff(offsets)
    if captions.null_count:
        lengths = np.where(captions.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    starts = pa.array(offsets[:-1].astype(np.int64), mask=lengths == 0)
    return captions.values.take(starts).cast(pa.string())


def column_variants(column: pa.ChunkedArray | pa.Array, name: str) -> Variants:
    """(row, text) for a string column (one per row) or a list<string> column (one per element)."""
    array = _as_array(column)
    dtype = array.type
    if pa.types.is_dictionary(dtype):
        array, dtype = array.cast(dtype.value_type), dtype.value_type
    if _is_text(dtype):
        rows = np.arange(len(array), dtype=np.int64)
        return _keep_non_empty(rows, array)
    if _is_list(dtype) and _is_text(_unwrap_dictionary(dtype.value_type)):
        rows, texts = flatten_with_rows(array)
        if pa.types.is_dictionary(texts.type):
            texts = texts.cast(texts.type.value_type)
        return _keep_non_empty(rows, texts)
    if _is_binary(_unwrap_dictionary(dtype.value_type) if _is_list(dtype) else dtype):
        raise ColumnTypeError(
            f"caption column {name!r} holds bytes ({dtype}), not text; store the captions as strings "
            "(decode them when building the dataset) or set caption_column to a text column",
            name,
        )
    raise ColumnTypeError(f"caption column {name!r} has type {dtype}; expected a string or a list of strings", name)


def description_variants(column: pa.ChunkedArray | pa.Array, name: str) -> Variants:
    """(row, text) for a description: a string (list) column, or a struct/map, its string values joined by spaces."""
    array = _as_array(column)
    dtype = array.type
    if pa.types.is_map(dtype):
        return _joined_map_values(array)
    if pa.types.is_struct(dtype):
        return _joined_struct_fields(array)
    return column_variants(array, name)


def _joined_struct_fields(array: pa.StructArray) -> Variants:
    """One variant per row: the struct's non-empty string fields, in field order, joined by single spaces."""
    # Not pc.binary_join_element_wise(null_handling="skip"): in pyarrow 26 it drops all-null rows
    # from its output (5 rows in, 3 out), misaligning every later row.
    dtype = array.type
    rows = np.arange(len(array), dtype=np.int64)
    fields = [
        _keep_non_empty(rows, pc.struct_field(array, [index]))
        for index in range(dtype.num_fields)
        if _is_text(_unwrap_dictionary(dtype.field(index).type))
    ]
    return _joined_per_row(_concat_variants(fields), len(array))


def _joined_map_values(array: pa.MapArray) -> Variants:
    """One variant per row: the map's non-empty string values, in entry order, joined by single spaces."""
    if not _is_text(_unwrap_dictionary(array.type.item_type)):
        return _no_variants()
    rows, entries = flatten_with_rows(array)
    return _joined_per_row(_keep_non_empty(rows, pc.struct_field(entries, [1])), len(array))


def _joined_per_row(variants: Variants, num_rows: int) -> Variants:
    """Each row's texts joined by single spaces into one variant (rows without text give none)."""
    joined = pc.binary_join(_lists_from_variants(variants, num_rows), " ")
    return _keep_non_empty(np.arange(num_rows, dtype=np.int64), joined)


def _keep_non_empty(rows: np.ndarray, texts: pa.Array) -> Variants:
    """Strip every text and drop the null or empty ones, with their rows."""
    if pa.types.is_dictionary(texts.type):
        texts = texts.cast(texts.type.value_type)
    texts = pc.utf8_trim_whitespace(texts.cast(pa.large_string()))
    keep = pc.fill_null(pc.greater(pc.binary_length(texts), 0), False)
    if keep.true_count == len(texts):
        return rows, texts
    return rows[keep.to_numpy(zero_copy_only=False)], texts.filter(keep)


def _only_rows(variants: Variants, wanted: np.ndarray) -> Variants:
    """The variants whose row is marked in the boolean mask `wanted`."""
    rows, texts = variants
    keep = wanted[rows]
    return rows[keep], texts.filter(pa.array(keep))


def _concat_variants(parts: list[Variants]) -> Variants:
    """Several sources as one (row, text) list; source order is kept for equal rows."""
    if not parts:
        return _no_variants()
    if len(parts) == 1:
        return parts[0]
    rows = np.concatenate([rows for rows, _ in parts])
    texts = pa.concat_arrays([texts for _, texts in parts])
    return rows, texts


def _lists_from_variants(variants: Variants, num_rows: int) -> pa.ListArray:
    """Group (row, text) pairs into one list per row, keeping each row's source and element order."""
    rows, texts = variants
    if len(rows) and np.any(rows[1:] < rows[:-1]):
        order = np.argsort(rows, kind="stable")  # merges the already-sorted runs, one per source
        texts = texts.take(pa.array(order))
    counts = np.bincount(rows, minlength=num_rows)
    offsets = np.zeros(num_rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), texts.cast(pa.string()), type=CAPTIONS_TYPE)


def _rows_with_variants(rows: np.ndarray, num_rows: int) -> np.ndarray:
    return np.bincount(rows, minlength=num_rows) > 0


def _no_variants() -> Variants:
    return np.zeros(0, dtype=np.int64), pa.array([], pa.large_string())


def _as_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


def _unwrap_dictionary(dtype: pa.DataType) -> pa.DataType:
    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype)


def _is_list(dtype: pa.DataType) -> bool:
    return pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype)


def _is_binary(dtype: pa.DataType) -> bool:
    return pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype)
