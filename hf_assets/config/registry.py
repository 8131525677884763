"""Every SimpleTuner dataloader key hf_assets knows: where it may appear, and whether it is honoured, accepted with a
warning (and why) or refused (and why). The one source of the loader's key handling and of the key table in
the README ("Your SimpleTuner config").

The keys are declared in `keys_entry.py`, `keys_storage.py` and `keys_blocks.py`; this module indexes them.
Meanings are SimpleTuner's (`documentation/DATALOADER.md`, `documentation/HUGGINGFACE_DATASETS.md`).
"""

from collections.abc import Mapping
from types import MappingProxyType

from hf_assets.config.fields import Field
from hf_assets.config.keys_blocks import BLOCK_KEYS
from hf_assets.config.keys_entry import ENTRY_KEYS
from hf_assets.config.keys_storage import STORAGE_KEYS
from hf_assets.config.keyspec import (  # noqa: F401 - the scope names are part of the registry's interface
    CACHE,
    COMPOSITE,
    CONDITIONING,
    DATASET,
    FILTER,
    HUGGINGFACE,
    PARQUET,
    SCOPES,
    STATUSES,
    VIDEO,
    Key,
    Status,
)


def _index(keys: list[Key]) -> dict[str, dict[str, Key]]:
    """scope -> name -> key, refusing a name declared twice in one scope."""
    index: dict[str, dict[str, Key]] = {scope: {} for scope in SCOPES}
    for key in keys:
        for scope in key.scopes:
            if key.name in index[scope]:
                raise ValueError(f"key {key.name!r} is declared twice in scope {scope!r}")
            index[scope][key.name] = key
    return index


KEYS: tuple[Key, ...] = (*ENTRY_KEYS, *STORAGE_KEYS, *BLOCK_KEYS)
_BY_SCOPE = _index(list(KEYS))


def keys_in(scope: str) -> Mapping[str, Key]:
    """The keys allowed in one scope, by name."""
    return MappingProxyType(_BY_SCOPE[scope])


def lookup(scope: str, name: str) -> Key | None:
    """The key `name` in `scope`, or None when it is not known there."""
    return _BY_SCOPE[scope].get(name)


def checks(scope: str) -> dict[str, Field]:
    """name -> value check of every key of a scope that has one."""
    return {name: key.check for name, key in _BY_SCOPE[scope].items() if key.check is not None}


def dataset_keys() -> dict[str, Key]:
    """Keys with one meaning at the top level of a dataset entry and in its `huggingface` block, by name."""
    return {key.name: key for key in KEYS if DATASET in key.scopes and HUGGINGFACE in key.scopes}


def status_counts() -> dict[Status, int]:
    """How many (key, scope) pairs have each status."""
    counts = dict.fromkeys(STATUSES, 0)
    for key in KEYS:
        counts[key.status] += len(key.scopes)
    return counts
