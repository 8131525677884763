"""Why each row is dropped (one reason per row, first failing rule wins), on whole Arrow columns."""

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BucketConfig, FilterConfig
from hf_assets.data.columns import MissingColumn, flatten_with_rows, resolve_column

# Precedence order: a row failing several rules is reported under the first.
DROP_REASONS = ("unreadable_image", "too_small", "quality", "collection", "no_caption", "too_few_frames")

ArrayLike = pa.Array | pa.ChunkedArray | np.ndarray


def drop_reasons(
    table: pa.Table,
    *,
    widths: ArrayLike,
    heights: ArrayLike,
    captions: pa.ListArray | pa.ChunkedArray,
    filters: FilterConfig,
    buckets: BucketConfig,
    readable: ArrayLike | None = None,
    num_frames: ArrayLike | None = None,
) -> pa.Array:
    """The drop reason of every row (string), null for rows that are kept."""
    num_rows = table.num_rows
    for name, values in (
        ("widths", widths),
        ("heights", heights),
        ("captions", captions),
        ("readable", readable),
        ("num_frames", num_frames),
    ):
        if values is not None and len(values) != num_rows:
            raise ValueError(f"{name} has {len(values)} rows; the table has {num_rows}")
    width, width_known = _numbers(widths)
    height, height_known = _numbers(heights)
    failing = {
        "unreadable_image": unreadable_mask(width_known, height_known, readable),
        "too_small": too_small_mask(width, height, filters, buckets),
        "quality": quality_mask(table, filters),
        "collection": collection_mask(table, filters),
        "no_caption": no_caption_mask(captions),
        "too_few_frames": too_few_frames_mask(num_frames, filters.min_frames, num_rows),
    }
    codes = np.full(num_rows, -1, dtype=np.int8)
    for code in reversed(range(len(DROP_REASONS))):  # later rules first, so earlier ones overwrite
        mask = failing[DROP_REASONS[code]]
        if mask is not None:
            codes[mask] = code
    return pa.array(DROP_REASONS, pa.string()).take(pa.array(codes, mask=codes < 0))


def count_reasons(reasons: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How many rows each reason dropped; every reason is present (0 when none)."""
    counts = dict.fromkeys(DROP_REASONS, 0)
    for entry in pc.value_counts(reasons).to_pylist():  # one entry per distinct reason, not per row
        if entry["values"] is not None:
            counts[entry["values"]] = entry["counts"]
    return counts


def unreadable_mask(width_known: np.ndarray, height_known: np.ndarray, readable: ArrayLike | None) -> np.ndarray:
    """Rows whose image size is unknown, or that the reader marked unreadable (null counts as unreadable)."""
    mask = ~(width_known & height_known)
    if readable is not None:
        mask |= ~_flags(readable)
    return mask


def too_small_mask(
    width: np.ndarray, height: np.ndarray, filters: FilterConfig, buckets: BucketConfig
) -> np.ndarray | None:
    """Rows below filters.min_width/min_height or buckets.minimum_image_size, or with an empty (zero-pixel) tile."""
    mask = (width < 1) | (height < 1)
    if filters.min_width is not None:
        mask |= width < filters.min_width
    if filters.min_height is not None:
        mask |= height < filters.min_height
    minimum = buckets.minimum_image_size
    if minimum is not None:
        mask |= below_minimum_image_size(width, height, buckets)
    return mask


def below_minimum_image_size(width: np.ndarray, height: np.ndarray, buckets: BucketConfig) -> np.ndarray:
    """SimpleTuner's minimum_image_size: both sides (pixel), else the area in megapixels (pixel_area: edge^2).

    In area modes a square crop also needs both sides >= floor(sqrt(minimum area)), as in SimpleTuner.
    """
    minimum = float(buckets.minimum_image_size)
    if buckets.resolution_type == "pixel":
        return (width < minimum) | (height < minimum)
    # area or pixel_area: the loader accepts no other resolution_type
    area_px = (minimum * minimum / 1e6 if buckets.resolution_type == "pixel_area" else minimum) * 1_000_000
    mask = width.astype(np.float64) * height < area_px
    if buckets.crop and buckets.crop_aspect == "square":
        edge = math.floor(math.sqrt(area_px))
        mask |= (width < edge) | (height < edge)
    return mask


def quality_mask(table: pa.Table, filters: FilterConfig) -> np.ndarray | None:
    """Rows where any configured quality metric is missing, null, or below its threshold."""
    thresholds = filters.quality_thresholds
    if not thresholds:
        return None
    column = _configured_column(table, "filter_func.quality_column", filters.quality_column)
    dtype = column.type
    if pa.types.is_struct(dtype):
        return _struct_quality_failing(column, thresholds, filters.quality_column)
    if pa.types.is_map(dtype):
        return _map_quality_failing(column, thresholds, filters.quality_column)
    raise TypeError(
        f"quality column {filters.quality_column!r} has type {dtype}; "
        "expected a struct or a map<string, number> of metric scores"
    )


def _struct_quality_failing(column: pa.StructArray, thresholds, name: str) -> np.ndarray:
    fields = [column.type.field(i).name for i in range(column.type.num_fields)]
    for metric in thresholds:
        if column.type.get_field_index(metric) < 0:  # a typo, not data: no row could ever have it
            raise _unknown_metric(metric, name, "a field of quality column {column!r} (a struct)", "fields", fields)
    failing = np.zeros(len(column), dtype=bool)
    for metric, threshold in thresholds.items():
        index = column.type.get_field_index(metric)
        scores = _scores(pc.struct_field(column, [index]), metric)
        failing |= ~_flags(pc.greater_equal(scores, pa.scalar(threshold, scores.type)))
    return failing


def _map_quality_failing(column: pa.MapArray, thresholds, name: str) -> np.ndarray:
    num_rows = len(column)
    rows, entries = flatten_with_rows(column)
    keys = pc.struct_field(entries, [0])
    scores = _scores(pc.struct_field(entries, [1]), "map value")
    flags = {metric: _flags(pc.equal(keys, metric)) for metric in thresholds}
    for metric, is_metric in flags.items():
        # A metric missing from some rows drops those rows (data); missing from every row is a typo.
        if num_rows and not is_metric.any():
            present_keys = sorted(k for k in pc.unique(keys).to_pylist() if k is not None)
            raise _unknown_metric(
                metric, name, "a key in any row of quality column {column!r} (a map)", "keys", present_keys
            )
    failing = np.zeros(num_rows, dtype=bool)
    for metric, threshold in thresholds.items():
        is_metric = flags[metric]
        passes = _flags(pc.greater_equal(scores, pa.scalar(threshold, scores.type)))[is_metric]
        present = np.bincount(rows[is_metric], minlength=num_rows)
        passing = np.bincount(rows[is_metric][passes], minlength=num_rows)
        failing |= (present == 0) | (passing < present)  # every entry of that metric must pass
    return failing


def _unknown_metric(metric: str, column: str, where: str, kind: str, available: list[str]) -> MissingColumn:
    """The error for a quality_thresholds metric the quality column never holds (a typo would drop every row)."""
    listed = ", ".join(available[:50]) + (f", ... ({len(available)} in all)" if len(available) > 50 else "")
    return MissingColumn(
        f"filter_func.quality_thresholds: metric {metric!r} is not {where.format(column=column)}; "
        f"available {kind}: {listed or '(none)'}",
        f"{column}.{metric}",
    )


def collection_mask(table: pa.Table, filters: FilterConfig) -> np.ndarray | None:
    """Rows whose collection value is null or not one of filters.collection."""
    if filters.collection is None:
        return None
    column = _configured_column(table, "filter_func.collection_column", filters.collection_column)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise TypeError(f"collection column {filters.collection_column!r} has type {column.type}; expected strings")
    wanted = pa.array(list(filters.collection), column.type)
    return ~_flags(pc.is_in(column, value_set=wanted))


def no_caption_mask(captions: pa.ListArray | pa.ChunkedArray) -> np.ndarray:
    """Rows whose caption list is empty or null."""
    lengths = pc.fill_null(pc.list_value_length(captions), 0)
    return _as_numpy(pc.equal(lengths, 0))


def too_few_frames_mask(num_frames: ArrayLike | None, min_frames: int | None, num_rows: int) -> np.ndarray | None:
    """Video rows with fewer than min_frames frames, or none (an unknown count fails): the source clips kept here are
    each encoded at video.num_frames (or all their frames), never dropped for their frame count later."""
    if num_frames is None:
        return None
    frames, known = _numbers(num_frames)
    return ~known | (frames < max(int(min_frames or 1), 1))


def _configured_column(table: pa.Table, key: str, path: str) -> pa.Array:
    """The column a config key names; a missing one raises MissingColumn naming the key and the columns."""
    try:
        return _as_array(resolve_column(table, path))
    except MissingColumn as exc:
        raise MissingColumn(f"{key}: {exc}", path) from None


def _numbers(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Values as float64 with nulls set to 0, and the mask of rows that are not null."""
    array = _as_array(values) if not isinstance(values, np.ndarray) else pa.array(values)
    known = _as_numpy(array.is_valid())
    numbers = pc.fill_null(array.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
    return numbers, known


def _scores(values: pa.Array, name: str) -> pa.Array:
    """Scores as floats; float32 scores stay float32 so a score printed as 0.7 meets a 0.7 threshold."""
    if pa.types.is_floating(values.type):
        return values
    if not (pa.types.is_integer(values.type) or pa.types.is_decimal(values.type)):
        raise TypeError(f"quality metric {name!r} has type {values.type}; expected a number")
    return values.cast(pa.float64())


def _flags(values: ArrayLike) -> np.ndarray:
    """A boolean column as numpy, null read as False."""
    array = _as_array(values) if not isinstance(values, np.ndarray) else pa.array(values)
    return _as_numpy(pc.fill_null(array.cast(pa.bool_()), False))


def _as_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return _as_array(values).to_numpy(zero_copy_only=False)


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
