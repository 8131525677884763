"""Read a SimpleTuner dataloader JSON into a validated `DataloaderConfig`, with errors that say how to fix them."""

import json
import os
from pathlib import Path
from typing import Any

from hf_assets import env
from hf_assets.config.backend_build import BackendBuilder, CacheEntry
from hf_assets.config.backend_models import inherit_models
from hf_assets.config.conditioning_links import link_conditioning
from hf_assets.config.entries import Entry, EntryReader, Report
from hf_assets.config.errors import ConfigError
from hf_assets.config.keyspec import CACHE, DATASET
from hf_assets.config.schema import BackendConfig, DataloaderConfig

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "dataloader.json"


__all__ = ["DEMO_CONFIG", "ConfigError", "config_path_from_env", "load_config", "parse_config"]


def config_path_from_env() -> Path:
    """The config file named by HF_ASSETS_DATALOADER_CONFIG, else the bundled demo config."""
    return Path(os.environ.get(env.DATALOADER_CONFIG) or DEMO_CONFIG).expanduser().resolve()


def load_config(path: Path | str | None = None, strict: bool = True) -> DataloaderConfig:
    """Parse and validate the dataloader JSON at `path` (default: from the environment).

    strict: any problem raises a ConfigError listing them all. Not strict: only a file that cannot be read as a
    list of entries raises; a broken backend is kept in `config.broken` with its problems, the others load.
    """
    path = Path(path).expanduser().resolve() if path else config_path_from_env()
    if not path.is_file():
        raise ConfigError(path, [f"file not found; set {env.DATALOADER_CONFIG} to your dataloader JSON"])
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(path, [f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 JSON"]) from None
    except (OSError, RecursionError) as exc:
        raise ConfigError(path, [f"could not be read ({type(exc).__name__}: {exc}); check the file"]) from None
    return parse_config(entries, path, strict)


def parse_config(entries: Any, path: Path, strict: bool = True) -> DataloaderConfig:
    """Validate a list of backend entries; relative paths resolve against `path`'s folder (see `load_config`)."""
    if not isinstance(entries, list):
        raise ConfigError(path, ["the file must hold a JSON list of backend objects, [ {...}, {...} ]"])
    report = Report()
    reader = EntryReader(report)
    read: list[Entry] = []
    for i, raw in enumerate(entries):
        try:
            entry = reader.read(i, raw)
        except Exception as exc:  # noqa: BLE001 - a shape no rule foresaw: still a config error, listed with others
            owner = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"entry-{i}"
            report.problem(owner, f"entry {i}", _unreadable(exc))
            entry = None
        if entry is not None:
            read.append(entry)
    _conditioning_by_reference(read, report)
    caches, default_text = _cache_entries(read, path.parent, report)
    builder = BackendBuilder(
        path.parent,
        caches,
        default_text,
        lambda e, text: report.problem(e.id, e.where, text),
        lambda e, text: report.warn(e.id, e.where, text),
    )
    backends: list[BackendConfig] = []
    for entry in (e for e in read if e.scope != CACHE):  # built even when broken: every problem is listed
        try:
            backend = builder.build(entry)
        except Exception as exc:  # noqa: BLE001 - never anything but a ConfigError out of the loader
            report.problem(entry.id, entry.where, _unreadable(exc))
            backend = None
        if backend is not None and entry.id not in report.problems:
            backends.append(backend)
    backends = link_conditioning(
        backends,
        {e.id: set(e.values) for e in read},
        builder.resolve,
        lambda owner, text: report.problems.setdefault(owner, []).append(text),
    )
    failed = {b.id for b in backends if b.id in report.problems}  # a source whose conditioning list is wrong
    backends = [b for b in backends if b.id not in failed and b.conditioning.source not in failed]
    backends = inherit_models(backends)
    return _finish(path, entries, read, backends, caches, default_text, report, strict)


def _conditioning_by_reference(read: list[Entry], report: Report) -> None:
    """An image dataset that another dataset names in `conditioning_data` is that dataset's conditioning set, as
    SimpleTuner links it (some of its guides omit `"dataset_type": "conditioning"`); a warning says so."""
    by_id = {e.id: e for e in read if e.scope == DATASET}
    for entry in by_id.values():
        named = entry.values.get("conditioning_data")
        for target_id in [named] if isinstance(named, str) else named if isinstance(named, list) else []:
            target = by_id.get(target_id) if isinstance(target_id, str) else None
            if target is None or target is entry or target.values.get("dataset_type", "image") != "image":
                continue
            target.values["dataset_type"] = "conditioning"
            report.warn(
                target.id,
                target.where,
                f"backend '{entry.id}' names it in conditioning_data, so it is prepared as a conditioning dataset "
                f"paired with '{entry.id}' (and not drawn for training); set dataset_type \"conditioning\" to say so",
            )


def _cache_entries(read: list[Entry], base: Path, report: Report) -> tuple[dict[str, CacheEntry], str | None]:
    """The text_embeds / image_embeds entries by id, and the id of the default text_embeds entry."""
    caches, default = {}, None
    for entry in (e for e in read if e.scope == CACHE):
        given = entry.values.get("cache_dir")
        folder = Path(given or f"cache/{entry.id}").expanduser()
        folder = folder if folder.is_absolute() else (base / folder).resolve()
        warnings = tuple(report.warnings.get(entry.id, ()))
        stand_ins = entry.placeholder_stand_ins.get("cache_dir")
        if stand_ins:
            names = ", ".join(f"{{{n}}}" for n in sorted(stand_ins))
            warnings += (f"{entry.where}: key 'cache_dir' uses {names}, not set here: it resolves to {folder}",)
        if entry.values.get("type") in ("aws", "memory"):
            warnings += (f"{entry.where}: its caches are kept on local disk, in {folder}",)
        caches[entry.id] = CacheEntry(entry.dataset_type, folder, bool(given), warnings)
        if entry.dataset_type == "text_embeds" and (entry.values.get("default") is True or default is None):
            default = entry.id
    return caches, default


def _finish(path, entries, read, backends, caches, default_text, report: Report, strict: bool) -> DataloaderConfig:
    """The config; raises when strict and anything is wrong, or when nothing at all can be a partition."""
    datasets = [e for e in read if e.scope != CACHE]
    cache_problems = [p for e in read if e.scope == CACHE for p in report.problems.get(e.id, ())]
    broken: dict[str, tuple[str, ...]] = {}
    for owner, problems in report.problems.items():
        if owner in caches or any(e.id == owner and e.scope == CACHE for e in read):
            continue
        broken[owner] = tuple(problems) + (tuple(cache_problems) if owner in {e.id for e in datasets} else ())
    for backend in list(backends):
        if cache_problems:  # a broken cache entry breaks every backend (its captions or latents would go astray)
            broken[backend.id] = tuple(cache_problems)
            backends.remove(backend)
    all_problems = [p for problems in report.problems.values() for p in problems]
    if not all_problems and not backends:
        all_problems.append('no enabled dataset backend; add an entry of type "huggingface", "local" or "aws"')
        raise ConfigError(path, all_problems)
    if strict and all_problems:
        raise ConfigError(path, all_problems)
    if not backends and not broken:
        raise ConfigError(path, all_problems)
    order = [e.id for e in datasets if e.id in broken or any(b.id == e.id for b in backends)]
    order += [owner for owner in broken if owner not in order]
    order = _sources_first(order, backends)
    warnings = tuple(w for b in backends for w in report.warnings.get(b.id, ()))
    backends = [_with_warnings(b, report.warnings.get(b.id, ())) for b in backends]
    text_dir = caches[default_text].directory if default_text else None
    return DataloaderConfig(path, tuple(backends), text_dir, warnings, broken, tuple(order))


def _sources_first(order: list[str], backends: list[BackendConfig]) -> list[str]:
    """The partition order with each conditioning dataset (given or generated) right after its source, as in
    `backends`; the others keep their file order."""
    placed = [b.id for b in backends]
    conditioning = {b.id for b in backends if b.conditioning.is_conditioning}
    out: list[str] = []
    for backend_id in order:
        if backend_id in conditioning:
            continue
        out.append(backend_id)
        if backend_id in placed:
            at = placed.index(backend_id) + 1
            while at < len(placed) and placed[at] in conditioning:
                out.append(placed[at])
                at += 1
    return out


def _with_warnings(backend: BackendConfig, warnings) -> BackendConfig:
    from dataclasses import replace

    return replace(backend, warnings=tuple(message.split(": ", 1)[1] for message in warnings))


def _unreadable(exc: Exception) -> str:
    return (
        f"could not be read ({type(exc).__name__}: {exc}); check the types of its values "
        'against the key table in README.md (section "Every key")'
    )
