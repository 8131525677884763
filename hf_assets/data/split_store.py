"""What raw_split stores of a split, and the split rebuilt from it without listing or reading the source again.

Stored: one row per piece (path, size, identity, rows, first split row), a manifest of the split's own fields (its
schema, kind, columns, and for Parquet files each piece's row span), and for an image folder its listing (names,
paths and captions; no image bytes). Rebuilt: an image folder from its listing, and local Parquet files whose size
and identity are unchanged. Other kinds (a `datasets` cache, remote stores) are not rebuilt: `rebuild_split` returns
None and the caller opens the source again.
"""

import base64
from pathlib import Path

import pyarrow as pa

from hf_assets.config.schema import BackendConfig
from hf_assets.data.local_folder import listing_captions
from hf_assets.data.parquet_files import ParquetPiece, file_identity, local_info
from hf_assets.data.split import RawSplit, TablePiece

LISTING = "raw_split_listing"  # the table name an image folder's listing is stored under, beside raw_split
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


def split_manifest(split: RawSplit) -> dict:
    """The split's fields as JSON values: enough, with `listing(split)`, to rebuild an image folder or local Parquet
    split."""
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
    }


def listing(split: RawSplit) -> pa.Table | None:
    """An image folder's listing table (stored so that later steps need not scan the folder); None for other kinds."""
    if split.kind == "image_folder" and len(split.pieces) == 1 and isinstance(split.pieces[0], TablePiece):
        return split.pieces[0].table
    return None


def rebuild_split(backend: BackendConfig, manifest: dict, stored_listing: pa.Table | None) -> RawSplit | None:
    """The split raw_split stored (its `split_manifest` and, for an image folder, its listing), or None when it
    cannot be rebuilt without the source: another kind, a store written before the manifest held a schema, or a
    local Parquet file whose size or identity changed since."""
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
    if manifest["kind"] == "parquet (local)" and manifest.get("pieces") is not None:
        pieces = [
            ParquetPiece(p["path"], None, p["key"], p["start"], p["lo"], p["hi"], p["record"])
            for p in manifest["pieces"]
        ]
        if not all(_unchanged(piece.record) for piece in pieces):
            return None
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(manifest["schema"])))
        return RawSplit(
            backend.id,
            manifest["source"],
            manifest["fingerprint"],
            tuple(pieces),
            schema,
            kind=manifest["kind"],
            **fields,
        )
    return None


def _unchanged(record: dict) -> bool:
    """True when the local file still has the size and identity it had when stored."""
    try:
        info = local_info(record["path"])
    except OSError:
        return False
    return info["size"] == record.get("size") and file_identity(info) == record.get("identity")
