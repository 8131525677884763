"""Checks on a committed cache: complete, correctly shaped, finite. Each returns what failed, with examples."""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors import safe_open

from hf_assets.cache.manifest import SHARDS_DIR, read_manifest

EXAMPLES = 5


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
    """Rows of `expected` (matched on `columns`) absent from the manifest, except excused file names."""
    finding = Finding()
    have = set(zip(*(manifest.column(c).to_pylist() for c in columns))) if manifest.num_rows else set()
    for row in zip(*(expected.column(c).to_pylist() for c in columns)):
        if row not in have and row[0] not in excused:
            finding.add(row if len(row) > 1 else row[0])
    return finding


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
    """Stored tensors holding NaN or inf, read one shard at a time from the memory map."""
    finding = Finding()
    manifest = read_manifest(directory).table
    if not manifest.num_rows:
        return finding
    for shard in pc.unique(manifest.column("shard")).to_pylist():
        with safe_open(str(Path(directory) / SHARDS_DIR / shard), framework="pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    finding.add(name)
    return finding
