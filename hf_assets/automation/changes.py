"""What a backend's inputs look like now, as small digests, and whether they changed since last seen (no Dagster).

A backend's state is two digests: its config entry (every parsed setting) and its source, which is
- for a Hub dataset: the commit its configured revision points at (one `HfApi.dataset_info` call);
- for a local folder or a local dataset folder: the identities (relative path, size, mtime) of its files;
- for an fsspec URL of Parquet files (`s3://`, `gs://`, `https://`, ...): their identities (path, size, etag or mtime),
  listed by raw_split's own listing code (`data.parquet_source.list_parquet`);
- for an S3 image folder: the identities (path, size, etag or mtime) its filesystem lists.
It also keeps what a reason needs to name the change: the settings, the commit, and each file's stamp (up to
NAMED_FILES_LIMIT files).
"""

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hf_assets import env
from hf_assets.cache.hashing import fingerprint_of
from hf_assets.config.schema import BackendConfig

HubApi = Any  # huggingface_hub.HfApi or anything with dataset_info(repo_id, revision=..., token=...) -> .sha


NAMED_FILES_LIMIT = 2000  # up to this many files, a state keeps each file's stamp so a change names its files
NAMES_SHOWN = 5  # file names or settings quoted per kind of change


def config_settings(backend: BackendConfig) -> dict[str, str]:
    """Every parsed setting of the backend's entry, flat (`buckets.resolution`), as text; a credential (a field
    kept out of repr) only as "(set)" or "(unset)"."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                item = getattr(value, f.name)
                name = f"{prefix}.{f.name}" if prefix else f.name
                if f.repr:
                    walk(name, item)
                else:
                    flat[name] = "(set)" if item else "(unset)"
        elif isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = json.dumps(value, sort_keys=True, default=str)

    walk("", backend)
    return flat


def config_digest(backend: BackendConfig) -> str:
    """A digest of every parsed setting of the backend's entry: any edit that changes a setting changes it."""
    return fingerprint_of([json.dumps(_plain(backend), sort_keys=True, default=str)])


def _plain(value: Any) -> Any:
    """`dataclasses.asdict`'s structure, without its deep copy (which a read-only mapping such as a conditioning
    generator's parameters refuses): dataclasses and mappings as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def folder_files(root: Path) -> dict[str, str]:
    """relative path -> "size|mtime" of every file under `root` (hidden ones skipped), no byte read."""
    files: dict[str, str] = {}
    stack = [Path(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.name.startswith("."):  # .cache, .lock and partial downloads are not data
                    continue
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=True):
                    stat = entry.stat()
                    files[Path(entry.path).relative_to(root).as_posix()] = f"{stat.st_size}|{stat.st_mtime_ns}"
    return files


def fsspec_files(url: str, fs=None) -> dict[str, str]:
    """path -> "size|etag" (else modification time) of the files an fsspec URL lists. `fs` is the filesystem to
    list with (default: the URL's own, credentials from the environment)."""
    import fsspec

    if fs is None:
        fs, path = fsspec.core.url_to_fs(url)
    else:
        path = fs._strip_protocol(url)
    files = {}
    for name, info in fs.find(path, detail=True).items():
        if info.get("type", "file") != "file":
            continue
        stamp = next(
            (
                str(info[k])
                for k in ("ETag", "etag", "md5", "mtime", "LastModified", "last_modified", "updated", "created")
                if info.get(k) is not None
            ),
            "",
        )
        files[name] = f"{info.get('size')}|{stamp}"
    return files


def parquet_files(url: str) -> dict[str, str]:
    """path -> "size|identity" of the Parquet files at a URL, listed as raw_split lists them (the same code: each
    folder listed once; the identity asked per file where the listing does not give one)."""
    import fsspec

    from hf_assets.data.parquet_files import file_identity
    from hf_assets.data.parquet_source import list_parquet

    fs, path = fsspec.core.url_to_fs(url)
    _, infos = list_parquet(fs, path)
    return {info["name"]: f"{info.get('size')}|{file_identity(info)}" for info in infos}


def files_digest(files: dict[str, str]) -> str:
    """One digest of a listing, whatever the order it was listed in."""
    return fingerprint_of(sorted(f"{name}|{stamp}" for name, stamp in files.items()))


def hub_commit(repo_id: str, revision: str | None, api: HubApi) -> str:
    """The commit the dataset's revision (default branch when None) points at now."""
    token = os.environ.get(env.HUB_TOKEN) or None
    info = api.dataset_info(repo_id, revision=revision, token=token)
    if not getattr(info, "sha", None):
        raise ValueError(f"the Hub returned no commit for dataset '{repo_id}' revision '{revision or 'main'}'")
    return info.sha


def source_kind(backend: BackendConfig) -> str:
    """ "folder" (local files), "s3" (a type aws bucket), "fsspec" (a URL) or "hub" (a Hub dataset id)."""
    if backend.type == "local":
        return "folder"
    if backend.type == "aws":
        return "s3"
    name = backend.dataset_name or ""
    if "://" in name:
        return "fsspec"
    return "folder" if Path(name).is_dir() else "hub"


def source_state(backend: BackendConfig, hub_api: Callable[[], HubApi]) -> dict[str, Any]:
    """The backend's data as it is now: its digest, where it is, and what names a change (the commit, or each
    file's stamp up to NAMED_FILES_LIMIT files); raises when it cannot be reached."""
    kind = source_kind(backend)
    if kind == "hub":
        commit = hub_commit(backend.dataset_name, backend.revision, hub_api())
        where = f"{backend.dataset_name}@{backend.revision or 'main'}"
        return {"source": commit, "where": where, "commit": commit, "described": f"{where} is commit {commit[:12]}"}
    if kind == "fsspec":
        root, files = backend.dataset_name, parquet_files(backend.dataset_name)
    elif kind == "s3":  # the bucket's own endpoint and credentials (never in the description)
        from hf_assets.data.s3_folder import s3_filesystem

        root, files = backend.s3.url, fsspec_files(backend.s3.url, s3_filesystem(backend.s3))
    else:
        root = backend.instance_data_dir if backend.type == "local" else Path(backend.dataset_name)
        if root is None or not Path(root).is_dir():
            raise FileNotFoundError(f"backend '{backend.id}': {root} is not a folder")
        files = folder_files(Path(root))
    state: dict[str, Any] = {
        "source": files_digest(files),
        "where": str(root),
        "count": len(files),
        "described": f"{len(files)} files under {root}",
    }
    if len(files) <= NAMED_FILES_LIMIT:
        state["files"] = files
    return state


def backend_state(backend: BackendConfig, hub_api: Callable[[], HubApi]) -> dict[str, Any]:
    """The cursor entry of a backend: its config digest and settings, and its source's state (`source_state`)."""
    return {"config": config_digest(backend), "settings": config_settings(backend), **source_state(backend, hub_api)}


def _names(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:NAMES_SHOWN])
    return shown + (f", … ({len(names) - NAMES_SHOWN} more)" if len(names) > NAMES_SHOWN else "")


def config_change(previous: dict[str, str] | None, current: dict[str, str]) -> str:
    """The settings an edit changed, with their old and new values."""
    if previous is None:  # a state recorded before settings were kept
        return "its config entry changed"
    changed = sorted(k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k))
    if not changed:  # only a credential's value changed
        return "its config entry changed: a credential"
    shown = [f"{k} {previous.get(k, '(unset)')} → {current.get(k, '(unset)')}" for k in changed[:NAMES_SHOWN]]
    more = f"; … ({len(changed) - NAMES_SHOWN} more)" if len(changed) > NAMES_SHOWN else ""
    return "its config entry changed: " + "; ".join(shown) + more


def files_change(previous: dict[str, Any], current: dict[str, Any]) -> str:
    """Which files were added, changed or removed, by name (counts alone above NAMED_FILES_LIMIT files)."""
    before, after = previous.get("files"), current.get("files")
    if before is None or after is None:
        return (
            f"files under {current['where']} changed ({previous.get('count', '?')} files before, "
            f"{current['count']} now)"
        )
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = [name for name in after if name in before and before[name] != after[name]]
    parts = [
        f"{len(names)} {kind} ({_names(names)})"
        for kind, names in (("added", added), ("changed", changed), ("removed", removed))
        if names
    ]
    return f"files under {current['where']}: " + "; ".join(parts)


def what_changed(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Reasons to refresh, in words naming what changed (settings, files or commit); empty when nothing changed
    or when there is no earlier state to compare."""
    if not previous:
        return []
    reasons = []
    if previous.get("config") != current["config"]:
        reasons.append(config_change(previous.get("settings"), current["settings"]))
    if previous.get("source") != current["source"]:
        if "commit" in current and previous.get("commit"):
            reasons.append(
                f"{current['where']} moved from commit {previous['commit'][:12]} to {current['commit'][:12]}"
            )
        elif "commit" in current or "where" not in previous:
            reasons.append(f"its data changed (was: {previous.get('described')}; now: {current['described']})")
        else:
            reasons.append(files_change(previous, current))
    return reasons


def default_hub_api() -> HubApi:
    """A Hugging Face Hub client (imported only when a Hub dataset is checked)."""
    from huggingface_hub import HfApi

    return HfApi()
