"""Typed, validated view of one dataloader config. Built by `config.loader`; read everywhere else."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ResolutionType = Literal["pixel", "area", "pixel_area"]
CropAspect = Literal["square", "preserve", "closest", "random"]
CropStyle = Literal["center", "random", "corner"]
CompositeLayout = Literal["horizontal", "vertical", "grid"]
BucketStrategy = Literal["aspect_ratio", "resolution_frames"]


@dataclass(frozen=True)
class CaptionConfig:
    """Where a row's captions come from, in order of preference."""

    columns: tuple[str, ...] = ()  # primary caption columns; each may be a nested path "a.b"
    fallback_column: str | None = None
    description_column: str | None = None
    instance_prompt: str | None = None  # caption_strategy "instanceprompt"
    strategy: str = "huggingface"  # huggingface | textfile | filename | instanceprompt
    encoding: str | None = None  # caption_encoding: how a sidecar that is not UTF-8 is decoded


@dataclass(frozen=True)
class FilterConfig:
    """The `filter_func` block plus the size floor, as typed values."""

    quality_thresholds: Mapping[str, float] = field(default_factory=dict)
    quality_column: str = "quality_assessment"
    collection: tuple[str, ...] | None = None
    collection_column: str = "collection"
    min_width: int | None = None
    min_height: int | None = None
    min_frames: int | None = None  # video only


@dataclass(frozen=True)
class CompositeConfig:
    """A row image made of `image_count` tiles of which tile `select_index` is kept."""

    enabled: bool = False
    image_count: int = 1
    select_index: int = 0
    layout: CompositeLayout = "horizontal"


@dataclass(frozen=True)
class VideoConfig:
    """The `video` block: how many frames of each clip are trained on, and how clips are bucketed."""

    num_frames: int | None = None  # frames trained on (the clip's first frames); None: all it has
    min_frames: int | None = None  # clips with fewer frames (also after the VAE's frame rule) are dropped
    max_frames: int | None = None  # clips with more frames are dropped
    bucket_strategy: BucketStrategy = "aspect_ratio"  # "resolution_frames": buckets like "1280x720@100"
    frame_interval: int | None = None  # resolution_frames: frame counts rounded down to a multiple of this
    is_i2v: bool = False


@dataclass(frozen=True)
class BucketConfig:
    """Every setting that decides a sample's target size and crop box (SimpleTuner's meanings)."""

    resolution: float = 1024  # pixel edge (pixel, pixel_area) or megapixels (area)
    resolution_type: ResolutionType = "pixel_area"
    minimum_image_size: float | None = None  # same unit as resolution
    maximum_image_size: float | None = None  # with target_downsample_size: resize before the crop
    target_downsample_size: float | None = None
    max_upscale_threshold: float | None = None  # drop crop_aspect_buckets needing more upscaling than this
    minimum_aspect_ratio: float | None = None  # bucket aspects outside [min, max] are dropped
    maximum_aspect_ratio: float | None = None
    crop: bool = False
    crop_aspect: CropAspect = "square"
    crop_aspect_buckets: tuple[float, ...] | None = None
    crop_aspect_weights: tuple[float, ...] | None = None  # SimpleTuner's [{"aspect": a, "weight": w}] form
    crop_style: CropStyle = "random"
    alignment: int = 64  # aspect_bucket_alignment
    rounding: int = 2  # aspect_bucket_rounding: decimals of the image aspect before sizing
    train_batch_size: int | None = None
    drop_small_buckets: bool = False


@dataclass(frozen=True)
class BackendConfig:
    """One dataset backend: one Dagster partition."""

    id: str
    type: Literal["huggingface", "local"]
    dataset_type: Literal["image", "video"]
    cache_dir: Path  # absolute; our caches live under it
    dataset_name: str | None = None  # hub id or absolute local path (huggingface type)
    split: str = "train"
    revision: str | None = None
    image_column: str = "image"
    instance_data_dir: Path | None = None  # absolute (local type)
    width_column: str | None = None
    height_column: str | None = None
    num_frames_column: str | None = None
    fps_column: str | None = None
    num_proc: int | None = None
    probability: float = 1.0
    repeats: int = 0
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    composite: CompositeConfig = field(default_factory=CompositeConfig)
    buckets: BucketConfig = field(default_factory=BucketConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    text_embeds_dir: Path | None = None  # absolute; from the text_embeds entry, if any
    warnings: tuple[str, ...] = ()  # keys accepted but not used, each with why

    @property
    def file_extension(self) -> str:
        return "mp4" if self.dataset_type == "video" else "jpg"

    @property
    def metadata_dir(self) -> Path:
        return self.cache_dir / "huggingface_metadata" / self.id

    @property
    def vae_dir(self) -> Path:
        return self.cache_dir / "vae" / self.id

    @property
    def text_dir(self) -> Path:
        return (self.text_embeds_dir or self.cache_dir / "text_embeds") / self.id


@dataclass(frozen=True)
class DataloaderConfig:
    """The whole dataloader file: its enabled dataset backends, in file order."""

    path: Path
    backends: tuple[BackendConfig, ...]
    text_embeds_dir: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def backend_ids(self) -> list[str]:
        return [b.id for b in self.backends]

    def backend(self, backend_id: str) -> BackendConfig:
        for b in self.backends:
            if b.id == backend_id:
                return b
        raise KeyError(
            f"backend {backend_id!r} is not an enabled dataset in {self.path}; "
            f"known ids: {', '.join(self.backend_ids) or '(none)'}"
        )
