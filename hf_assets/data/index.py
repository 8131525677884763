"""Build the filtered index of a split: one row per kept sample with captions and effective size, piece by piece."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BackendConfig
from hf_assets.data.captions import extract_captions, first_caption
from hf_assets.data.columns import resolve_column, top_level_columns
from hf_assets.data.composite import tile_boxes
from hf_assets.data.dropped import DROPPED_SCHEMA, DropCounts, dropped_rows
from hf_assets.data.filters import DROP_REASONS, count_reasons, drop_reasons
from hf_assets.data.header_sizes import image_sizes
from hf_assets.data.split import BATCH_ROWS, RawSplit
from hf_assets.data.subset import REASON as SUBSET_REASON
from hf_assets.data.subset import limit_samples
from hf_assets.data.video_index import video_columns, video_drop_reasons
from hf_assets.progress import ProgressLog, quiet

IMAGE_BATCH_ROWS = 4096  # rows whose image column is held at once when sizes come from headers (whole row groups)

INDEX_SCHEMA = pa.schema(
    [
        ("filename", pa.string()),
        ("row", pa.int64()),
        ("caption", pa.string()),
        ("captions", pa.list_(pa.string())),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("source_width", pa.int32()),
        ("source_height", pa.int32()),
        ("tile_left", pa.int32()),
        ("tile_top", pa.int32()),
        ("tile_right", pa.int32()),
        ("tile_bottom", pa.int32()),
    ]
)


def virtual_filenames(rows: pa.Array, extension: str) -> pa.Array:
    """The reference's virtual names: row i of the loaded split is "{i}.jpg" (or .mp4)."""
    return pc.binary_join_element_wise(pc.cast(rows, pa.string()), pa.scalar("." + extension), pa.scalar(""))


def sizes_from_columns(backend: BackendConfig) -> bool:
    """True when sizes (and, for video, frame counts) come from columns; else media headers are read."""
    wanted = [backend.width_column, backend.height_column]
    if backend.dataset_type == "video":
        wanted.append(backend.num_frames_column)
    return all(wanted)


def scan_columns(split: RawSplit, backend: BackendConfig) -> list[str]:
    """The top-level columns the index needs: captions, sizes (or the image column) and filter columns."""
    captions = split.captions or backend.captions
    filters = backend.filters
    video = backend.dataset_type == "video"
    paths = [
        *captions.columns,
        captions.fallback_column,
        captions.description_column,
        split.name_column,
        split.detail_column,
        filters.quality_column if filters.quality_thresholds else None,
        filters.collection_column if filters.collection else None,
    ]
    if captions.strategy != "huggingface" or captions.uses_instance_prompt_only:
        paths = paths[len(captions.columns) + 2 :]  # the caption columns are not read
    paths += [backend.width_column, backend.height_column]
    paths += [backend.num_frames_column, backend.fps_column] if video else []
    paths += [] if sizes_from_columns(backend) else [split.image_column]
    return top_level_columns(split.schema, [p for p in paths if p])


def source_sizes(table: pa.Table, split: RawSplit, backend: BackendConfig) -> tuple[pa.Array, pa.Array]:
    """Displayed (EXIF-oriented) width and height of every row: from size columns, else image headers."""
    if backend.width_column and backend.height_column:
        widths = pc.cast(resolve_column(table, backend.width_column), pa.int32())
        heights = pc.cast(resolve_column(table, backend.height_column), pa.int32())
        return widths.combine_chunks(), heights.combine_chunks()
    return image_sizes(table.column(split.image_column), base_dir=split.base_dir)


def index_batch(table: pa.Table, split: RawSplit, backend: BackendConfig) -> tuple[pa.Table, pa.Array, pa.Table]:
    """The kept rows of one batch (`row` counted from the batch's first row, no filename yet), every row's reason,
    and the dropped rows (row, filename when rows have names, reason)."""
    video = None
    if backend.dataset_type == "video":
        batch = RawSplit.from_table(split.backend_id, table, split.source, split.fingerprint, base_dir=split.base_dir)
        video = video_columns(batch, backend)
    src_w, src_h = (video.width, video.height) if video else source_sizes(table, split, backend)
    readable = pc.and_(pc.is_valid(src_w), pc.is_valid(src_h))
    boxes = tile_boxes(
        np.asarray(src_w.fill_null(0), dtype=np.int64),
        np.asarray(src_h.fill_null(0), dtype=np.int64),
        backend.composite,
    )
    box = {name: pa.array(boxes[:, i].astype(np.int32)) for i, name in enumerate(("left", "top", "right", "bottom"))}
    unreadable = pa.scalar(None, pa.int32())
    width = pc.if_else(readable, pc.subtract(box["right"], box["left"]), unreadable)
    height = pc.if_else(readable, pc.subtract(box["bottom"], box["top"]), unreadable)
    captions = extract_captions(table, split.captions or backend.captions)
    num_frames = video.frames if video else None
    reasons = drop_reasons(
        table,
        widths=width,
        heights=height,
        captions=captions,
        filters=backend.filters,
        buckets=backend.buckets,
        num_frames=num_frames,
    )
    if video:
        reasons = video_drop_reasons(reasons, video, backend)
    keep = np.asarray(pc.is_null(reasons).to_numpy(zero_copy_only=False), dtype=bool)
    take = pa.array(np.flatnonzero(keep).astype(np.int64))
    kept_captions = captions.take(take)
    columns = {
        "row": take,
        "caption": first_caption(kept_captions),
        "captions": kept_captions,
        "width": width.take(take),
        "height": height.take(take),
        "source_width": src_w.take(take),
        "source_height": src_h.take(take),
        **{f"tile_{side}": box[side].take(take) for side in ("left", "top", "right", "bottom")},
    }
    if num_frames is not None:
        columns["num_frames"] = pc.cast(num_frames.take(take), pa.int32())
    if video:
        columns["fps"] = video.fps.take(take)
    names = pc.cast(resolve_column(table, split.name_column), pa.string()) if split.name_column else None
    if names is not None:
        columns["name"] = names.take(take)
    lost = pa.array(np.flatnonzero(~keep).astype(np.int64))
    lost_names = names.take(lost) if names is not None else pa.nulls(len(lost), pa.string())
    details = resolve_column(table, split.detail_column).combine_chunks() if split.detail_column else None
    return pa.table(columns), reasons, dropped_rows(reasons, lost_names, details)


def _shift(table: pa.Table, offset: int) -> pa.Table:
    """`table` with `offset` added to its `row` column."""
    index = table.schema.get_field_index("row")
    return table.set_column(index, "row", pc.add(table.column("row"), pa.scalar(offset, pa.int64())))


def part_schema(split: RawSplit, backend: BackendConfig) -> pa.Schema:
    """The schema of a piece's kept rows before assembly: rows counted from the piece's first row, no file name."""
    schema = pa.schema([f for f in INDEX_SCHEMA if f.name != "filename"])
    if backend.dataset_type == "video":
        schema = schema.append(pa.field("num_frames", pa.int32())).append(pa.field("fps", pa.float32()))
    if split.name_column:
        schema = schema.append(pa.field("name", pa.string()))
    return schema


def index_schema(backend: BackendConfig) -> pa.Schema:
    """The filtered index's schema (video backends add num_frames and fps)."""
    if backend.dataset_type == "video":
        return INDEX_SCHEMA.append(pa.field("num_frames", pa.int32())).append(pa.field("fps", pa.float32()))
    return INDEX_SCHEMA


def piece_parts(
    piece, split: RawSplit, backend: BackendConfig, share: int = 1
) -> Iterator[tuple[pa.Table, dict[str, int], pa.Table]]:
    """One piece's (kept rows, drop counts, dropped rows) batch by batch, rows counted from the piece's first row.
    `share`: how many pieces are scanned at once; the rows held at once then stay about those of one scan."""
    columns = scan_columns(split, backend)
    max_rows = BATCH_ROWS if sizes_from_columns(backend) else IMAGE_BATCH_ROWS
    # Scans in parallel: the scans and the reader of their results each hold a part, halved again because each
    # thread's memory pool keeps what it freed (measured at 1M rows: within 20 MB of a lone scan's peak, for a few
    # percent more time).
    holders = 1 if share <= 1 else 2 * (share + 1)
    schema, offset = part_schema(split, backend), 0
    for batch in piece.batches(columns, max(1, max_rows // holders)):
        kept, reasons, dropped = index_batch(batch, split, backend)
        yield _shift(kept, offset).cast(schema), count_reasons(reasons), _shift(dropped, offset)
        offset += batch.num_rows


def add_counts(parts) -> dict[str, int]:
    """Drop counts summed over (kept, counts, dropped) parts; every reason present."""
    counts = dict.fromkeys(DROP_REASONS, 0)
    for _, part_counts, _ in parts:
        for reason, n in part_counts.items():
            counts[reason] = counts.get(reason, 0) + n
    return counts


@dataclass
class PieceResult:
    """A piece's kept and dropped rows (as batches, rows counted from its first row), and its drop counts."""

    start: int
    kept: Iterable[pa.Table]
    dropped: Iterable[pa.Table]
    counts: dict[str, int]


def index_results(
    split: RawSplit, backend: BackendConfig, cache=None, progress=None, workers: int = 1
) -> Iterator[PieceResult]:
    """Each piece's scan result, in split order: from the scan cache when its identity and settings are unchanged,
    else scanned now. With a cache, pieces are scanned into it by `workers` threads ahead of the one being yielded
    (results go to disk batch by batch and are read back, and the scans' smaller batches keep the peak near one
    scan's), so the caller's writing overlaps the scanning; without one, each piece's parts are held in memory in
    turn."""
    with (progress or quiet()).step("scan", split.num_rows, unit="images") as step:
        if cache is None:
            for piece in split.pieces:
                parts = list(piece_parts(piece, split, backend))
                yield PieceResult(piece.start, [k for k, _, _ in parts], [d for _, _, d in parts], add_counts(parts))
                step.advance(piece.num_rows)
            return
        schema = part_schema(split, backend)

        def scan(piece, entry, share: int) -> None:
            for kept, counts, dropped in piece_parts(piece, split, backend, share):
                entry.add(kept, counts, dropped)

        for piece, found in cache.results(split.pieces, scan, schema, workers):
            found.start = piece.start
            yield found
            step.advance(piece.num_rows)


def finish_kept(part: pa.Table, start: int, backend: BackendConfig) -> pa.Table:
    """A piece's kept rows as filtered-index rows: split row numbers, file names, the index's schema."""
    kept = _shift(part, start)
    rows = kept.column("row")
    names = kept.column("name") if "name" in kept.column_names else virtual_filenames(rows, backend.file_extension)
    schema = index_schema(backend)
    columns = [names] + [kept.column(name) for name in schema.names[1:]]
    return pa.Table.from_arrays(columns, schema=schema)


def finish_dropped(part: pa.Table, start: int, backend: BackendConfig) -> pa.Table:
    """A piece's dropped rows with split row numbers, named "{row}.jpg" where the source gives no names."""
    lost = _shift(part, start)
    virtual = virtual_filenames(lost.column("row"), backend.file_extension)
    names = pc.coalesce(lost.column("filename"), virtual)
    return lost.set_column(1, "filename", names).cast(DROPPED_SCHEMA)


def build_filtered_index(
    split: RawSplit, backend: BackendConfig, cache=None, progress: ProgressLog | None = None
) -> tuple[pa.Table, DropCounts]:
    """The kept rows with filename, captions, effective size and tile box; plus drop counts by reason, in memory
    (the filtered_index asset writes the same rows piece by piece: data.index_writer).

    With a `ScanCache`, a piece whose identity and settings are unchanged is not read again.
    """
    kept, lost, counts = [], [], dict.fromkeys(DROP_REASONS, 0)
    for result in index_results(split, backend, cache, progress):
        kept += [finish_kept(part, result.start, backend) for part in result.kept]
        lost += [finish_dropped(part, result.start, backend) for part in result.dropped]
        for reason, n in result.counts.items():
            counts[reason] = counts.get(reason, 0) + n
    index = pa.concat_tables(kept).combine_chunks() if kept else index_schema(backend).empty_table()
    dropped = pa.concat_tables(lost).combine_chunks() if lost else DROPPED_SCHEMA.empty_table()
    if backend.max_num_samples is not None:  # after every filter: N samples are trained on when N remain
        index, beyond = limit_samples(index, backend.id, backend.max_num_samples)
        counts[SUBSET_REASON] = beyond.num_rows
        beyond = beyond.append_column("reason", pa.repeat(pa.scalar(SUBSET_REASON), beyond.num_rows))
        dropped = pa.concat_tables([dropped, beyond.cast(dropped.schema)]).sort_by("row")
    return index, DropCounts(counts, dropped)
