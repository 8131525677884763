"""What a backend's inputs look like now, as small digests, and whether they changed since last seen (no Dagster).

A backend's state is two digests: its config entry (every parsed setting) and its source, which is
- for a Hub dataset: the commit its configured revision points at (one `HfApi.dataset_info` call);
- for a local folder or a local dataset folder: the identities (relative path, size, mtime) of its files;
- for an fsspec URL (`s3://`, `gs://`, `hf://`, ...): the identities (path, size, etag or mtime) its filesystem lists.
"""

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hf_assets import env
from hf_assets.cache.hashing import fingerprint_of
from hf_assets.config.schema import BackendConfig

HubApi = Any  # huggingface_hub.HfApi or anything with dataset_info(repo_id, revision=..., token=...) -> .sha


def config_digest(backend: BackendConfig) -> str:
    """A digest of every parsed setting of the backend's entry: any edit that changes a setting changes it."""
    return fingerprint_of([json.dumps(dataclasses.asdict(backend), sort_keys=True, default=str)])


def folder_identities(root: Path) -> tuple[str, int]:
    """(digest, file count) of every file under `root`: relative path, size and modification time, no byte read."""
    entries: list[str] = []
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
                    entries.append(f"{Path(entry.path).relative_to(root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}")
    entries.sort()
    return fingerprint_of(entries), len(entries)


def fsspec_identities(url: str, fs=None) -> tuple[str, int]:
    """(digest, file count) of the files an fsspec URL lists: path, size and etag (else modification time).
    `fs` is the filesystem to list with (default: the URL's own, credentials from the environment)."""
    import fsspec

    if fs is None:
        fs, path = fsspec.core.url_to_fs(url)
    else:
        path = fs._strip_protocol(url)
    listing = fs.find(path, detail=True)
    entries = []
    for name, info in sorted(listing.items()):
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
        entries.append(f"{name}|{info.get('size')}|{stamp}")
    return fingerprint_of(entries), len(entries)


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


def source_state(backend: BackendConfig, hub_api: Callable[[], HubApi]) -> tuple[str, str]:
    """(digest, a human description) of the backend's data as it is now; raises when it cannot be reached."""
    kind = source_kind(backend)
    if kind == "hub":
        commit = hub_commit(backend.dataset_name, backend.revision, hub_api())
        return commit, f"{backend.dataset_name}@{backend.revision or 'main'} is commit {commit[:12]}"
    if kind == "fsspec":
        digest, count = fsspec_identities(backend.dataset_name)
        return digest, f"{count} files under {backend.dataset_name}"
    if kind == "s3":  # the bucket's own endpoint and credentials (never in the description)
        from hf_assets.data.s3_folder import s3_filesystem

        digest, count = fsspec_identities(backend.s3.url, s3_filesystem(backend.s3))
        return digest, f"{count} files under {backend.s3.url}"
    root = backend.instance_data_dir if backend.type == "local" else Path(backend.dataset_name)
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(f"backend '{backend.id}': {root} is not a folder")
    digest, count = folder_identities(Path(root))
    return digest, f"{count} files under {root}"


def backend_state(backend: BackendConfig, hub_api: Callable[[], HubApi]) -> dict[str, str]:
    """The cursor entry of a backend: its config digest, source digest and a description of the source."""
    source, described = source_state(backend, hub_api)
    return {"config": config_digest(backend), "source": source, "described": described}


def what_changed(previous: dict[str, str] | None, current: dict[str, str]) -> list[str]:
    """Reasons to refresh, in words; empty when nothing changed or when there is no earlier state to compare."""
    if not previous:
        return []
    reasons = []
    if previous.get("config") != current["config"]:
        reasons.append("its config entry changed")
    if previous.get("source") != current["source"]:
        reasons.append(f"its data changed (was: {previous.get('described')}; now: {current['described']})")
    return reasons


def default_hub_api() -> HubApi:
    """A Hugging Face Hub client (imported only when a Hub dataset is checked)."""
    from huggingface_hub import HfApi

    return HfApi()
