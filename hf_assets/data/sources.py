"""Open a backend's split as a memory-mapped Arrow table whose image column is never decoded."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from hf_assets.config.schema import BackendConfig
from hf_assets.data.columns import MissingColumn, available_columns, resolve_column

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


class DatasetNotFound(FileNotFoundError):
    """The configured dataset could not be opened; says what was tried."""


@dataclass(frozen=True)
class RawSplit:
    """One loaded split: an Arrow table (memory-mapped where possible) and where it came from."""

    backend_id: str
    table: pa.Table
    source: str
    fingerprint: str
    revision: str | None = None
    base_dir: Path | None = None  # relative image paths resolve against it

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def open_split(backend: BackendConfig) -> RawSplit:
    """Load the backend's split without decoding images (hub id, Parquet/Arrow folder, save_to_disk folder, image folder).

    Only the Arrow table is kept: image columns stay as their stored bytes or paths, never decoded.
    """
    if backend.type == "local":
        from hf_assets.data.local_folder import scan_image_folder

        return scan_image_folder(backend)
    name = backend.dataset_name or ""
    if Path(name).is_dir() and _is_saved_to_disk(Path(name)):
        dataset = _load_saved(backend, Path(name))
    else:
        dataset = _load_dataset(backend, name)
    table = dataset.data.table if dataset._indices is None else dataset.flatten_indices().data.table
    split = RawSplit(
        backend_id=backend.id,
        table=table,
        source=name,
        fingerprint=dataset._fingerprint,
        revision=backend.revision,
        base_dir=Path(name) if Path(name).is_dir() else None,
    )
    require_columns(split, backend)
    return split


def require_columns(split: RawSplit, backend: BackendConfig) -> None:
    """Fail early, listing what exists, when a configured column is absent."""
    wanted = {
        "image_column": [backend.image_column],
        "caption_column": list(backend.captions.columns),
        "fallback_caption_column": [backend.captions.fallback_column],
        "description_column": [backend.captions.description_column],
        "width_column": [backend.width_column],
        "height_column": [backend.height_column],
        "num_frames_column": [backend.num_frames_column],
        "fps_column": [backend.fps_column],
        "filter_func.collection_column": [backend.filters.collection_column if backend.filters.collection else None],
        "filter_func.quality_column": [backend.filters.quality_column if backend.filters.quality_thresholds else None],
    }
    for key, columns in wanted.items():
        for column in columns:
            if not column:
                continue
            try:
                resolve_column(split.table, column)
            except MissingColumn:
                raise MissingColumn(
                    f"backend '{backend.id}': {key} '{column}' is not a column of {split.source}; "
                    f"available: {', '.join(sorted(available_columns(split.table.schema)))}"
                ) from None


def _load_dataset(backend: BackendConfig, name: str):
    import datasets

    kwargs = dict(split=backend.split, revision=backend.revision, cache_dir=str(backend.cache_dir / "datasets"))
    if backend.num_proc and backend.num_proc > 1:
        kwargs["num_proc"] = backend.num_proc
    token = os.environ.get("HF_TOKEN")
    if token:
        kwargs["token"] = token
    try:
        dataset = datasets.load_dataset(name, **kwargs)
    except (FileNotFoundError, ConnectionError, ValueError) as exc:
        if isinstance(exc, ValueError) and "split" in str(exc).lower():
            raise ValueError(f"backend '{backend.id}': split '{backend.split}' of '{name}': {exc}") from None
        raise DatasetNotFound(_not_found_message(backend, name, exc)) from None
    except Exception as exc:  # the hub client raises several unrelated types for a missing repo
        if type(exc).__name__ in {"DatasetNotFoundError", "RepositoryNotFoundError", "OfflineModeIsEnabled"}:
            raise DatasetNotFound(_not_found_message(backend, name, exc)) from None
        raise
    return dataset


def _load_saved(backend: BackendConfig, folder: Path):
    import datasets

    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        base = backend.split.split("[")[0]
        if base not in loaded:
            raise ValueError(f"backend '{backend.id}': split '{base}' not in {folder}; available: {', '.join(loaded)}")
        loaded = loaded[base]
    if "[" in backend.split:
        instruction = datasets.ReadInstruction.from_spec(backend.split)
        parts = instruction.to_absolute({backend.split.split("[")[0]: loaded.num_rows})
        if len(parts) != 1:
            raise ValueError(f"backend '{backend.id}': split '{backend.split}' must be one contiguous slice")
        loaded = loaded.select(range(parts[0].from_, parts[0].to))
    return loaded


def _is_saved_to_disk(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _not_found_message(backend: BackendConfig, name: str, exc: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false")
    tried = [f"a local folder ({Path(name).resolve()})"]
    tried.append("the Hugging Face Hub" + (" (skipped: HF_HUB_OFFLINE=1)" if offline else ""))
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"backend '{backend.id}': dataset '{name}' not found; tried {' and '.join(tried)}: {first_line}. "
        "Check dataset_name (a hub id such as 'user/name', or a folder relative to the config file)."
    )


def fingerprint_of(parts: list[str]) -> str:
    """A short stable hash of strings, for sources that datasets does not fingerprint."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()
