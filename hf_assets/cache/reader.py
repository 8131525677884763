"""A lazy `Mapping` over a committed cache: tensors are read from memory-mapped shards on access."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import torch

from hf_assets.cache.manifest import MANIFEST_FILE, SHARDS_DIR, read_manifest
from hf_assets.cache.shards import ShardReader, stored_name
from hf_assets.cache.view import CacheView

_SEP = "\x1f"  # joins a row's tensor names into one dictionary-encodable string


class LazyTensorMapping(CacheView):
    """`key -> {tensor name: tensor}` (or, with `group=True`, `key -> [dict per variant]`).

    Construction reads only the manifest; each lookup reads that entry's tensors from its shard.
    Rows sharing a `key_column` value are ordered by the `variant` column when there is one.
    """

    def __init__(self, directory: str | os.PathLike, key_column: str = "filename", group: bool = False):
        self.directory = Path(directory)
        if not (self.directory / MANIFEST_FILE).exists():
            raise FileNotFoundError(f"{self.directory} has no {MANIFEST_FILE}: the cache was never committed")
        manifest = read_manifest(self.directory)
        if key_column not in manifest.table.column_names:
            raise KeyError(f"{self.directory}: manifest has no column {key_column!r} ({manifest.table.column_names})")
        self.key_column = key_column
        self.group = group
        self.manifest: pa.Table = manifest.table
        self.meta: dict[str, Any] = manifest.meta
        self._index = self._build_index()
        self._shards = ShardReader(self.directory / SHARDS_DIR)
        # Compact per-row lookups (no Python object per row): shard and tensor-name sets are few.
        self._key_col = self.manifest.column("key").combine_chunks()
        shards = self.manifest.column("shard").combine_chunks().dictionary_encode()
        self._shard_idx = shards.indices.to_numpy()
        self._shard_names: list[str] = shards.dictionary.to_pylist()
        names = pc.binary_join(self.manifest.column("tensor_names"), _SEP).combine_chunks().dictionary_encode()
        self._names_idx = names.indices.to_numpy()
        self._name_sets = [tuple(v.split(_SEP)) for v in names.dictionary.to_pylist()]

    def _build_index(self) -> dict[Any, int | tuple[int, ...]]:
        table = self.manifest
        order = range(table.num_rows)
        if self.group and "variant" in table.column_names:
            order = pc.sort_indices(table, sort_keys=[("variant", "ascending")]).to_pylist()  # stable
        values = table.column(self.key_column).to_pylist()
        index: dict[Any, list[int]] = {}
        for i in order:
            index.setdefault(values[i], []).append(i)
        if not self.group:
            dups = [k for k, rows in index.items() if len(rows) > 1]
            if dups:
                raise ValueError(
                    f"{self.directory}: {len(dups)} {self.key_column!r} value(s) have several rows "
                    f"(e.g. {dups[:3]}); open with group=True"
                )
            return {k: rows[0] for k, rows in index.items()}  # one int per key: small for millions of rows
        return {k: tuple(rows) for k, rows in index.items()}

    def _rows(self, key: Any) -> tuple[int, ...]:
        try:
            rows = self._index[key]
        except KeyError:
            raise KeyError(key) from None
        return rows if self.group else (rows,)

    def _locate(self, i: int) -> tuple[str, str, tuple[str, ...]]:
        """(key, shard, tensor names) of manifest row `i`."""
        i = int(i)
        return self._key_col[i].as_py(), self._shard_names[self._shard_idx[i]], self._name_sets[self._names_idx[i]]

    def _read(self, i: int) -> dict[str, torch.Tensor]:
        key, shard, names = self._locate(i)
        return {name: self._shards.get(shard, stored_name(key, name)) for name in names}

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        rows = self._rows(key)
        if self.group:
            return [self._read(i) for i in rows]
        return self._read(rows[0])

    def tensor(self, key: Any, name: str, variant: int = 0) -> torch.Tensor:
        """Read one named tensor of `key` (its `variant`-th row in group mode) without the others."""
        key_, shard, names = self._locate(self._rows(key)[variant])
        if name not in names:
            raise KeyError(f"{key!r} has no tensor {name!r} (has {list(names)})")
        return self._shards.get(shard, stored_name(key_, name))

    def tensor_names(self, key: Any, variant: int = 0) -> tuple[str, ...]:
        """The names of the tensors stored for `key` (its `variant`-th row in group mode), reading none of them."""
        return self._locate(self._rows(key)[variant])[2]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._index)

    def row(self, key: Any) -> dict[str, Any]:
        """The manifest row of `key` as a dict (its first variant in group mode)."""
        return self.manifest.slice(self._rows(key)[0], 1).to_pylist()[0]

    def rows(self, key: Any) -> list[dict[str, Any]]:
        """Every manifest row of `key`, in variant order."""
        return [self.manifest.slice(i, 1).to_pylist()[0] for i in self._rows(key)]

    def close(self) -> None:
        """Release open shard handles (they reopen on the next access)."""
        self._shards.close()

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: handles reopen lazily there
        state = self.__dict__.copy()
        state["_shards"] = ShardReader(self.directory / SHARDS_DIR)
        return state

    def __repr__(self) -> str:
        mode = "grouped " if self.group else ""
        return f"LazyTensorMapping({str(self.directory)!r}, {len(self)} {mode}keys by {self.key_column!r})"
