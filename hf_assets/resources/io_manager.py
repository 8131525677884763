"""Persists each asset's small value beside its backend's caches; loads it back for runs and trainers."""

import dagster as dg
import pyarrow as pa

from hf_assets.cache.tables import load_manifest, load_table, save_table
from hf_assets.data.lineage import source_fingerprint, stale_split_message
from hf_assets.data.sources import RawSplit, open_split
from hf_assets.resources.dataloader import cached_config

_WARNED: set[tuple[str, str]] = set()  # (run id, message): several steps of one run load the same input


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


FILE_COLUMNS = {
    "path": pa.string(),
    "size": pa.int64(),
    "identity": pa.string(),
    "rows": pa.int64(),
    "start": pa.int64(),
}


def files_table(split: RawSplit) -> pa.Table:
    """The split's files (or in-memory pieces) as a table: path, size, identity, rows, first split row."""
    files = split.files
    return pa.table({name: pa.array([f.get(name) for f in files], kind) for name, kind in FILE_COLUMNS.items()})


class HFAssetsIOManager(dg.ConfigurableIOManager):
    """Arrow tables go to `<cache_dir>/huggingface_metadata/<id>/<asset>.parquet`; encoder caches reopen lazily."""

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
            meta = {
                "source": obj.source,
                "kind": obj.kind,
                "fingerprint": obj.fingerprint,
                "revision": obj.revision,
                "columns": obj.schema.names,
            }
            save_table(backend.metadata_dir, name, files_table(obj), meta)
        elif isinstance(obj, pa.Table):
            meta = {"backend": backend.id, "source_fingerprint": source_fingerprint(obj)}
            save_table(backend.metadata_dir, name, obj, meta)
        elif hasattr(obj, "directory"):
            return  # an encoder cache: the asset wrote and committed its own files
        else:
            raise TypeError(f"{name}: cannot store a {type(obj).__name__}")

    def load_input(self, context: dg.InputContext):
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        if len(keys) > 1:  # a mapped input (a conditioning dataset's and its source's tables): one value per backend
            name = context.asset_key.path[-1]
            config = cached_config(self.config_path)
            return {key: load_table(config.backend(key).metadata_dir, name) for key in keys}
        backend = self._backend(context)
        name = context.asset_key.path[-1]
        if name == "raw_split":
            split = open_split(backend)
            stored = load_manifest(backend.metadata_dir, name).get("fingerprint")
            if stored and stored != split.fingerprint:
                warn_once_per_run(
                    context,
                    stale_split_message(backend.id, "raw_split was materialized", stored, split.fingerprint)
                    + "; until then this run reads the current data",
                )
            return split
        if name == "vae_latents":
            from hf_assets.cache.latents import open_latents

            return open_latents(backend.vae_dir)
        if name == "text_embeds":
            from hf_assets.cache.text_embeds import open_text_embeds

            return open_text_embeds(backend.text_dir)
        return load_table(backend.metadata_dir, name)
