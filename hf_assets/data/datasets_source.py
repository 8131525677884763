"""Open a split through `datasets` (save_to_disk folders, imagefolder, JSON plus files, WebDataset tars, ...)."""

import os
from pathlib import Path

from hf_assets import env
from hf_assets.config.schema import BackendConfig
from hf_assets.data.split import DatasetNotFound, RawSplit


def open_datasets_split(backend: BackendConfig) -> RawSplit:
    """The split as `datasets` converts it (memory-mapped Arrow, images undecoded), for layouts that are not Parquet."""
    name = backend.dataset_name or ""
    if Path(name).is_dir() and _is_saved_to_disk(Path(name)):
        dataset, kind = _load_saved(backend, Path(name)), "datasets (save_to_disk)"
    else:
        dataset, kind = _load_dataset(backend, name), "datasets (load_dataset)"
    table = dataset.data.table if dataset._indices is None else dataset.flatten_indices().data.table
    return RawSplit.from_table(
        backend.id,
        table,
        name,
        dataset._fingerprint,
        kind=kind,
        image_column=backend.image_column,
        revision=backend.revision,
        base_dir=Path(name) if Path(name).is_dir() else None,
    )


def _load_dataset(backend: BackendConfig, name: str):
    import datasets

    kwargs = dict(split=backend.split, revision=backend.revision, cache_dir=str(backend.cache_dir / "datasets"))
    if backend.num_proc and backend.num_proc > 1:
        kwargs["num_proc"] = backend.num_proc
    token = os.environ.get(env.HUB_TOKEN)
    if token:
        kwargs["token"] = token
    try:
        dataset = datasets.load_dataset(name, **kwargs)
    except (FileNotFoundError, ConnectionError, ValueError) as exc:
        if isinstance(exc, ValueError) and "split" in str(exc).lower():
            raise ValueError(f"backend '{backend.id}': split '{backend.split}' of '{name}': {exc}") from None
        raise DatasetNotFound(not_found_message(backend, name, exc)) from None
    except Exception as exc:  # the hub client raises several unrelated types for a missing repo
        if type(exc).__name__ in {"DatasetNotFoundError", "RepositoryNotFoundError", "OfflineModeIsEnabled"}:
            raise DatasetNotFound(not_found_message(backend, name, exc)) from None
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


def not_found_message(backend: BackendConfig, name: str, exc: Exception) -> str:
    """Names the backend, the dataset, what was tried and the fix, on one line."""
    offline = env.hub_offline()
    tried = [f"a local folder ({Path(name).resolve()})"]
    tried.append("the Hugging Face Hub" + (f" (skipped: {env.HUB_OFFLINE}=1)" if offline else ""))
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"backend '{backend.id}': dataset '{name}' not found; tried {' and '.join(tried)}: {first_line}. "
        "Check dataset_name (a hub id such as 'user/name', or a folder relative to the config file)."
    )
