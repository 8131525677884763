"""Read a SimpleTuner dataloader JSON into a validated `DataloaderConfig`, with errors that say how to fix them."""

import json
import os
from pathlib import Path
from typing import Any

from hf_assets import env
from hf_assets.config import fields as F
from hf_assets.config.bucket_settings import parse_buckets
from hf_assets.config.schema import (
    BackendConfig,
    CaptionConfig,
    CompositeConfig,
    DataloaderConfig,
    FilterConfig,
    VideoConfig,
)

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "dataloader.json"


class ConfigError(ValueError):
    """A dataloader config that cannot be used; lists every problem found, one per line."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = Path(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"dataloader config {self.path} has {len(problems)} problem(s):\n{lines}")


def config_path_from_env() -> Path:
    """The config file named by HF_ASSETS_DATALOADER_CONFIG, else the bundled demo config."""
    return Path(os.environ.get(env.DATALOADER_CONFIG) or DEMO_CONFIG).expanduser().resolve()


def load_config(path: Path | str | None = None) -> DataloaderConfig:
    """Parse and validate the dataloader JSON at `path` (default: from the environment)."""
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
    return parse_config(entries, path)


def parse_config(entries: Any, path: Path) -> DataloaderConfig:
    """Validate a list of backend entries; relative paths resolve against `path`'s folder."""
    parser = _Parser(path)
    if not isinstance(entries, list):
        raise ConfigError(path, ["the file must hold a JSON list of backend objects, [ {...}, {...} ]"])
    for i, entry in enumerate(entries):
        try:
            parser.entry(i, entry)
        except Exception as exc:  # noqa: BLE001 - a shape no rule foresaw: still a config error, listed with others
            parser.unreadable(f"entry {i}", exc)
    return parser.finish()


class _Parser:
    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent
        self.problems: list[str] = []
        self.warnings: list[tuple[str, str]] = []  # (where, message)
        self.seen_ids: set[str] = set()
        self.datasets: list[tuple[dict, dict]] = []
        self.text_embeds: dict[str, Path] = {}
        self.default_text_embeds: str | None = None

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unreadable(self, where: str, exc: Exception) -> None:
        self.problem(
            where,
            f"could not be read ({type(exc).__name__}: {exc}); check the types of its values "
            "against docs/config (huggingface-datasets.md)",
        )

    def warn(self, where: str, message: str) -> None:
        self.warnings.append((where, message))

    def entry(self, index: int, entry: Any) -> None:
        if not isinstance(entry, dict):
            return self.problem(f"entry {index}", f"must be a JSON object, got {F.describe(entry)}")
        backend_id = entry.get("id")
        if not isinstance(backend_id, str) or not F.BACKEND_ID.match(backend_id):
            got = "no 'id'" if backend_id is None else f"id {F.describe(backend_id)}"
            return self.problem(
                f"entry {index}",
                f"{got}; every backend needs an 'id' of letters, digits, '_', '.' or '-' "
                "starting with a letter or digit (ids become folder names and partition keys)",
            )
        where = f"backend '{backend_id}'"
        if backend_id in self.seen_ids:
            return self.problem(where, "duplicate id; give each backend its own id")
        self.seen_ids.add(backend_id)
        if entry.get("disabled") is True:
            return
        if entry.get("dataset_type") == "text_embeds":
            return self.text_embeds_entry(where, backend_id, entry)
        merged = self.merge(where, entry)
        if merged is not None:
            self.datasets.append((entry, merged))

    def text_embeds_entry(self, where: str, backend_id: str, entry: dict) -> None:
        for key in entry:
            if key not in F.TEXT_EMBEDS_FIELDS:
                self.unknown(where, key, F.TEXT_EMBEDS_FIELDS)
        self.check_types(where, entry, F.ENTRY_FIELDS)
        self.text_embeds[backend_id] = self.resolve(entry.get("cache_dir") or f"cache/{backend_id}")
        if entry.get("default") is True or self.default_text_embeds is None:
            self.default_text_embeds = backend_id

    def unknown(self, where: str, key: str, known) -> None:
        hint = F.closest_key(key, known)
        fix = f"did you mean '{hint}'?" if hint else "remove it or check its spelling"
        self.problem(where, f"unknown key '{key}'; {fix}")

    def merge(self, where: str, entry: dict) -> dict | None:
        """Top-level keys and the "huggingface" block as one dict; conflicts are problems."""
        known = {**F.ENTRY_FIELDS, **F.DATASET_FIELDS}
        merged: dict[str, Any] = {}
        for key, value in entry.items():
            if key in F.IGNORED_FIELDS:
                self.warn(where, f"key '{key}' is accepted but not used ({F.IGNORED_FIELDS[key]})")
            elif key not in known:
                self.unknown(where, key, list(known) + list(F.IGNORED_FIELDS))
            elif key != "huggingface":
                merged[key] = value
        block = entry.get("huggingface", {})
        if not isinstance(block, dict):
            self.problem(
                where,
                f"key 'huggingface' must be a JSON object of dataset keys, e.g. "
                f'{{"caption_column": "caption"}}, got {F.describe(block)}',
            )
            block = {}
        for key, value in block.items():
            if key in F.ENTRY_FIELDS:
                self.problem(where, f"key '{key}' belongs at the top level of the entry, not inside \"huggingface\"")
            elif key not in F.DATASET_FIELDS:
                self.unknown(f'{where}, "huggingface" block', key, F.DATASET_FIELDS)
            elif key in merged and merged[key] != value:
                self.problem(
                    where,
                    f"key '{key}' is set twice with different values ({F.describe(merged[key])} at the top level, "
                    f'{F.describe(value)} in "huggingface"); keep one',
                )
            else:
                merged[key] = value
        for key in self.check_types(where, merged, known):
            del merged[key]  # reported; later checks see only well-typed values
        return merged

    def check_types(self, where: str, values: dict, spec: dict[str, F.Field]) -> list[str]:
        """Report each value of the wrong type; returns their keys."""
        wrong = []
        for key, value in values.items():
            rule = spec.get(key)
            if rule is not None and not rule.check(value):
                self.problem(where, f"key '{key}' must be {rule.expected}, got {F.describe(value)}")
                wrong.append(key)
        return wrong

    def check_block(self, where: str, name: str, block: Any, spec: dict[str, F.Field]) -> dict:
        if not isinstance(block, dict):
            return {}
        for key in block:
            if key not in spec:
                self.unknown(f'{where}, "{name}"', key, spec)
        wrong = self.check_types(f'{where}, "{name}"', block, spec)
        return {k: v for k, v in block.items() if k in spec and k not in wrong}

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    def finish(self) -> DataloaderConfig:
        backends = []
        for entry, merged in self.datasets:
            where = f"backend '{entry['id']}'"
            try:
                backend = self.build(where, entry["id"], merged)
            except Exception as exc:  # noqa: BLE001 - never anything but a ConfigError out of the loader
                self.unreadable(where, exc)
                backend = None
            if backend is not None:
                backends.append(backend)
        if not self.problems and not backends:
            self.problems.append('no enabled dataset backend; add an entry of type "huggingface" or "local"')
        if self.problems:
            raise ConfigError(self.path, self.problems)
        default_dir = self.text_embeds.get(self.default_text_embeds) if self.default_text_embeds else None
        warnings = tuple(f"{where}: {message}" for where, message in self.warnings)
        return DataloaderConfig(self.path, tuple(backends), default_dir, warnings)

    def build(self, where: str, backend_id: str, m: dict) -> BackendConfig | None:
        before = len(self.problems)
        kind = m.get("type")
        if kind is None:
            self.problem(where, 'missing key \'type\'; set "type": "huggingface" or "local"')
        dataset_name = m.get("dataset_name")
        if kind == "huggingface":
            if not dataset_name:
                self.problem(where, "missing key 'dataset_name'; set it to a hub id or a local dataset folder")
            for key in ("caption_strategy", "metadata_backend"):
                if m.get(key, "huggingface") != "huggingface":
                    self.problem(where, f'key \'{key}\' must be "huggingface" for a backend of type "huggingface"')
        if kind == "local" and not m.get("instance_data_dir"):
            self.problem(where, "missing key 'instance_data_dir'; set it to the folder of images")
        if m.get("streaming") is True:
            self.problem(where, "'streaming': true is not supported; use a split slice such as \"train[:10000]\"")
        strategy = m.get("caption_strategy", "huggingface" if kind == "huggingface" else "filename")
        if kind == "local" and strategy == "huggingface":
            self.problem(where, 'caption_strategy "huggingface" needs type "huggingface"; use "textfile"')
        if strategy == "instanceprompt" and not m.get("instance_prompt"):
            self.problem(where, "caption_strategy \"instanceprompt\" needs key 'instance_prompt'")

        filt = self.check_block(where, "filter_func", m.get("filter_func", {}), F.FILTER_FIELDS)
        comp_block = m.get("composite_image_config", {})
        comp = self.check_block(where, "composite_image_config", comp_block, F.COMPOSITE_FIELDS)
        video = self.check_block(where, "video", m.get("video", {}), F.VIDEO_FIELDS)
        self.check_video(where, m.get("dataset_type", "image"), video)
        count = comp.get("image_count", 1)
        if comp.get("enabled") and isinstance(count, int) and not 0 <= comp.get("select_index", 0) < count:
            self.problem(
                where, f"composite_image_config.select_index must be between 0 and image_count - 1 ({count - 1})"
            )

        buckets = parse_buckets(m, lambda text: self.problem(where, text), lambda text: self.warn(where, text))
        if (m.get("width_column") is None) != (m.get("height_column") is None):
            given = "width_column" if m.get("width_column") is not None else "height_column"
            other = "height_column" if given == "width_column" else "width_column"
            self.problem(
                where,
                f"key '{given}' needs key '{other}' too (sizes are read from both columns); "
                f"set '{other}' or remove '{given}'",
            )
        cache_dir = self.resolve(m.get("cache_dir") or f"cache/{backend_id}")
        blocker = next((p for p in (cache_dir, *cache_dir.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            self.problem(
                where,
                f"key 'cache_dir' resolves to {cache_dir}, but {blocker} is a file, not a folder; "
                "point cache_dir at a folder",
            )
        text_ref = m.get("text_embeds")
        if text_ref is not None and text_ref not in self.text_embeds:
            known = ", ".join(self.text_embeds) or "none defined"
            self.problem(where, f"key 'text_embeds' names '{text_ref}', which is not a text_embeds entry ({known})")
        if len(self.problems) > before:
            return None

        columns = m.get("caption_column", ())
        collection = filt.get("collection")
        local_dir = self.resolve(m["instance_data_dir"]) if kind == "local" else None
        text_dir = self.text_embeds.get(text_ref or self.default_text_embeds or "")
        return BackendConfig(
            id=backend_id,
            type=kind,
            dataset_type=m.get("dataset_type", "image"),
            cache_dir=cache_dir,
            dataset_name=self.dataset_location(dataset_name) if kind == "huggingface" else None,
            split=m.get("split", "train"),
            revision=m.get("revision"),
            image_column=m.get("image_column", "image"),
            instance_data_dir=local_dir,
            width_column=m.get("width_column"),
            height_column=m.get("height_column"),
            num_frames_column=m.get("num_frames_column"),
            fps_column=m.get("fps_column"),
            num_proc=m.get("num_proc"),
            probability=float(m.get("probability", 1.0)),
            repeats=m.get("repeats", 0),
            captions=CaptionConfig(
                columns=(columns,) if isinstance(columns, str) else tuple(columns),
                fallback_column=m.get("fallback_caption_column"),
                description_column=m.get("description_column"),
                instance_prompt=m.get("instance_prompt"),
                strategy=strategy,
                encoding=m.get("caption_encoding"),
            ),
            filters=FilterConfig(
                quality_thresholds={k: float(v) for k, v in filt.get("quality_thresholds", {}).items()},
                quality_column=filt.get("quality_column", "quality_assessment"),
                collection=(collection,)
                if isinstance(collection, str)
                else (tuple(collection) if collection else None),
                collection_column=filt.get("collection_column", "collection"),
                min_width=filt.get("min_width"),
                min_height=filt.get("min_height"),
                min_frames=video.get("min_frames", video.get("num_frames")),
            ),
            composite=CompositeConfig(
                enabled=comp.get("enabled", False),
                image_count=comp.get("image_count", 1),
                select_index=comp.get("select_index", 0),
                layout=comp.get("layout", "horizontal"),
            ),
            buckets=buckets,
            video=VideoConfig(
                num_frames=video.get("num_frames"),
                min_frames=video.get("min_frames", video.get("num_frames")),
                max_frames=video.get("max_frames"),
                bucket_strategy=video.get("bucket_strategy", "aspect_ratio"),
                frame_interval=video.get("frame_interval"),
                is_i2v=video.get("is_i2v", False),
            ),
            text_embeds_dir=text_dir,
            warnings=tuple(message for at, message in self.warnings if at == where),
        )

    def check_video(self, where: str, dataset_type: str, video: dict) -> None:
        """The video block's keys must agree with each other and with the dataset type."""
        if video and dataset_type != "video":
            self.problem(where, 'a "video" block needs "dataset_type": "video"; set it or remove the block')
        if "num_frames" in video and "min_frames" not in video:
            self.warn(
                where,
                f"video.min_frames is not set, so it is num_frames ({video['num_frames']}), as in "
                "SimpleTuner: shorter clips are dropped; set min_frames lower to train them on their frames",
            )
        low, high = video.get("min_frames", video.get("num_frames")), video.get("max_frames")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            self.problem(where, f"video.min_frames ({low}) is above video.max_frames ({high}); no clip could be kept")
        if "frame_interval" in video and video.get("bucket_strategy") != "resolution_frames":
            self.problem(where, 'video.frame_interval only applies with "bucket_strategy": "resolution_frames"')

    def dataset_location(self, name: str) -> str:
        """A local dataset folder, file or glob as an absolute path; a URL or a hub id unchanged."""
        if "://" in name:
            return name
        candidate = (self.base / Path(name).expanduser()).resolve()
        head = name.split("*")[0].split("?")[0].split("[")[0]
        is_glob = head != name and (self.base / Path(head).expanduser()).parent.exists()
        looks_like_path = name.startswith(("/", "./", "../", "~")) or candidate.exists() or is_glob
        return str(candidate) if looks_like_path else name
