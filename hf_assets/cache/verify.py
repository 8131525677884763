"""Checks on a committed cache: complete, correctly shaped, finite. Each returns what failed, with examples."""

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors import safe_open

from hf_assets.cache.atomic import write_json_atomic
from hf_assets.cache.manifest import SHARDS_DIR, read_manifest

EXAMPLES = 5
VERIFIED_FILE = "verified.json"  # shard name -> "size:mtime_ns" of shards found finite
_ROW = "__hf_assets_row"

log = logging.getLogger(__name__)


@dataclass
class Finding:
    """How many entries failed a check, and a few of them."""

    count: int = 0
    examples: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.count == 0

    def add(self, example) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


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
    """Entries whose mean/std shape is not (channels, target_height / f, target_width / f)."""
    finding = Finding()
    records = manifest.select(["filename", "tensor_names", "shapes", "target_width", "target_height"]).to_pylist()
    for r in records:
        expected = [channels, r["target_height"] // downscale, r["target_width"] // downscale]
        for name, shape in zip(r["tensor_names"], r["shapes"]):
            if list(shape) != expected:
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


def nonfinite_tensors(directory: Path) -> Finding:
    """Stored tensors holding NaN or inf, read one shard at a time from the memory map.

    Incremental: `verified.json` maps each shard already found finite to its "size:mtime_ns", and only shards
    of the manifest that are not in it, or whose size or mtime changed since, are read again. A shard holding
    a non-finite value is never recorded (it fails on every call); shards the manifest no longer references
    leave the memo.
    """
    directory = Path(directory)
    finding = Finding()
    manifest = read_manifest(directory).table
    memo_path = directory / VERIFIED_FILE
    memo = _read_memo(memo_path)
    shards = pc.unique(manifest.column("shard")).to_pylist() if manifest.num_rows else []
    verified: dict[str, str] = {}
    for shard in shards:
        path = directory / SHARDS_DIR / shard
        before = _stamp(path)
        if before is not None and memo.get(shard) == before:
            verified[shard] = before
            continue
        clean = True
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    finding.add(name)
                    clean = False
        if clean and _stamp(path) == before:  # not rewritten while it was read
            verified[shard] = before
    if verified != memo:
        try:
            write_json_atomic(verified, memo_path)
        except OSError as error:  # the memo only saves time: a read-only cache is still checked in full
            log.warning("could not write %s: %s", memo_path, error)
    return finding


def _stamp(path: Path) -> str | None:
    """'size:mtime_ns' of a file, None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _read_memo(path: Path) -> dict[str, str]:
    """The shards recorded as finite; {} when the memo is absent or unreadable (everything is read again)."""
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(memo, dict):
        return {}
    return {k: v for k, v in memo.items() if isinstance(k, str) and isinstance(v, str)}
