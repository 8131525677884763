"""What raw_split stores of a split, and the split rebuilt from it without listing or reading the source again.

Stored: one row per piece (path, size, identity, rows, first split row, the file rows it covers and the file's
Parquet footer), a manifest of the split's own fields (its schema, kind, columns, the run that listed it, and for
Parquet files each piece's row span), and for an image folder its listing (names, paths and captions; no image
bytes). Rebuilt: an image folder from its listing, local Parquet files whose size and identity are unchanged, and
remote Parquet files within the run that listed them (footers from the record: no listing, HEAD or footer read).
Other kinds (a `datasets` cache) are not rebuilt: `rebuild_split` returns None and the caller opens the source again.
"""

import base64
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hf_assets.config.schema import BackendConfig
from hf_assets.data.local_folder import listing_captions
from hf_assets.data.parquet_files import ParquetPiece, file_identity, footer_bytes, local_info, remember_footer
from hf_assets.data.parquet_source import filesystem_for
from hf_assets.data.split import RawSplit, TablePiece

LISTING = "raw_split_listing"  # the table name an image folder's listing is stored under, beside raw_split
FILE_COLUMNS = {
    "path": pa.string(),
    "size": pa.int64(),
    "identity": pa.string(),
    "rows": pa.int64(),
    "start": pa.int64(),
    "lo": pa.int64(),  # the file rows [lo, hi) the piece covers
    "hi": pa.int64(),
    "file_rows": pa.int64(),
    "footer": pa.binary(),  # the file's Parquet footer (PAR1 + FileMetaData + length + PAR1)
}


def files_table(split: RawSplit) -> pa.Table:
    """The split's files (or in-memory pieces) as a table: path, size, identity, rows, first split row, and for
    Parquet files the file slice and footer."""
    rows = []
    for piece in split.pieces:
        parquet = isinstance(piece, ParquetPiece)
        rows.append(
            {
                **{k: piece.record.get(k) for k in ("path", "size", "identity", "file_rows")},
                "rows": piece.num_rows,
                "start": piece.start,
                "lo": piece.lo if parquet else None,
                "hi": piece.hi if parquet else None,
                "footer": footer_bytes(piece.footer()) if parquet else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=pa.schema(FILE_COLUMNS))


def split_manifest(split: RawSplit, run_id: str | None = None) -> dict:
    """The split's fields as JSON values: enough, with `listing(split)` and `files_table(split)`, to rebuild an image
    folder or Parquet split; `run_id` names the run that listed it."""
    pieces = [
        {"path": p.path, "key": p.key, "start": p.start, "lo": p.lo, "hi": p.hi, "record": p.record}
        for p in split.pieces
        if isinstance(p, ParquetPiece)
    ]
    return {
        "source": split.source,
        "kind": split.kind,
        "fingerprint": split.fingerprint,
        "revision": split.revision,
        "columns": split.schema.names,
        "schema": base64.b64encode(split.schema.serialize().to_pybytes()).decode(),
        "image_column": split.image_column,
        "base_dir": str(split.base_dir) if split.base_dir is not None else None,
        "name_column": split.name_column,
        "detail_column": split.detail_column,
        "pieces": pieces if len(pieces) == len(split.pieces) else None,
        "listed_by_run": run_id,
    }


def listing(split: RawSplit) -> pa.Table | None:
    """An image folder's listing table (stored so that later steps need not scan the folder); None for other kinds."""
    if split.kind == "image_folder" and len(split.pieces) == 1 and isinstance(split.pieces[0], TablePiece):
        return split.pieces[0].table
    return None


def rebuild_split(
    backend: BackendConfig,
    manifest: dict,
    stored_listing: pa.Table | None,
    files: pa.Table | None = None,
    run_id: str | None = None,
) -> RawSplit | None:
    """The split raw_split stored (its `split_manifest`, its `files_table` and, for an image folder, its listing), or
    None when it cannot be rebuilt without the source: another kind, a store written before the manifest held a
    schema, a local Parquet file whose size or identity changed since, or remote Parquet files listed by another run
    (`run_id`; None, outside a run, accepts any) or stored without footers."""
    if not manifest.get("schema"):
        return None
    fields = dict(
        image_column=manifest["image_column"],
        revision=manifest.get("revision"),
        base_dir=Path(manifest["base_dir"]) if manifest.get("base_dir") else None,
        name_column=manifest.get("name_column"),
        detail_column=manifest.get("detail_column"),
    )
    if manifest["kind"] == "image_folder" and stored_listing is not None:
        return RawSplit.from_table(
            backend.id,
            stored_listing,
            manifest["source"],
            manifest["fingerprint"],
            kind="image_folder",
            captions=listing_captions(backend),
            **fields,
        )
    kind = str(manifest["kind"])
    if not kind.startswith("parquet") or manifest.get("pieces") is None:
        return None
    local = kind == "parquet (local)"
    footers = files.column("footer").to_pylist() if files is not None and "footer" in files.column_names else None
    if footers is not None and (len(footers) != len(manifest["pieces"]) or None in footers):
        footers = None
    if not local and (footers is None or (run_id is not None and manifest.get("listed_by_run") != run_id)):
        return None  # a remote store may have changed since another run listed it: list it again
    filesystem = filesystem_for(backend, kind)
    pieces = [
        ParquetPiece(p["path"], filesystem, p["key"], p["start"], p["lo"], p["hi"], p["record"])
        for p in manifest["pieces"]
    ]
    if local and not all(_unchanged(piece.record) for piece in pieces):
        return None
    for piece, footer in zip(pieces, footers or []):
        remember_footer(piece.key, pq.read_metadata(pa.BufferReader(footer)))  # page reads parse no footer again
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(manifest["schema"])))
    return RawSplit(
        backend.id,
        manifest["source"],
        manifest["fingerprint"],
        tuple(pieces),
        schema,
        kind=kind,
        filesystem=filesystem,
        **fields,
    )


def _unchanged(record: dict) -> bool:
    """True when the local file still has the size and identity it had when stored."""
    try:
        info = local_info(record["path"])
    except OSError:
        return False
    return info["size"] == record.get("size") and file_identity(info) == record.get("identity")
