"""Build one backend's typed `BackendConfig` from its checked entry: the rules that tie keys together, paths resolved
against the config file, and SimpleTuner's defaults."""

from pathlib import Path
from typing import Any

from hf_assets.config.bucket_settings import parse_buckets
from hf_assets.config.entries import PATH_KEYS, Entry
from hf_assets.config.keys_entry import TRAINER
from hf_assets.config.keyspec import DATASET
from hf_assets.config.placeholders import VARIABLES
from hf_assets.config.registry import keys_in
from hf_assets.config.schema import (
    DEFAULT_MAX_DROP_RATE,
    BackendConfig,
    CaptionConfig,
    CaptionTableConfig,
    CompositeConfig,
    ConditioningConfig,
    DrawSchedule,
    FilterConfig,
    S3Location,
    VideoConfig,
)

TRAINER_KEYS = tuple(name for name, key in keys_in(DATASET).items() if key.note == TRAINER)
FILE_STRATEGIES = ("textfile", "filename", "parquet")  # caption strategies that read files beside the images


class BackendBuilder:
    """Builds backends of one config file; `problem` and `warn` file messages under the entry's backend id."""

    def __init__(self, base: Path, caches: dict[str, "CacheEntry"], default_text: str | None, problem, warn):
        self.base, self.caches, self.default_text = base, caches, default_text
        self.problem, self.warn = problem, warn

    def resolve(self, value: str) -> Path:
        """An absolute path: `~` expanded, relative paths against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    def build(self, e: Entry) -> BackendConfig | None:
        """The backend's config, or None when a rule is broken (each broken rule filed as a problem)."""
        m, count = e.values, [0]

        def bad(message: str) -> None:
            count[0] += 1
            self.problem(e, message)

        kind = m.get("type")
        strategy = self._check_kind(m, kind, e.rejected, bad)
        filt, comp, video = m.get("filter_func", {}), m.get("composite_image_config", {}), m.get("video", {})
        self._check_video(e, m.get("dataset_type", "image"), video, bad)
        count_tiles = comp.get("image_count", 1)
        if comp.get("enabled") and not 0 <= comp.get("select_index", 0) < count_tiles:
            bad(f"composite_image_config.select_index must be between 0 and image_count - 1 ({count_tiles - 1})")
        buckets = parse_buckets(m, bad, lambda text: self.warn(e, text))
        if (m.get("width_column") is None) != (m.get("height_column") is None):
            given = "width_column" if m.get("width_column") is not None else "height_column"
            other = "height_column" if given == "width_column" else "width_column"
            bad(f"key '{given}' needs key '{other}' too (sizes are read from both columns); set it or remove '{given}'")
        cache_dir = self._folder(e, "cache_dir", m.get("cache_dir") or f"cache/{e.id}", bad)
        latents_dir = self._latents_dir(e, bad)
        text_ref = m.get("text_embeds")
        if text_ref is not None and self.caches.get(text_ref, CacheEntry("", "")).kind != "text_embeds":
            known = ", ".join(i for i, c in self.caches.items() if c.kind == "text_embeds") or "none defined"
            bad(f"key 'text_embeds' names '{text_ref}', which is not a text_embeds entry ({known})")
        if count[0]:
            return None
        self._path_warnings(e, {"cache_dir": cache_dir, "cache_dir_vae": latents_dir})
        text = self.caches.get(text_ref or self.default_text or "")
        for message in text.warnings if text else ():
            self.warn(e, message)
        return BackendConfig(
            id=e.id,
            type=kind,
            dataset_type=m.get("dataset_type", "image"),
            cache_dir=cache_dir,
            dataset_name=self.dataset_location(m["dataset_name"]) if kind == "huggingface" else None,
            split=m.get("split", "train"),
            revision=m.get("revision"),
            image_column=self._media_column(e),
            file_extension=m.get("file_extension", "mp4" if m.get("dataset_type") == "video" else "jpg"),
            instance_data_dir=self.resolve(m["instance_data_dir"]) if kind == "local" else None,
            s3=self._s3(m) if kind == "aws" else None,
            width_column=m.get("width_column"),
            height_column=m.get("height_column"),
            num_frames_column=m.get("num_frames_column"),
            fps_column=m.get("fps_column"),
            num_proc=m.get("num_proc"),
            probability=float(m.get("probability", 1.0)),
            repeats=m.get("repeats", 0),
            schedule=DrawSchedule(
                ignore_epochs=m.get("ignore_epochs", False),
                start_epoch=m.get("start_epoch", 1),
                start_step=m.get("start_step", 0),
                end_epoch=m.get("end_epoch"),
                end_step=m.get("end_step"),
            ),
            max_num_samples=m.get("max_num_samples"),
            max_drop_rate=float(m.get("max_drop_rate", DEFAULT_MAX_DROP_RATE)),
            captions=self._captions(m, strategy, kind),
            filters=_filters(filt, video),
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
            conditioning=_conditioning(m),
            text_embeds_dir=text.directory if text else None,
            latents_dir=latents_dir,
            trainer_settings={k: m[k] for k in TRAINER_KEYS if k in m},
            model=self.dataset_location(m["pretrained_model_name_or_path"])
            if m.get("pretrained_model_name_or_path")
            else None,
            vae_model=self.dataset_location(m["pretrained_vae_model_name_or_path"])
            if m.get("pretrained_vae_model_name_or_path")
            else None,
        )

    def _check_kind(self, m: dict, kind: str | None, rejected: set[str], bad) -> str:
        """The caption strategy, after the rules that tie type, strategy and location keys together."""
        if kind is None and "type" not in rejected:
            bad('missing key \'type\'; set "type": "huggingface", "local" or "aws"')
        strategy = m.get("caption_strategy", "huggingface" if kind == "huggingface" else "filename")
        if kind == "huggingface":
            if not m.get("dataset_name"):
                bad("missing key 'dataset_name'; set it to a hub id or a local dataset folder")
            if strategy in FILE_STRATEGIES:
                bad(
                    f'caption_strategy "{strategy}" reads files beside the images: use type "local" or "aws", or '
                    'caption_strategy "huggingface" or "instanceprompt"'
                )
            if m.get("metadata_backend", "huggingface") not in ("huggingface", "discovery"):
                bad('key \'metadata_backend\' must be "huggingface" for a backend of type "huggingface"')
        elif strategy == "huggingface" and kind is not None:
            bad(f'caption_strategy "huggingface" needs type "huggingface"; use "textfile" for type "{kind}"')
        if strategy == "parquet" and not m.get("parquet", {}).get("path"):
            bad('caption_strategy "parquet" needs a "parquet" block with its \'path\' (the table of captions)')
        if kind == "local" and not m.get("instance_data_dir"):
            bad("missing key 'instance_data_dir'; set it to the folder of images")
        if kind == "aws" and not m.get("aws_bucket_name"):
            bad("missing key 'aws_bucket_name'; a backend of type \"aws\" reads images from that bucket")
        prompt_keys = [k for k in ("prepend_instance_prompt", "only_instance_prompt") if m.get(k)]
        if (strategy == "instanceprompt" or prompt_keys) and not m.get("instance_prompt"):
            needs = 'caption_strategy "instanceprompt"' if strategy == "instanceprompt" else f"key '{prompt_keys[0]}'"
            bad(f"{needs} needs key 'instance_prompt'")
        return strategy

    def _check_video(self, e: Entry, dataset_type: str, video: dict, bad) -> None:
        """The video block's keys must agree with each other and with the dataset type."""
        if video and dataset_type != "video":
            bad('a "video" block needs "dataset_type": "video"; set it or remove the block')
        if "video_column" in e.values and dataset_type != "video":
            self.warn(e, "key 'video_column' is accepted but not used (it names the clips of a video backend)")
        if "num_frames" in video and "min_frames" not in video:
            self.warn(
                e,
                f"video.min_frames is not set, so it is num_frames ({video['num_frames']}), as in "
                "SimpleTuner: shorter clips are dropped; set min_frames lower to train them on their frames",
            )
        low, high = video.get("min_frames", video.get("num_frames")), video.get("max_frames")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            bad(f"video.min_frames ({low}) is above video.max_frames ({high}); no clip could be kept")
        if "frame_interval" in video and video.get("bucket_strategy") != "resolution_frames":
            bad('video.frame_interval only applies with "bucket_strategy": "resolution_frames"')

    def _media_column(self, e: Entry) -> str:
        """The column read for media: video_column for clips (else image_column, else "video"), image_column else."""
        m = e.values
        if m.get("dataset_type") == "video":
            return m.get("video_column") or m.get("image_column") or "video"
        return m.get("image_column", "image")

    def _folder(self, e: Entry, key: str, value: str, bad) -> Path:
        """A cache folder resolved; a file on its way is a problem."""
        folder = self.resolve(value)
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            bad(f"key '{key}' resolves to {folder}, but {blocker} is a file, not a folder; point {key} at a folder")
        return folder

    def _latents_dir(self, e: Entry, bad) -> Path | None:
        """cache_dir_vae, else the named image_embeds entry's folder for this backend, else None (the default)."""
        m = e.values
        if m.get("cache_dir_vae"):
            return self._folder(e, "cache_dir_vae", m["cache_dir_vae"], bad)
        ref = m.get("image_embeds")
        if ref is None:
            return None
        cache = self.caches.get(ref)
        if cache is None or cache.kind != "image_embeds":
            known = ", ".join(i for i, c in self.caches.items() if c.kind == "image_embeds") or "none defined"
            bad(f"key 'image_embeds' names '{ref}', which is not an image_embeds entry ({known})")
            return None
        return cache.directory / e.id if cache.explicit else None

    def _path_warnings(self, e: Entry, resolved: dict[str, Path | None]) -> None:
        """Say where caches go when a path used a placeholder the trainer's settings did not give."""
        for key in PATH_KEYS:
            names = e.placeholder_stand_ins.get(key)
            if names and resolved.get(key) is not None:
                unset = ", ".join(f"{{{n}}} ({VARIABLES[n]} is not set)" for n in sorted(names))
                self.warn(e, f"key '{key}' uses {unset}: it resolves to {resolved[key]}")

    def _captions(self, m: dict, strategy: str, kind: str) -> CaptionConfig:
        columns = m.get("caption_column", ())
        prompt = m.get("instance_prompt")
        block = m.get("parquet", {})
        table = None
        if strategy == "parquet":  # a local path resolves like every path; an aws path is a key in the bucket
            path = str(self.resolve(block["path"])) if kind == "local" else block["path"].lstrip("/")
            table = CaptionTableConfig(
                path=path,
                filename_column=block.get("filename_column", "id"),
                caption_column=block.get("caption_column", "description"),
                fallback_caption_column=block.get("fallback_caption_column"),
                identifier_includes_extension=block.get("identifier_includes_extension", False),
            )
        return CaptionConfig(
            columns=(columns,) if isinstance(columns, str) else tuple(columns),
            fallback_column=m.get("fallback_caption_column"),
            description_column=m.get("description_column"),
            instance_prompt=tuple(prompt) if isinstance(prompt, list) else prompt,
            strategy=strategy,
            encoding=m.get("caption_encoding"),
            prepend_instance_prompt=m.get("prepend_instance_prompt", False),
            only_instance_prompt=m.get("only_instance_prompt", False),
            split_lines=not m.get("disable_multiline_split", False),
            table=table,
        )

    @staticmethod
    def _s3(m: dict) -> S3Location:
        return S3Location(
            bucket=m["aws_bucket_name"],
            prefix=m.get("aws_data_prefix", ""),
            endpoint_url=m.get("aws_endpoint_url") or None,
            region=m.get("aws_region_name") or None,
            key_id=m.get("aws_access_key_id") or None,
            secret=m.get("aws_secret_access_key") or None,
            token=m.get("aws_session_token") or None,
            max_pool_connections=m.get("aws_max_pool_connections"),
        )

    def dataset_location(self, name: str) -> str:
        """A local dataset (or model) folder, file or glob as an absolute path; a URL or a hub id unchanged."""
        if "://" in name:
            return name
        candidate = (self.base / Path(name).expanduser()).resolve()
        head = name.split("*")[0].split("?")[0].split("[")[0]
        is_glob = head != name and (self.base / Path(head).expanduser()).parent.exists()
        looks_like_path = name.startswith(("/", "./", "../", "~")) or candidate.exists() or is_glob
        return str(candidate) if looks_like_path else name


class CacheEntry:
    """A text_embeds / image_embeds entry: its kind, folder, and the warnings of the backends that use it."""

    def __init__(self, kind: str, directory: Path | str, explicit: bool = False, warnings: tuple[str, ...] = ()):
        self.kind, self.directory, self.explicit, self.warnings = kind, Path(directory), explicit, warnings


def _filters(filt: dict, video: dict) -> FilterConfig:
    collection = filt.get("collection")
    return FilterConfig(
        quality_thresholds={k: float(v) for k, v in filt.get("quality_thresholds", {}).items()},
        quality_column=filt.get("quality_column", "quality_assessment"),
        collection=(collection,) if isinstance(collection, str) else (tuple(collection) if collection else None),
        collection_column=filt.get("collection_column", "collection"),
        min_width=filt.get("min_width"),
        min_height=filt.get("min_height"),
        min_frames=video.get("min_frames", video.get("num_frames")),
    )


def _conditioning(m: dict[str, Any]) -> ConditioningConfig:
    data = m.get("conditioning_data", ())
    return ConditioningConfig(
        generators=tuple(m.get("conditioning", ())),
        data=(data,) if isinstance(data, str) else tuple(data),
        type=m.get("conditioning_type"),
        source_dataset_id=m.get("source_dataset_id"),
    )
