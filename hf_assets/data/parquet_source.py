"""Open a split stored as Parquet files (local folder or glob, Hub id, or any fsspec URL) without reading its rows."""

import fnmatch
import os
import re
from pathlib import Path
from urllib.parse import quote

from hf_assets import env
from hf_assets.cache.hashing import fingerprint_of
from hf_assets.config.schema import BackendConfig
from hf_assets.data.parquet_files import local_info, make_pieces
from hf_assets.data.split import DatasetNotFound, RawSplit

GLOB_CHARS = "*?["
KNOWN_SPLITS = ("train", "training", "validation", "valid", "val", "dev", "test", "testing", "eval", "evaluation")
CONVERTED = "refs/convert/parquet"  # the Hub's Parquet export of datasets stored in other formats


def split_parts(split: str) -> tuple[str, str | None]:
    """("train", "[:10%]") from "train[:10%]"; the slice is None when absent."""
    match = re.fullmatch(r"\s*([^\[\]]+?)\s*(\[.*\])?\s*", split)
    if not match:
        raise ValueError(f"split '{split}' is not of the form name or name[slice]")
    return match.group(1), match.group(2)


def slice_span(split: str, total: int) -> tuple[int, int]:
    """The [from, to) rows that `split` (e.g. "train[1000:2000]", "train[:10%]") selects out of `total`."""
    name, spec = split_parts(split)
    if spec is None:
        return 0, total
    import datasets

    parts = datasets.ReadInstruction.from_spec(f"{name}{spec}").to_absolute({name: total})
    if len(parts) != 1:
        raise ValueError(f"split '{split}' must be one contiguous slice")
    return parts[0].from_, parts[0].to


def is_url(name: str) -> bool:
    return "://" in name


def _relative(name: str, root: str) -> str:
    root = root.rstrip("/")
    return name[len(root) + 1 :] if name.startswith(root + "/") else name.rsplit("/", 1)[-1]


def _matches(rel: str, split: str) -> bool:
    *dirs, base = rel.split("/")
    return split in dirs or f"partial-{split}" in dirs or re.match(rf"{re.escape(split)}(?:[-_.]|$)", base) is not None


def select_split(infos: list[dict], root: str, split: str, where: str) -> list[dict]:
    """The files of `split` by the Hub's naming rules (split-*.parquet, split/...); unnamed files are all "train"."""
    rels = {info["name"]: _relative(info["name"], root) for info in infos}
    chosen = [info for info in infos if _matches(rels[info["name"]], split)]
    if chosen:
        return chosen
    named = sorted({s for rel in rels.values() for s in KNOWN_SPLITS if _matches(rel, s)})
    if not named and split == "train":
        return infos
    raise ValueError(f"split '{split}' not found in {where}; available: {', '.join(named) or 'train'}")


def list_parquet(fs, path: str) -> tuple[str, list[dict]]:
    """(root, infos) of the Parquet files at `path`: a glob, a folder (recursive) or one file; sorted by name.
    Each folder is listed once (a glob in the last part of the path lists its folder once, and filters)."""
    if any(c in path for c in GLOB_CHARS):
        root = re.split(r"[*?\[]", path, maxsplit=1)[0].rsplit("/", 1)[0]
        pattern = path[len(root) + 1 :]
        if "/" in pattern or "**" in pattern:
            found = list(fs.glob(path, detail=True).values())
        else:
            found = [
                i for i in _walk(fs, root, recursive=False) if fnmatch.fnmatchcase(_relative(i["name"], root), pattern)
            ]
    elif path.endswith(".parquet"):
        try:
            root, found = path.rsplit("/", 1)[0], [fs.info(path)]
        except FileNotFoundError:
            return path, []
    else:
        root, found = path, _walk(fs, path, recursive=True)
    infos = [dict(i) for i in found if i.get("type", "file") == "file" and str(i["name"]).endswith(".parquet")]
    return root, sorted(_with_identity(fs, infos), key=lambda i: i["name"])


def _walk(fs, folder: str, recursive: bool) -> list[dict]:
    """The entries under `folder`, one listing per folder (subfolders too when `recursive`); [] when it is missing."""
    try:
        entries = [dict(i) for i in fs.ls(folder, detail=True)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        if entry.get("type") == "directory":
            if recursive and entry["name"].rstrip("/") != folder.rstrip("/"):
                found += _walk(fs, entry["name"], recursive)
        else:
            found.append(entry)
    return found


def _with_identity(fs, infos: list[dict]) -> list[dict]:
    """Infos completed by a per-file lookup where the listing gave no size or identity (e.g. HTTP index pages)."""
    from concurrent.futures import ThreadPoolExecutor

    from hf_assets.data.parquet_files import FOOTER_WORKERS, file_identity

    lacking = [i for i in infos if i.get("size") is None or file_identity(i) == "size-only"]
    if not lacking:
        return infos
    with ThreadPoolExecutor(max_workers=min(FOOTER_WORKERS, len(lacking))) as pool:
        detailed = dict(zip([i["name"] for i in lacking], pool.map(lambda i: fs.info(i["name"]), lacking)))
    return [{**i, **detailed.get(i["name"], {})} for i in infos]


def open_parquet_split(backend: BackendConfig) -> RawSplit | None:
    """The split as Parquet pieces, or None when the dataset is not stored as Parquet (then `datasets` opens it)."""
    name = backend.dataset_name or ""
    split, _ = split_parts(backend.split)
    if is_url(name) and not name.startswith("hf://"):
        import fsspec

        fs, path = fsspec.core.url_to_fs(name)
        root, infos = list_parquet(fs, path)
        if not infos:
            raise DatasetNotFound(
                f"backend '{backend.id}': no Parquet files at {name}; "
                "dataset_name must be a folder or glob of .parquet files (e.g. s3://bucket/data/*.parquet)"
            )
        return _split_of(backend, fs, select_split(infos, root, split, name), name, "parquet (fsspec)")
    if name.startswith("hf://") or not _is_local(name):
        return _hub_split(backend, name, split)
    local = str(Path(name))
    if any(c in local for c in GLOB_CHARS):
        import glob

        files = sorted(p for p in glob.glob(local, recursive=True) if p.endswith(".parquet"))
        root = re.split(r"[*?\[]", local, maxsplit=1)[0].rsplit("/", 1)[0]
    elif Path(local).is_file():
        files, root = ([local] if local.endswith(".parquet") else []), str(Path(local).parent)
    else:
        files, root = sorted(str(p) for p in Path(local).rglob("*.parquet")), local
    # metadata.parquet beside images is an imagefolder's caption table, not the dataset
    if not files or any(Path(f).name == "metadata.parquet" for f in files):
        return None
    infos = select_split([local_info(f) for f in files], root, split, local)
    return _split_of(backend, None, infos, local, "parquet (local)")


def _is_local(name: str) -> bool:
    head = re.split(r"[*?\[]", name, maxsplit=1)[0]
    return Path(name).exists() or (head != name and Path(head).parent.exists())


def _split_of(backend: BackendConfig, fs, infos: list[dict], source: str, kind: str, revision=None) -> RawSplit:
    from hf_assets.data.parquet_files import read_footers

    footers = read_footers(fs, infos)  # the only read at open: one footer per file
    pieces = make_pieces(fs, infos, footers, slice_span(backend.split, sum(f.num_rows for f in footers)))
    footer_schema = footers[0].schema.to_arrow_schema()
    fingerprint = fingerprint_of([backend.split] + [p.key for p in pieces])
    base_dir = (
        Path(source).parent
        if fs is None and Path(source).is_file()
        else (Path(source) if fs is None and Path(source).is_dir() else None)
    )
    return RawSplit(
        backend.id,
        source,
        fingerprint,
        tuple(pieces),
        footer_schema,
        kind=kind,
        image_column=backend.image_column,
        revision=revision or backend.revision,
        base_dir=base_dir,
        filesystem=fs,
    )


def hub_filesystem():
    """The Hub's fsspec filesystem, with HF_TOKEN and HF_ENDPOINT as set."""
    from huggingface_hub import HfFileSystem

    token, endpoint = os.environ.get(env.HUB_TOKEN) or None, os.environ.get(env.HUB_ENDPOINT) or None
    return HfFileSystem(token=token, endpoint=endpoint)


def filesystem_for(backend: BackendConfig, kind: str):
    """The filesystem a split opened as `kind` reads its Parquet files through (None: local), made without listing."""
    if kind == "parquet (local)":
        return None
    if kind.startswith("parquet (hub"):
        return hub_filesystem()
    import fsspec

    return fsspec.core.url_to_fs(backend.dataset_name)[0]


def _hub_split(backend: BackendConfig, name: str, split: str) -> RawSplit | None:
    """A Hub dataset's Parquet files at its revision, else its Parquet export; None when it has neither."""
    repo = name.removeprefix("hf://").removeprefix("datasets/")
    repo, _, pinned = repo.partition("@")
    revision = pinned or backend.revision
    if env.hub_offline():
        return None  # `datasets` may still have it cached; otherwise it fails fast, saying the Hub was skipped
    fs = hub_filesystem()
    tries = [revision or "main"] + ([CONVERTED] if revision in (None, "main") else [])
    for attempt in tries:
        root = f"datasets/{repo}@{quote(attempt, safe='')}"
        try:
            _, infos = list_parquet(fs, root)
        except FileNotFoundError as exc:
            if attempt == tries[0]:
                raise DatasetNotFound(
                    _hub_missing(backend, name, str(exc).splitlines()[0] if str(exc) else "")
                ) from None
            continue
        if attempt == CONVERTED:  # several configs: take "default" when there is one
            default = [i for i in infos if _relative(i["name"], root).startswith("default/")]
            infos = default or infos
        if infos:
            commit = _commit(fs, repo, attempt)
            return _split_of(
                backend,
                fs,
                select_split(infos, root, split, f"hf://{root}"),
                f"hf://{root}",
                "parquet (hub)" if attempt != CONVERTED else "parquet (hub refs/convert/parquet)",
                revision=commit,
            )
    return None


def _commit(fs, repo: str, revision: str) -> str:
    try:
        return fs._api.dataset_info(repo, revision=revision).sha or revision
    except Exception:  # noqa: BLE001 - the commit is informative; file identities already pin the content
        return revision


def _hub_missing(backend: BackendConfig, name: str, why: str) -> str:
    return (
        f"backend '{backend.id}': dataset '{name}' not found; tried a local folder "
        f"({Path(name).resolve()}) and the Hugging Face Hub ({why}). "
        "Check dataset_name (a hub id such as 'user/name', a folder relative to the config file, or a URL)."
    )
