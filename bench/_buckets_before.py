"""Baseline for bench_buckets.py: hf_assets/data/buckets.py as of commit dfd5935 (before SimpleTuner parity), unchanged.

Aspect buckets: each sample's target size, intermediary (resize) size and crop box, vectorised.

Compatible with SimpleTuner's multi-aspect bucketing (bghira/SimpleTuner,
helpers/multiaspect/image.py `MultiaspectImage._round_to_nearest_multiple` and
`calculate_new_size_by_pixel_*`; helpers/image_manipulation/cropping.py for crop styles), with
the formulas of docs/architecture.md and spec/field-notes.md section 1. Every random choice is a
pure function of (backend id, sample id, stream), so a crop chosen here is the crop used at encode time.
The sample id is the row for Hub datasets (whose file names are the rows) and a hash of the file name
for local folders, whose row numbers shift when a file is added.
"""

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.config.schema import BucketConfig

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


def align(v, m: int = 64):
    """Round to the nearest multiple of m, at least m (half to even, like Python's round)."""
    if np.ndim(v) == 0:
        return max(int(m), int(round(float(v) / m)) * int(m))
    return np.maximum(np.int64(m), np.rint(np.asarray(v, dtype=np.float64) / m).astype(np.int64) * m)


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


def _size_for_aspect(aspect: np.ndarray, cfg: BucketConfig) -> tuple[np.ndarray, np.ndarray]:
    """Aligned (width, height) for target aspects under the config's resolution type."""
    m, r = cfg.alignment, float(cfg.resolution)
    if cfg.resolution_type == "pixel":
        short = align(np.full(aspect.shape, r), m)
        long = align(r * np.maximum(aspect, 1.0 / aspect), m)
        landscape = aspect >= 1.0
        return np.where(landscape, long, short), np.where(landscape, short, long)
    if cfg.resolution_type == "pixel_area":
        e = align(r, m)
        root = np.sqrt(aspect)
        return align(e * root, m), align(e / root, m)
    if cfg.resolution_type == "area":
        pixels = r * 1e6
        return align(np.sqrt(pixels * aspect), m), align(np.sqrt(pixels / aspect), m)
    raise ValueError(f"unknown resolution_type {cfg.resolution_type!r}; expected pixel, pixel_area or area")


def _bucket_aspects(cfg: BucketConfig) -> np.ndarray:
    """The configured crop_aspect_buckets as a float array; raises when missing or invalid."""
    buckets = np.asarray(cfg.crop_aspect_buckets or (), dtype=np.float64)
    if buckets.size == 0:
        raise ValueError(f"crop_aspect {cfg.crop_aspect!r} needs crop_aspect_buckets, e.g. [0.75, 1.0, 1.33]")
    if not np.all(np.isfinite(buckets) & (buckets > 0)):
        raise ValueError(f"crop_aspect_buckets must be positive numbers, got {list(cfg.crop_aspect_buckets)}")
    return buckets


def closest_aspects(aspect: np.ndarray, buckets) -> np.ndarray:
    """For each aspect, the bucket aspect nearest in log space (ties go to the smaller aspect)."""
    b = np.unique(np.asarray(buckets, dtype=np.float64))
    lb, la = np.log(b), np.log(aspect)
    hi = np.clip(np.searchsorted(lb, la), 1, max(len(b) - 1, 1))
    lo = hi - 1
    if len(b) == 1:
        return np.full(aspect.shape, b[0])
    pick_hi = (lb[hi] - la) < (la - lb[lo])
    return b[np.where(pick_hi, hi, lo)]


def target_aspects(aspect: np.ndarray, cfg: BucketConfig, backend_id: str, rows: np.ndarray) -> np.ndarray:
    """The aspect each sample is trained at, per crop / crop_aspect."""
    if not cfg.crop or cfg.crop_aspect == "preserve":
        return aspect
    if cfg.crop_aspect == "square":
        return np.ones_like(aspect)
    if cfg.crop_aspect == "closest":
        return closest_aspects(aspect, _bucket_aspects(cfg))
    if cfg.crop_aspect == "random":
        buckets = _bucket_aspects(cfg)
        u = uniforms(backend_id, rows, _STREAM_ASPECT)
        return buckets[np.minimum((u * len(buckets)).astype(np.int64), len(buckets) - 1)]
    raise ValueError(f"unknown crop_aspect {cfg.crop_aspect!r}; expected square, preserve, closest or random")


def target_sizes(widths, heights, cfg: BucketConfig, backend_id: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Target size, cover-resize size and crop box (int64 arrays) for every sample."""
    w = np.asarray(widths, dtype=np.int64)
    h = np.asarray(heights, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if not (w.shape == h.shape == rows.shape):
        raise ValueError(f"widths, heights and rows differ in length: {w.shape}, {h.shape}, {rows.shape}")
    if w.size and (w.min() <= 0 or h.min() <= 0):
        raise ValueError("every width and height must be positive")
    wf, hf = w.astype(np.float64), h.astype(np.float64)
    tw, th = _size_for_aspect(target_aspects(wf / hf, cfg, backend_id, rows), cfg)

    # Resize keeping the image's own aspect so that it covers the target, then crop the target out.
    scale = np.maximum(tw / wf, th / hf)
    rw = np.maximum(tw, np.rint(wf * scale).astype(np.int64))
    rh = np.maximum(th, np.rint(hf * scale).astype(np.int64))
    slack_x, slack_y = rw - tw, rh - th
    if cfg.crop_style == "center":
        left, top = slack_x // 2, slack_y // 2
    elif cfg.crop_style == "corner":
        # SimpleTuner's CornerCropping keeps the bottom-right corner: left = W - tw, top = H - th.
        left, top = slack_x, slack_y
    elif cfg.crop_style == "random":
        ux = uniforms(backend_id, rows, _STREAM_CROP_X)
        uy = uniforms(backend_id, rows, _STREAM_CROP_Y)
        left = np.minimum((ux * (slack_x + 1)).astype(np.int64), slack_x)
        top = np.minimum((uy * (slack_y + 1)).astype(np.int64), slack_y)
    else:
        raise ValueError(f"unknown crop_style {cfg.crop_style!r}; expected center, corner or random")
    return {
        "target_width": tw,
        "target_height": th,
        "resize_width": rw,
        "resize_height": rh,
        "crop_left": left,
        "crop_top": top,
    }


def bucket_keys(target_w, target_h) -> pa.Array:
    """Bucket names `str(round(tw / th, 2))`, computed once per distinct (tw, th) pair."""
    tw = np.asarray(target_w, dtype=np.int64)
    th = np.asarray(target_h, dtype=np.int64)
    if tw.size == 0:
        return pa.array([], type=pa.string())
    pairs, inverse = np.unique((tw << np.int64(32)) | th, return_inverse=True)
    names = [str(round(int(p >> 32) / int(p & 0xFFFFFFFF), 2)) for p in pairs]
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


def assign_buckets(index: pa.Table, cfg: BucketConfig, backend_id: str, seed_by_filename: bool = False) -> pa.Table:
    """The filtered index with `bucket`, target, resize and crop columns appended.

    Random choices are seeded by the row, or by the file name when `seed_by_filename` (local folders).
    """
    missing = [c for c in ("row", "width", "height") if c not in index.column_names]
    if missing:
        raise ValueError(f"filtered index lacks column(s) {missing}; have {index.column_names}")
    ids = filename_ids(index.column("filename")) if seed_by_filename else _int_column(index, "row")
    sizes = target_sizes(_int_column(index, "width"), _int_column(index, "height"), cfg, backend_id, ids)
    out = index.append_column("bucket", bucket_keys(sizes["target_width"], sizes["target_height"]))
    for name in BUCKET_COLUMNS:
        out = out.append_column(pa.field(name, pa.int32()), pa.array(sizes[name].astype(np.int32), type=pa.int32()))
    return out


def _aspect_of(key: str) -> float:
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
    return sorted(((str(k), int(n)) for k, n in pairs), key=lambda kv: (_aspect_of(kv[0]), kv[0]))


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
