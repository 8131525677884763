"""A resumable, content-keyed tensor cache: triage what to encode, write shards + journal, commit."""

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hf_assets import env
from hf_assets.cache.atomic import clean_stale_temps, write_parquet_atomic
from hf_assets.cache.hashing import cache_keys
from hf_assets.cache.health import inspect_shards, recover_entries
from hf_assets.cache.manifest import (
    ENTRY_SCHEMA,
    FORMAT_VERSION,
    HASH_COLUMNS,
    JOURNAL_DIR,
    LOCATION_COLUMNS,
    MANIFEST_FILE,
    META_FILE,
    SHARDS_DIR,
    Manifest,
    entries_table,
    first_per_key,
    read_manifest,
    write_manifest,
)
from hf_assets.cache.repairs import Repairs
from hf_assets.cache.shards import (
    DEFAULT_MAX_BYTES,
    SHARD_SUFFIX,
    FlushedShard,
    ShardWriter,
    delete_shards,
    list_shards,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"
# How long a writer or commit waits for another process writing the same cache (HF_ASSETS_CACHE_LOCK_WAIT).
LOCK_WAIT_SECONDS = float(os.environ.get(env.CACHE_LOCK_WAIT, "3600"))
LOCK_POLL_SECONDS = 0.5


class CacheBusyError(RuntimeError):
    """Another writer or commit holds this cache directory."""


class MissingEntriesError(RuntimeError):
    """`commit` was asked for keys that no shard holds (the encoder did not finish)."""


@dataclass(frozen=True)
class CommitResult:
    """What `EncodedCache.commit` wrote and removed."""

    manifest: Manifest
    missing: int
    deleted_shards: tuple[str, ...]
    size_bytes: int


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class EncodedCache:
    """One cache directory: `manifest.parquet` + `manifest.json`, `shards/`, and a `journal/` of flushes.

    Usage: `to_encode, reused = cache.triage(wanted)`; `with cache.writer() as w: w.add(key, tensors)`
    for each row of `to_encode`; `cache.commit(wanted, meta)`. A killed run loses at most the
    unflushed buffer: the next `triage` reads the journal and sends only what is missing to encode.
    `wanted` needs `content_hash` and `settings_hash` columns; `key` is derived from them.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        prefix: str = "shard",
        max_bytes: int = DEFAULT_MAX_BYTES,
        lock_wait: float | None = None,
    ):
        self.directory = Path(directory)
        self.shards_dir = self.directory / SHARDS_DIR
        self.journal_dir = self.directory / JOURNAL_DIR
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.repairs = Repairs()
        self.lock_wait = LOCK_WAIT_SECONDS if lock_wait is None else lock_wait

    def read(self) -> Manifest:
        """The last committed manifest (empty if none)."""
        return read_manifest(self.directory)

    def _read_or_recover(self) -> tuple[Manifest, str | None]:
        """The committed manifest, or an empty one and why when it cannot be read (its shards are then recovered)."""
        try:
            return self.read(), None
        except Exception as error:  # a damaged Parquet file raises Arrow and OS errors
            if "format_version" in str(error):  # written by a newer hf_assets: never overwrite it
                raise
            return Manifest(), f"{self.directory / MANIFEST_FILE} is unreadable ({type(error).__name__}: {error})"

    def with_keys(self, wanted: pa.Table) -> pa.Table:
        """`wanted` with its `key` column = cache_key(content_hash, settings_hash), first."""
        missing = [c for c in HASH_COLUMNS if c not in wanted.column_names]
        if missing:
            raise ValueError(f"EncodedCache: wanted table lacks column(s) {missing}")
        keys = cache_keys(wanted.column("content_hash"), wanted.column("settings_hash"))
        if "key" in wanted.column_names:
            if not wanted.column("key").cast(pa.string()).combine_chunks().equals(keys):
                raise ValueError("EncodedCache: wanted 'key' differs from cache_key(content_hash, settings_hash)")
            return wanted
        return wanted.add_column(0, "key", keys)

    def _journal_parts(self) -> list[Path]:
        if not self.journal_dir.is_dir():
            return []
        return sorted(p for p in self.journal_dir.glob("*.parquet") if not p.name.startswith("."))

    def journal_entries(self, parts: list[Path] | None = None) -> pa.Table:
        """Entries flushed since the last commit (ENTRY_SCHEMA); unreadable parts are skipped."""
        tables = []
        for part in self._journal_parts() if parts is None else parts:
            try:
                tables.append(pq.read_table(part).cast(ENTRY_SCHEMA))
            except Exception as exc:  # noqa: BLE001 - any unreadable part is skipped; its shard is re-encoded and pruned
                log.warning("EncodedCache: skipping unreadable journal part %s: %s", part, exc)
        return pa.concat_tables(tables) if tables else ENTRY_SCHEMA.empty_table()

    def known_entries(
        self, manifest: Manifest | None = None, parts: list[Path] | None = None, drop_nonfinite: bool = True
    ) -> pa.Table:
        """Entries whose tensors can be read, one per key: the journal's, then the manifest's, then those of
        shards nothing records (a lost manifest), each checked against its shard (see `cache.health`).

        Entries in unreadable shards are left out; so are entries holding NaN or inf unless `drop_nonfinite` is
        False, and then they come last, so that a finite copy of the same key wins. `self.repairs` says what
        was left out or recovered.
        """
        repairs = Repairs()
        if manifest is None:
            manifest, repairs.manifest = self._read_or_recover()
        on_disk = list_shards(self.shards_dir)
        recorded = pa.concat_tables([self.journal_entries(parts), manifest.entries()])
        recorded = recorded.filter(pc.is_in(recorded.column("shard"), value_set=pa.array(on_disk, pa.string())))
        orphans = sorted(set(on_disk) - set(recorded.column("shard").to_pylist()))
        recovered, unreadable = recover_entries(self.shards_dir, orphans, ENTRY_SCHEMA)
        known = pa.concat_tables([recorded, recovered])
        health = inspect_shards(self.directory, set(known.column("shard").to_pylist()), SHARDS_DIR)
        unreadable.update(health.unreadable)
        readable = pc.invert(pc.is_in(known.column("shard"), value_set=pa.array(sorted(unreadable), pa.string())))
        repairs.unreadable_shards = {s: r for s, r in unreadable.items()}
        repairs.unreadable_entries = known.num_rows - (pc.sum(readable).as_py() or 0)
        known = known.filter(readable)
        bad = health.bad_keys()
        if bad:
            is_bad = pa.array(
                [(s, k) in bad for s, k in zip(known.column("shard").to_pylist(), known.column("key").to_pylist())],
                pa.bool_(),
            )
            repairs.nonfinite_keys = sorted({k for _, k in bad})
            if drop_nonfinite:
                known = known.filter(pc.invert(is_bad))
            else:  # stable: among copies of one key, finite ones first
                order = pc.sort_indices(pa.table({"bad": is_bad}), sort_keys=[("bad", "ascending")])
                known = known.take(order)
        recovered = recovered.filter(
            pc.invert(pc.is_in(recovered.column("shard"), value_set=pa.array(sorted(unreadable), pa.string())))
        )
        repairs.recovered_entries = recovered.num_rows
        if (
            repairs.manifest is None
            and not (self.directory / MANIFEST_FILE).exists()
            and (self.directory / META_FILE).exists()
        ):  # committed once (manifest.json is written beside it)
            repairs.manifest = f"{self.directory / MANIFEST_FILE} is missing"
        self.repairs = repairs
        return first_per_key(known)

    def triage(self, wanted: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Split `wanted` into (rows to encode, one per new key; rows whose entry is already cached).

        Entries that cannot be read back (unreadable shard) or hold NaN/inf count as missing, so they are encoded
        again; what was found is logged, kept in `self.repairs` and written to repairs.json for the checks.
        """
        wanted = self.with_keys(wanted)
        known = self.known_entries()
        present = pc.is_in(wanted.column("key"), value_set=known.column("key"))
        to_encode = first_per_key(wanted.filter(pc.invert(present)))
        self.repairs.reencode = (
            (
                pc.sum(
                    pc.is_in(to_encode.column("key"), value_set=pa.array(self.repairs.nonfinite_keys, pa.string()))
                ).as_py()
                or 0
            )
            if self.repairs.nonfinite_keys
            else 0
        )
        self.repairs.record(self.directory)
        return to_encode, wanted.filter(present)

    @contextlib.contextmanager
    def _lock(self, name: str = LOCK_FILE, shared: bool = False, wait: bool = True) -> Iterator[bool]:
        """Hold lock file `name` (shared or alone); wait up to `lock_wait` seconds for another holder (not at all
        when `wait` is False). Yields whether it had to wait."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / name, "a+b") as f:
            waited = False
            if fcntl is not None:
                deadline = time.monotonic() + (self.lock_wait if wait else 0)
                while True:
                    try:
                        fcntl.flock(f.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise CacheBusyError(
                                f"{self.directory} is being written by another writer or commit"
                                + (f" (waited {self.lock_wait:.0f} s)" if self.lock_wait else "")
                                + "; run again once it is done (its entries will be reused)"
                            ) from None
                        if not waited:
                            log.warning(
                                "%s is being written by another writer or commit: waiting up to %.0f s",
                                self.directory,
                                self.lock_wait,
                            )
                            waited = True
                        time.sleep(LOCK_POLL_SECONDS)
            try:
                yield waited
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _journal(self, shard: FlushedShard) -> None:
        stem = shard.name.removesuffix(SHARD_SUFFIX)
        write_parquet_atomic(entries_table([shard]), self.journal_dir / f"{stem}.parquet")

    @contextlib.contextmanager
    def writer(self, max_bytes: int | None = None, lane: str | None = None) -> Iterator[ShardWriter]:
        """A ShardWriter into `shards/` that journals each flushed shard; holds the directory lock.

        Writers of different `lane`s (the shards of one plan, on many processes or machines) write side by side:
        each holds the directory lock shared and its lane's lock alone, so only `commit` excludes them all.
        A writer that had to wait for another one does not store again the keys that one stored.
        """
        if lane is None:
            with self._lock() as waited:
                self.shards_dir.mkdir(parents=True, exist_ok=True)
                clean_stale_temps(self.shards_dir)
                clean_stale_temps(self.journal_dir)
                skip = set(self.known_entries().column("key").to_pylist()) if waited else set()
                w = ShardWriter(
                    self.shards_dir, self.prefix, max_bytes or self.max_bytes, on_flush=self._journal, skip=skip
                )
                with w:
                    yield w
            return
        if "/" in lane or lane.startswith("."):
            raise ValueError(f"EncodedCache.writer: lane {lane!r} must be a plain name")
        # No temp cleaning here: another machine's live temp file looks like a dead process's from this one.
        # A lane held by another writer (a lost attempt still running) fails at once: its step is retried.
        with self._lock(shared=True), self._lock(f"{LOCK_FILE}-{lane}", wait=False):
            self.shards_dir.mkdir(parents=True, exist_ok=True)
            with ShardWriter(self.shards_dir, self.prefix, max_bytes or self.max_bytes, on_flush=self._journal) as w:
                yield w

    def commit(
        self, wanted: pa.Table, meta: Mapping[str, Any] | None = None, allow_missing: bool = False
    ) -> CommitResult:
        """Write the final manifest for `wanted`, clear the journal, and delete unreferenced shards."""
        with self._lock():
            wanted = self.with_keys(wanted)
            old, _ = self._read_or_recover()
            parts = self._journal_parts()
            known = self.known_entries(old, parts, drop_nonfinite=False)
            idx = pc.index_in(wanted.column("key"), value_set=known.column("key"))
            absent = pc.is_null(idx)
            missing = pc.sum(absent).as_py() or 0
            if missing and not allow_missing:
                sample = wanted.filter(absent).column("key").slice(0, 3).to_pylist()
                raise MissingEntriesError(
                    f"{self.directory}: {missing} wanted entries are not cached (e.g. {sample}); "
                    "encode them or pass allow_missing=True"
                )
            if missing:
                wanted, idx = wanted.filter(pc.invert(absent)), pc.drop_null(idx)
            locations = known.take(idx)
            table = wanted.drop_columns([c for c in LOCATION_COLUMNS if c in wanted.column_names])
            for name in LOCATION_COLUMNS:
                table = table.append_column(ENTRY_SCHEMA.field(name), locations.column(name))
            manifest = Manifest(table=table, meta=self._meta(old.meta, meta, table))
            write_manifest(self.directory, table, manifest.meta)
            for part in parts:
                part.unlink(missing_ok=True)
            referenced = manifest.shards()
            deleted = delete_shards(self.shards_dir, [s for s in list_shards(self.shards_dir) if s not in referenced])
            for d in (self.shards_dir, self.journal_dir, self.directory):
                clean_stale_temps(d)
            return CommitResult(manifest, missing, tuple(deleted), self.size_bytes())

    @staticmethod
    def _meta(old: Mapping[str, Any], new: Mapping[str, Any] | None, table: pa.Table) -> dict[str, Any]:
        base = dict(old) if new is None else dict(new)
        now = _now()
        base["format_version"] = FORMAT_VERSION
        base["created_at"] = old.get("created_at", now)
        base["updated_at"] = now
        base["num_rows"] = table.num_rows
        base["num_keys"] = len(pc.unique(table.column("key"))) if table.num_rows else 0
        base["num_shards"] = len(pc.unique(table.column("shard"))) if table.num_rows else 0
        base["tensor_bytes"] = int(pc.sum(first_per_key(table).column("nbytes")).as_py() or 0)
        return base

    def size_bytes(self) -> int:
        """Bytes on disk under the cache directory (shards, manifest, journal)."""
        total = 0
        for root, _, files in os.walk(self.directory):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(root, name)).st_size
        return total
