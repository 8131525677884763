"""Checks on a committed cache: complete, correctly shaped, finite. Each returns what failed, with examples."""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.findings import EXAMPLES, Finding
from hf_assets.cache.health import VERIFIED_FILE, inspect_shards  # noqa: F401 - VERIFIED_FILE is read by callers
from hf_assets.cache.manifest import SHARDS_DIR, read_manifest

LATENT_TENSORS = ("mean", "std")  # the latent distribution of every latent cache entry
_ROW = "__hf_assets_row"

log = logging.getLogger(__name__)


def missing(expected: pa.Table, manifest: pa.Table, columns: list[str], excused: set[str] = frozenset()) -> Finding:
    """Rows of `expected` (matched on `columns`) absent from the manifest, except excused file names.

    Matched with an Arrow anti join (no Python object per row; a null key never matches); examples keep
    `expected`'s order.
    """
    wanted = expected.select(columns)
    wanted = wanted.append_column(_ROW, pa.array(np.arange(wanted.num_rows, dtype=np.int64)))
    if excused:
        first = wanted.column(columns[0])
        wanted = wanted.filter(pc.invert(pc.is_in(first, value_set=pa.array(sorted(excused), first.type))))
    if manifest.num_rows and wanted.num_rows:
        have = manifest.select(columns).cast(expected.select(columns).schema)
        absent = wanted.join(have, keys=columns, join_type="left anti")
        absent = absent.take(pc.sort_indices(absent.column(_ROW)))
    else:
        absent = wanted
    first_rows = absent.slice(0, EXAMPLES).select(columns).to_pylist()
    examples = [tuple(r[c] for c in columns) if len(columns) > 1 else r[columns[0]] for r in first_rows]
    return Finding(count=absent.num_rows, examples=examples)


def latent_shape_mismatches(manifest: pa.Table, channels: int, downscale: int) -> Finding:
    """Entries whose mean/std shape is not (channels, target_height / f, target_width / f), or for clips (a
    manifest with `latent_frames`) not (channels, latent_frames, target_height / f, target_width / f). Other
    tensors stored beside them (a conditioning sample's control image or mask) are at the target size, checked by
    their own check."""
    finding = Finding()
    frames = "latent_frames" in manifest.column_names
    columns = ["filename", "tensor_names", "shapes", "target_width", "target_height"] + (
        ["latent_frames"] if frames else []
    )
    for r in manifest.select(columns).to_pylist():
        time = [r["latent_frames"]] if frames else []
        expected = [channels, *time, r["target_height"] // downscale, r["target_width"] // downscale]
        for name, shape in zip(r["tensor_names"], r["shapes"]):
            if name in LATENT_TENSORS and list(shape) != expected:
                finding.add(f"{r['filename']}:{name} {list(shape)} != {expected}")
    return finding


def inconsistent_shapes(manifest: pa.Table) -> tuple[Finding, dict[str, list[int]]]:
    """Entries whose tensor shape differs from the most common shape of that tensor name."""
    shapes: dict[str, Counter] = {}
    records = manifest.select(["filename", "variant", "tensor_names", "shapes"]).to_pylist()
    for r in records:
        for name, shape in zip(r["tensor_names"], r["shapes"]):
            shapes.setdefault(name, Counter())[tuple(shape)] += 1
    expected = {name: list(c.most_common(1)[0][0]) for name, c in shapes.items()}
    finding = Finding()
    for r in records:
        for name, shape in zip(r["tensor_names"], r["shapes"]):
            if list(shape) != expected[name]:
                finding.add(f"{r['filename']}#{r['variant']}:{name} {list(shape)} != {expected[name]}")
    return finding, expected


def nonfinite_tensors(directory: Path, full: bool = False) -> Finding:
    """Entries of the manifest whose stored tensors hold NaN or inf, or whose shard cannot be read.

    Incremental (see `cache.health`): a shard already inspected in its current size and mtime is not read again;
    `full=True` reads every shard. Only the tensors the manifest points at count: a repaired entry's old copy,
    left in a shard that other entries still use, does not fail the check.
    """
    directory = Path(directory)
    finding = Finding()
    manifest = read_manifest(directory).table
    if not manifest.num_rows:
        return finding
    pairs = set(zip(manifest.column("shard").to_pylist(), manifest.column("key").to_pylist()))
    health = inspect_shards(directory, {shard for shard, _ in pairs}, SHARDS_DIR, full=full)
    for shard, reason in sorted(health.unreadable.items()):
        finding.add(f"unreadable shard {shard}: {reason}")
    for shard, names in sorted(health.nonfinite.items()):
        for name in names:
            if (shard, name.rsplit("/", 1)[0]) in pairs:
                finding.add(name)
    return finding
