"""Aspect buckets: each sample's bucket, target size, resize-before-crop size and crop box, vectorised.

The sizing maths is SimpleTuner's (see `data.sizing`). On top of it one rule SimpleTuner keeps with an
order-dependent cache: every bucket name has exactly one target size per backend (`canonical_sizes`).
Every random choice is a pure function of (backend id, sample id, stream), so a crop chosen here is the
crop used at encode time. The sample id is the row for Hub datasets (whose file names are the rows) and a
hash of the file name for local folders, whose row numbers shift when a file is added.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BucketConfig
from hf_assets.data.sizing import (
    TargetTable,
    choose_buckets,
    crop_boxes,
    internal_size,
    py_round,
    resize_sizes,
    square_edge,
    target_table,
)

BUCKET_COLUMNS = (
    "target_width",
    "target_height",
    "resize_width",
    "resize_height",
    "crop_left",
    "crop_top",
)

# Independent random streams per sample.
_STREAM_ASPECT = 0
_STREAM_CROP_X = 1
_STREAM_CROP_Y = 2

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STREAM_STEP = np.uint64(0xD1B54A32D192ED03)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser over uint64 arrays (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _MIX1
    z = z ^ (z >> np.uint64(27))
    z = z * _MIX2
    return z ^ (z >> np.uint64(31))


def backend_seed(backend_id: str) -> int:
    """A stable 64-bit seed for a backend id (blake2b; identical on every run and machine)."""
    return int.from_bytes(hashlib.blake2b(backend_id.encode("utf-8"), digest_size=8).digest(), "little")


def uniforms(backend_id: str, rows: np.ndarray, stream: int) -> np.ndarray:
    """Per-sample uniforms in [0, 1) from a counter-based hash of (backend id, row, stream)."""
    key = np.uint64(backend_seed(backend_id))
    r = np.asarray(rows, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = _splitmix64(r * _GOLDEN + key)
        z = _splitmix64(z + np.uint64(stream + 1) * _STREAM_STEP)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def aspect_codes(w: np.ndarray, h: np.ndarray, cfg: BucketConfig) -> np.ndarray:
    """Each image's aspect rounded to `rounding` decimals, as an integer count of 10^-rounding (at least 1)."""
    rounded = py_round(w / h, cfg.rounding) * 10.0**cfg.rounding
    return np.maximum(np.rint(rounded).astype(np.int64), 1)  # 0 would divide by zero in SimpleTuner


def key_of(target_w: int, target_h: int, cfg: BucketConfig) -> str:
    """SimpleTuner's bucket name of a target size: its aspect rounded to `rounding`, then to 2 decimals."""
    return str(round(round(target_w / target_h, cfg.rounding), 2))


_GRID_LIMIT = 200_000
_CHUNK = 1 << 16  # rows per pass of the per-row maths


@dataclass(frozen=True)
class BucketTable:
    """Every target a config can give, per (aspect, orientation), with one size per bucket name."""

    aspects: np.ndarray  # the rounding grid (1..grid) * 10^-rounding, then crop_aspect_buckets, then 1.0
    grid: int  # how many grid aspects come first
    dense: int  # grid aspects 1..dense (in 10^-rounding steps), then the larger codes present
    beyond: np.ndarray
    natural: TargetTable  # SimpleTuner's own targets (its resize formula reads these)
    target_w: np.ndarray  # (aspects, 2): the one size of each row's bucket
    target_h: np.ndarray
    key_index: np.ndarray  # (aspects, 2) -> index into keys
    keys: list[str]


def bucket_table(cfg: BucketConfig, codes: np.ndarray) -> BucketTable:
    """The target of every aspect on the rounding grid up to 1.25 x the largest code, the buckets and 1.0.

    Past 200,000 grid steps (aspects beyond 2000:1 at 2 decimals) only the codes present are added.

    SimpleTuner keeps the first size seen per bucket name (order-dependent). Here the one size depends on
    the config alone: the size an image of exactly the bucket's aspect gets in its own orientation, else
    the size most grid aspects give, then the smaller area.
    """
    scale = 10**cfg.rounding
    max_code = int(codes.max(initial=1))
    dense = int(min(max(max_code * 1.25, 2 * scale) + 1, _GRID_LIMIT))
    beyond = np.unique(codes[codes > dense])
    grid_codes = np.concatenate([np.arange(1, dense + 1), beyond])
    extra = np.asarray(cfg.crop_aspect_buckets or (), dtype=np.float64)
    aspects = np.concatenate([grid_codes / scale, extra, [1.0]])
    grid = grid_codes.size
    natural = target_table(aspects, internal_size(cfg, cfg.resolution), cfg)
    p = square_edge(cfg)
    t_w, t_h = np.where(natural.square, p, natural.natural_w), np.where(natural.square, p, natural.natural_h)
    pairs, first, inverse, counts = np.unique(
        ((t_w << np.int64(32)) | t_h).ravel(), return_index=True, return_inverse=True, return_counts=True
    )
    own = np.stack([aspects >= 1.0, aspects <= 1.0], axis=1).ravel()
    pair_keys = [key_of(q >> 32, q & 0xFFFFFFFF, cfg) for q in pairs.tolist()]
    exact = np.zeros(pairs.size, dtype=bool)
    key_value = np.array([float(k) for k in pair_keys])
    np.logical_or.at(exact, inverse.ravel(), own & (np.repeat(aspects, 2) == key_value[inverse.ravel()]))
    best: dict[str, tuple] = {}
    for i, key in enumerate(pair_keys):
        rank = (not exact[i], -int(counts[i]), int(pairs[i] >> 32) * int(pairs[i] & 0xFFFFFFFF), i)
        if key not in best or rank < best[key]:
            best[key] = rank
    keys = list(best)
    key_ids = {k: n for n, k in enumerate(keys)}
    chosen = pairs[[best[k][3] for k in pair_keys]]
    final = chosen[inverse.reshape(-1)].reshape(t_w.shape)
    key_index = np.array([key_ids[k] for k in pair_keys], dtype=np.int64)[inverse.reshape(-1)].reshape(t_w.shape)
    return BucketTable(aspects, grid, dense, beyond, natural, final >> 32, final & 0xFFFFFFFF, key_index, keys)


def grid_rows(codes: np.ndarray, table: BucketTable) -> np.ndarray:
    """The bucket-table row of each image's own rounded aspect."""
    rows = codes - 1
    far = codes > table.dense
    if far.any():
        rows[far] = table.dense + np.searchsorted(table.beyond, codes[far])
    return rows


def table_rows(codes: np.ndarray, w, h, cfg: BucketConfig, backend_id: str, rows: np.ndarray, table: BucketTable):
    """Each sample's row in the bucket table: its own aspect, 1.0, or its closest / drawn crop bucket."""
    if not cfg.crop or cfg.crop_aspect == "preserve":
        return grid_rows(codes, table)
    square = table.aspects.size - 1
    if cfg.crop_aspect == "square":
        return np.full(codes.shape, square, dtype=np.int64)
    # closest or random: the loader accepts no other crop_aspect
    if cfg.crop_aspect == "closest" and cfg.max_upscale_threshold is None:
        # The choice depends on the rounded aspect alone: choose once per grid aspect, then gather.
        grid = table.aspects[: table.grid]
        per_aspect = choose_buckets(grid, np.ones(grid.size), np.ones(grid.size), cfg, None)
        return table.grid + per_aspect[grid_rows(codes, table)]
    uniform = uniforms(backend_id, rows, _STREAM_ASPECT) if cfg.crop_aspect == "random" else None
    return table.grid + choose_buckets(codes / 10.0**cfg.rounding, w, h, cfg, uniform)


def sample_aspects(w, h, cfg: BucketConfig, backend_id: str, rows) -> np.ndarray:
    """The aspect each sample is sized for (its own rounded aspect, 1.0, or a crop_aspect_bucket)."""
    w, h = np.asarray(w, dtype=np.int64), np.asarray(h, dtype=np.int64)
    codes = aspect_codes(w, h, cfg)
    table = bucket_table(cfg, codes)
    return table.aspects[table_rows(codes, w, h, cfg, backend_id, np.asarray(rows), table)]


def _reads_own_aspect(cfg: BucketConfig) -> bool:
    """False for a square crop or an unweighted random draw: they never read the image's rounded aspect."""
    downsampled = cfg.crop and cfg.maximum_image_size and cfg.target_downsample_size
    own_aspect = not cfg.crop or cfg.crop_aspect in ("preserve", "closest") or downsampled
    return bool(own_aspect or cfg.max_upscale_threshold is not None)


def _codes(w: np.ndarray, h: np.ndarray, cfg: BucketConfig) -> np.ndarray:
    return aspect_codes(w, h, cfg) if _reads_own_aspect(cfg) else np.ones(w.shape, dtype=np.int64)


def observed_codes(widths, heights, cfg: BucketConfig) -> np.ndarray:
    """The distinct aspect codes of these sizes: what `bucket_table` needs of a table read in batches (the union over
    batches builds the table the whole index would)."""
    w, h = np.asarray(widths, dtype=np.int64), np.asarray(heights, dtype=np.int64)
    return np.unique(_codes(w, h, cfg))


def size_columns(
    widths, heights, cfg: BucketConfig, backend_id: str, rows, table: BucketTable | None = None
) -> tuple[dict[str, np.ndarray], pa.Array]:
    """Target, resize-before-crop and crop columns (int64) plus the bucket name of every sample. `table` is the
    bucket table of the whole index when these rows are one batch of it (default: built from these rows)."""
    w = np.asarray(widths, dtype=np.int64)
    h = np.asarray(heights, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if not (w.shape == h.shape == rows.shape):
        raise ValueError(f"widths, heights and rows differ in length: {w.shape}, {h.shape}, {rows.shape}")
    if w.size and (w.min() <= 0 or h.min() <= 0):
        raise ValueError("every width and height must be positive")
    codes = _codes(w, h, cfg)
    table = table if table is not None else bucket_table(cfg, codes)
    index = table_rows(codes, w, h, cfg, backend_id, rows, table)
    flat = index * 2 + (w < h)
    downsample = None
    if cfg.crop and cfg.maximum_image_size and cfg.target_downsample_size:
        downsample = target_table(table.aspects[: table.grid], internal_size(cfg, cfg.target_downsample_size), cfg)
    image_rows = grid_rows(codes, table) if downsample is not None else None
    sizes = {name: np.empty(w.size, dtype=np.int64) for name in BUCKET_COLUMNS}
    for start in range(0, w.size, _CHUNK):  # chunks keep the many temporaries in cache
        part = slice(start, start + _CHUNK)
        t_w, t_h = table.target_w.ravel()[flat[part]], table.target_h.ravel()[flat[part]]
        r_w, r_h = resize_sizes(
            w[part],
            h[part],
            t_w,
            t_h,
            table.natural,
            index[part],
            downsample,
            None if image_rows is None else image_rows[part],
            cfg,
        )
        random_crop = cfg.crop_style == "random"
        u_x = uniforms(backend_id, rows[part], _STREAM_CROP_X) if random_crop else None
        u_y = uniforms(backend_id, rows[part], _STREAM_CROP_Y) if random_crop else None
        left, top = crop_boxes(r_w, r_h, t_w, t_h, cfg, u_x, u_y)
        for name, values in zip(BUCKET_COLUMNS, (t_w, t_h, r_w, r_h, left, top)):
            sizes[name][part] = values
    return sizes, pa.array(table.keys, pa.string()).take(pa.array(table.key_index.ravel()[flat]))


def target_sizes(widths, heights, cfg: BucketConfig, backend_id: str, rows) -> dict[str, np.ndarray]:
    """Target size, resize-before-crop size and crop box (int64 arrays) for every sample; one size per bucket."""
    return size_columns(widths, heights, cfg, backend_id, rows)[0]


def bucket_keys(target_w, target_h, cfg: BucketConfig | None = None) -> pa.Array:
    """Bucket names (SimpleTuner's `str(round(aspect, 2))`), computed once per distinct (tw, th) pair."""
    cfg = cfg or BucketConfig()
    tw = np.asarray(target_w, dtype=np.int64)
    th = np.asarray(target_h, dtype=np.int64)
    if tw.size == 0:
        return pa.array([], type=pa.string())
    pairs, inverse = np.unique((tw << np.int64(32)) | th, return_inverse=True)
    names = [key_of(p >> 32, p & 0xFFFFFFFF, cfg) for p in pairs.tolist()]
    return pa.array(names, type=pa.string()).take(pa.array(inverse.reshape(-1).astype(np.int64)))


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    """A non-null integer column of the index as an int64 numpy array."""
    column = table.column(name)
    if column.null_count:
        raise ValueError(f"column {name!r} has {column.null_count} null values; the filtered index must drop them")
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(), dtype=np.int64)


def filename_ids(filenames: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit id per file name (blake2b), for samples whose row number is not stable."""
    digests = (hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest() for name in filenames.to_pylist())
    return np.frombuffer(b"".join(digests), dtype=np.int64).copy() if len(filenames) else np.zeros(0, np.int64)


def assign_buckets(
    index: pa.Table,
    cfg: BucketConfig,
    backend_id: str,
    seed_by_filename: bool = False,
    table: BucketTable | None = None,
) -> pa.Table:
    """The filtered index with `bucket`, target, resize and crop columns appended.

    Random choices are seeded by the row, or by the file name when `seed_by_filename` (local folders). `table`: the
    whole index's bucket table when `index` is one batch of it (`bucket_table(cfg, observed codes)`).
    """
    missing = [c for c in ("row", "width", "height") if c not in index.column_names]
    if missing:
        raise ValueError(f"filtered index lacks column(s) {missing}; have {index.column_names}")
    ids = filename_ids(index.column("filename")) if seed_by_filename else _int_column(index, "row")
    sizes, keys = size_columns(_int_column(index, "width"), _int_column(index, "height"), cfg, backend_id, ids, table)
    out = index.append_column("bucket", keys)
    for name in BUCKET_COLUMNS:
        out = out.append_column(pa.field(name, pa.int32()), pa.array(sizes[name].astype(np.int32), type=pa.int32()))
    return out


def aspect_of(key: str) -> float:
    """Sort key for a bucket name."""
    try:
        return float(key)
    except (TypeError, ValueError):
        return float("inf")


def bucket_histogram(table: pa.Table) -> list[tuple[str, int]]:
    """(bucket, sample count) pairs sorted by bucket aspect."""
    if table.num_rows == 0:
        return []
    counts = pc.value_counts(table.column("bucket").combine_chunks())
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
    return sorted(((str(k), int(n)) for k, n in pairs), key=lambda kv: (aspect_of(kv[0]), kv[0]))


ASPECT_DROP_REASONS = ("aspect_ratio_below_minimum", "aspect_ratio_above_maximum")


def drop_by_aspect_ratio(table: pa.Table, cfg: BucketConfig) -> tuple[pa.Table, dict[str, int]]:
    """Rows whose bucket aspect is outside [minimum_aspect_ratio, maximum_aspect_ratio] removed, counted by reason.

    As SimpleTuner, the bucket's aspect decides (after cropping), not the image's own.
    """
    counts = dict.fromkeys(ASPECT_DROP_REASONS, 0)
    if cfg.minimum_aspect_ratio is None and cfg.maximum_aspect_ratio is None or table.num_rows == 0:
        return table, counts
    aspect = pc.cast(table.column("bucket"), pa.float64()).to_numpy()
    keep = np.ones(table.num_rows, dtype=bool)
    for reason, limit, outside in zip(
        ASPECT_DROP_REASONS, (cfg.minimum_aspect_ratio, cfg.maximum_aspect_ratio), (np.less, np.greater)
    ):
        if limit is not None:
            bad = outside(aspect, limit) & keep  # a row is counted under its first reason
            counts[reason] = int(bad.sum())
            keep &= ~bad
    return table.filter(pa.array(keep)), counts


def small_buckets(table: pa.Table, batch_size: int) -> dict[str, int]:
    """Buckets holding fewer samples than one batch, with their counts."""
    return {k: n for k, n in bucket_histogram(table) if n < batch_size}


def drop_small_buckets(table: pa.Table, batch_size: int) -> pa.Table:
    """The table without the rows of buckets smaller than one batch."""
    small = small_buckets(table, batch_size)
    if not small:
        return table
    keep = pc.invert(pc.is_in(table.column("bucket"), value_set=pa.array(list(small), type=pa.string())))
    return table.filter(keep)


def bucket_histogram_png(histogram: list[tuple[str, int]], title: str) -> bytes:
    """A bar chart PNG of samples per bucket, with the count on each bar."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [k for k, _ in histogram]
    counts = [n for _, n in histogram]
    fig = Figure(figsize=(min(max(6.0, 0.45 * len(labels) + 2.0), 24.0), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if labels:
        bars = ax.bar(range(len(labels)), counts, color="#4C72B0")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45 if len(labels) > 12 else 0, ha="right" if len(labels) > 12 else "center")
        ax.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=8, padding=2)
        ax.set_ylim(0, max(counts) * 1.15)
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
    ax.set_xlabel("bucket (width / height)")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
