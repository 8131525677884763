"""Persists each asset's small value beside its backend's caches; loads it back for runs and trainers."""

import importlib
from pathlib import Path

import dagster as dg
import pyarrow as pa

from hf_assets.cache.tables import TableFile, load_manifest, load_table, open_table_file, save_table, table_paths
from hf_assets.cache.view import CacheView
from hf_assets.data.lineage import source_fingerprint, stale_split_message
from hf_assets.data.sources import RawSplit, open_split
from hf_assets.data.split_store import LISTING, files_table, listing, rebuild_split, split_manifest
from hf_assets.resources.dataloader_config import cached_config
from hf_assets.resources.step_values import STEPS_DIR

_WARNED: set[tuple[str, str]] = set()  # (run id, message): several steps of one run load the same input
# An input declared with this metadata (`dg.AssetIn(..., metadata=AS_FILE)`) gets a stored table unread, as a
# `TableFile` to read by columns or in batches; other inputs (and a trainer's load_asset_value) get the pa.Table.
AS_FILE = {"hf_assets/load": "file"}


def warn_once_per_run(context, message: str) -> None:
    """Log a warning unless this run (in this process) already logged the same one."""
    try:
        run_id = context.step_context.run_id
    except Exception:  # noqa: BLE001 - no step context (e.g. a load outside a run): just warn
        run_id = None
    if run_id is not None:
        if (run_id, message) in _WARNED:
            return
        _WARNED.add((run_id, message))
    context.log.warning(message)


def run_id_of(context) -> str | None:
    """The id of the run a load or store happens in; None outside a run (e.g. a trainer's load_asset_value)."""
    try:
        return context.step_context.run_id
    except Exception:  # noqa: BLE001 - no step context
        return None


def declared_type(context: dg.InputContext):
    """The Python type the loading step declares for the input; None when it declares none."""
    try:
        return context.dagster_type.typing_type
    except dg.DagsterInvariantViolationError:  # a context built without one (a load outside a step)
        return None


RAW_SPLIT = "raw_split"  # the name raw_split is stored under
STORED_AS = "stored_as"  # the manifest field saying what handle_output stored: "split" or "table"
# The encoder caches their assets write and commit themselves, by asset: (the backend's folder of it, opener).
CACHES = {
    "vae_latents": ("vae_dir", "hf_assets.cache.latents:open_latents"),
    "text_embeds": ("text_dir", "hf_assets.cache.text_embed_cache:open_text_embeds"),
}


def _as_file(context) -> bool:
    metadata = getattr(context, "definition_metadata", None) or {}
    return all(metadata.get(k) == v for k, v in AS_FILE.items())


class HFAssetsIOManager(dg.ConfigurableIOManager):
    """Arrow tables go to `<cache_dir>/huggingface_metadata/<id>/<asset>.parquet`, a split as its files table and
    manifest (plus an image folder's listing), read back as they were stored; encoder caches reopen lazily."""

    config_path: str

    def _backend(self, context):
        key = context.asset_partition_key if context.has_asset_partitions else None
        if key is None:
            raise ValueError("hf_assets assets are partitioned by backend id; pass partition_key")
        return cached_config(self.config_path).backend(key)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        backend = self._backend(context)
        name = context.asset_key.path[-1]
        if isinstance(obj, RawSplit):
            store_split(backend.metadata_dir, obj, run_id_of(context))
        elif isinstance(obj, pa.Table):
            meta = {"backend": backend.id, "source_fingerprint": source_fingerprint(obj), STORED_AS: "table"}
            save_table(backend.metadata_dir, name, obj, meta)
        elif isinstance(obj, (TableFile, CacheView)):
            return  # written by the asset itself (a table written in pieces, an encoder cache), manifest included
        else:
            raise TypeError(f"{name}: cannot store a {type(obj).__name__}")

    def load_input(self, context: dg.InputContext):
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        name = context.asset_key.path[-1]
        if len(keys) > 1:  # a mapped input (a conditioning dataset's and its source's tables): one value per backend
            config = cached_config(self.config_path)
            read = open_table_file if _as_file(context) else load_table
            return {key: read(config.backend(key).metadata_dir, name) for key in keys}
        backend = self._backend(context)
        if name in CACHES:
            folder, opener = CACHES[name]
            module, function = opener.split(":")
            return getattr(importlib.import_module(module), function)(getattr(backend, folder))
        stored = load_manifest(backend.metadata_dir, name)
        if stored.get(STORED_AS, "split" if declared_type(context) is RawSplit else "table") == "split":
            return self._load_split(context, backend, stored)
        return (open_table_file if _as_file(context) else load_table)(backend.metadata_dir, name)

    def _load_split(self, context, backend, stored: dict) -> RawSplit:
        """The split as raw_split stored it; when it cannot be rebuilt (another kind, a changed local file, remote
        files another run listed) or was never stored, the source is listed once per run: the run's first step
        lists it and keeps the listing under steps/<run id>/ for the others, with a warning when the source changed
        since raw_split stored it."""
        run_id = run_id_of(context)
        split = stored_split(backend, backend.metadata_dir, run_id)
        if split is not None:
            return split
        this_run = backend.metadata_dir / STEPS_DIR / run_id if run_id else None
        split = stored_split(backend, this_run, run_id) if this_run is not None else None
        if split is None:
            split = open_split(backend)
            if this_run is not None:
                store_split(this_run, split, run_id)
        if stored.get("fingerprint") and stored["fingerprint"] != split.fingerprint:
            warn_once_per_run(
                context,
                stale_split_message(backend.id, "raw_split was materialized", stored["fingerprint"], split.fingerprint)
                + "; until then this run reads the current data",
            )
        return split


def store_split(folder: Path, split: RawSplit, run_id: str | None) -> None:
    """Store the split in `folder`: its files table and manifest, and an image folder's listing before them (a
    manifest names only what was written before it)."""
    listed = listing(split)
    if listed is not None:
        save_table(folder, LISTING, listed, {"fingerprint": split.fingerprint})
    save_table(folder, RAW_SPLIT, files_table(split), {**split_manifest(split, run_id), STORED_AS: "split"})


def stored_split(backend, folder: Path, run_id: str | None) -> RawSplit | None:
    """The split stored in `folder`, rebuilt without the source; None when none is stored or it cannot be rebuilt."""
    stored = load_manifest(folder, RAW_SPLIT)
    if not stored:
        return None
    listed = None
    if stored.get("kind") == "image_folder" and table_paths(folder, LISTING)[1].is_file():
        if load_manifest(folder, LISTING).get("fingerprint") == stored.get("fingerprint"):
            listed = load_table(folder, LISTING)
    files = load_table(folder, RAW_SPLIT) if str(stored.get("kind", "")).startswith("parquet") else None
    return rebuild_split(backend, stored, listed, files, run_id)
