"""Typed, validated view of one dataloader config. Built by `config.loader`; read everywhere else."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hf_assets.config.conditioning_generators import STRICT_TYPES, GeneratorConfig
from hf_assets.config.errors import ConfigError

ResolutionType = Literal["pixel", "area", "pixel_area"]
CropAspect = Literal["square", "preserve", "closest", "random"]
CropStyle = Literal["center", "random", "corner"]
CompositeLayout = Literal["horizontal", "vertical", "grid"]
BucketStrategy = Literal["aspect_ratio", "resolution_frames"]
BackendType = Literal["huggingface", "local", "aws"]
DatasetType = Literal["image", "video", "conditioning", "eval"]


@dataclass(frozen=True)
class CaptionTableConfig:
    """SimpleTuner's `parquet` block: the table of a folder's captions, joined on each image's name."""

    path: str  # absolute (local) or a key in the bucket (aws)
    filename_column: str = "id"
    caption_column: str = "description"
    fallback_caption_column: str | None = None
    identifier_includes_extension: bool = False


@dataclass(frozen=True)
class CaptionConfig:
    """Where a row's captions come from, in order of preference."""

    columns: tuple[str, ...] = ()  # primary caption columns; each may be a nested path "a.b"
    fallback_column: str | None = None
    description_column: str | None = None
    instance_prompt: str | tuple[str, ...] | None = None  # a prompt, or several (one caption variant each)
    strategy: str = "huggingface"  # huggingface | textfile | filename | instanceprompt
    encoding: str | None = None  # caption_encoding: how a sidecar that is not UTF-8 is decoded
    prepend_instance_prompt: bool = False  # each variant becomes "instance_prompt variant"
    only_instance_prompt: bool = False  # every row is captioned with the instance prompt(s) alone
    split_lines: bool = True  # textfile: each non-empty line of a caption file is a variant
    table: CaptionTableConfig | None = None  # caption_strategy "parquet"

    @property
    def instance_prompts(self) -> tuple[str, ...]:
        """The instance prompt(s) as a tuple (empty when none is set)."""
        if self.instance_prompt is None:
            return ()
        return (self.instance_prompt,) if isinstance(self.instance_prompt, str) else tuple(self.instance_prompt)

    @property
    def uses_instance_prompt_only(self) -> bool:
        """True when every row's captions are the instance prompt(s), whatever the files or columns hold."""
        return self.strategy == "instanceprompt" or self.only_instance_prompt


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
class DrawSchedule:
    """When the trainer's door draws from a backend (SimpleTuner's per-dataset schedule keys)."""

    ignore_epochs: bool = False  # the backend does not hold up the end of an epoch
    start_epoch: int = 1  # epochs count from 1, as in SimpleTuner
    start_step: int = 0
    end_epoch: int | None = None
    end_step: int | None = None

    def active(self, epoch: int, step: int) -> bool:
        """True when the backend may be drawn in `epoch` (from 1) at optimizer step `step`."""
        if epoch < self.start_epoch or step < self.start_step:
            return False
        return (self.end_epoch is None or epoch <= self.end_epoch) and (self.end_step is None or step <= self.end_step)


@dataclass(frozen=True)
class S3Location:
    """A `type: "aws"` backend's folder of images: bucket, prefix, endpoint, region and credentials.

    The credentials never appear in a repr, a log line or a cache key.
    """

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    key_id: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    max_pool_connections: int | None = None

    @property
    def url(self) -> str:
        """s3://bucket/prefix (no trailing slash)."""
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def storage_options(self) -> dict[str, Any]:
        """s3fs keyword arguments (credentials only when given, else s3fs's usual chain)."""
        options: dict[str, Any] = {}
        if self.key_id or self.secret:
            options.update(key=self.key_id, secret=self.secret)
        if self.token:
            options["token"] = self.token
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        if self.max_pool_connections:
            options["config_kwargs"] = {"max_pool_connections": self.max_pool_connections}
        return options


@dataclass(frozen=True)
class ConditioningConfig:
    """SimpleTuner's conditioning keys of one backend, typed, and the pairing they resolve to when the config loads
    (`config.conditioning_links`): a conditioning dataset's source, generator and captions, a source's partners."""

    generators: tuple[Mapping[str, Any], ...] = ()  # the `conditioning` objects, as given (each has a "type")
    data: tuple[str, ...] = ()  # conditioning_data: ids of this backend's conditioning datasets
    type: str | None = None  # conditioning_type: controlnet, mask, reference_strict or reference_loose
    source_dataset_id: str | None = None
    source: str | None = None  # resolved: the source backend of a conditioning dataset (given or generated)
    generator: GeneratorConfig | None = None  # resolved: a generated dataset's generator and parameters
    captions: str | tuple[str, ...] = "own"  # "own", "source" (SimpleTuner's inherited) or fixed ones (() for none)
    output_dir: Path | None = None  # a generated dataset's images are also written there (its instance_data_dir)
    partners: tuple[str, ...] = ()  # resolved: a source's conditioning datasets, given ones first

    def generated_ids(self, backend_id: str) -> tuple[str, ...]:
        """SimpleTuner's ids of the datasets the generators make: `{source id}_conditioning_{type}`."""
        return tuple(f"{backend_id}_conditioning_{g['type']}" for g in self.generators)

    @property
    def is_conditioning(self) -> bool:
        """True for a conditioning dataset (it has a source)."""
        return self.source is not None

    @property
    def strict(self) -> bool:
        """True when its samples take their source sample's bucket, resize and crop exactly."""
        return self.is_conditioning and self.type in STRICT_TYPES


DEFAULT_MAX_DROP_RATE = 0.5  # max_drop_rate unset: more than half the split dropped is a filter set wrong


@dataclass(frozen=True)
class BackendConfig:
    """One dataset backend: one Dagster partition."""

    id: str
    type: BackendType
    dataset_type: DatasetType
    cache_dir: Path  # absolute; our caches live under it
    dataset_name: str | None = None  # hub id or absolute local path (huggingface type)
    split: str = "train"
    revision: str | None = None
    image_column: str = "image"  # the column read for media: images, or clips of a video backend
    file_extension: str = "jpg"  # virtual file names are "{row}.{file_extension}" where rows have no names
    instance_data_dir: Path | None = None  # absolute (local type)
    s3: S3Location | None = None  # aws type
    width_column: str | None = None
    height_column: str | None = None
    num_frames_column: str | None = None
    fps_column: str | None = None
    num_proc: int | None = None
    probability: float = 1.0
    repeats: int = 0
    schedule: DrawSchedule = field(default_factory=DrawSchedule)
    max_num_samples: int | None = None  # keep at most this many samples (lowest hash of backend id and file name)
    max_drop_rate: float = DEFAULT_MAX_DROP_RATE  # filtered_index's check fails above this share of rows dropped
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    composite: CompositeConfig = field(default_factory=CompositeConfig)
    buckets: BucketConfig = field(default_factory=BucketConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    text_embeds_dir: Path | None = None  # absolute; from the text_embeds entry, if any
    latents_dir: Path | None = None  # absolute; cache_dir_vae (or an image_embeds entry), if given
    trainer_settings: Mapping[str, Any] = field(default_factory=dict)  # keys for the training loop, as given
    model: str | None = None  # pretrained_model_name_or_path: a pipeline folder (absolute) or hub id
    vae_model: str | None = None  # pretrained_vae_model_name_or_path
    warnings: tuple[str, ...] = ()  # keys accepted but not used, each with why

    @property
    def metadata_dir(self) -> Path:
        return self.cache_dir / "huggingface_metadata" / self.id

    @property
    def vae_dir(self) -> Path:
        return self.latents_dir or self.cache_dir / "vae" / self.id

    @property
    def trains(self) -> bool:
        """False for datasets that are prepared but never drawn for training (eval, conditioning)."""
        return self.dataset_type in ("image", "video")

    @property
    def text_dir(self) -> Path:
        return (self.text_embeds_dir or self.cache_dir / "text_embeds") / self.id


@dataclass(frozen=True)
class DataloaderConfig:
    """The whole dataloader file: its enabled dataset backends, in file order.

    A config loaded with `strict=False` also holds its broken backends: each id with the problems that keep it from
    loading. They stay partitions (so the UI shows them) while `backend()` refuses them with their problems.
    """

    path: Path
    backends: tuple[BackendConfig, ...]
    text_embeds_dir: Path | None = None
    warnings: tuple[str, ...] = ()
    broken: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # backend id -> its problems
    order: tuple[str, ...] = ()  # every partition id (working and broken) in file order

    @property
    def backend_ids(self) -> list[str]:
        """The ids of the backends that load."""
        return [b.id for b in self.backends]

    @property
    def partition_ids(self) -> list[str]:
        """Every backend a partition stands for, working or broken, in file order."""
        return list(self.order) or self.backend_ids

    @property
    def problems(self) -> list[str]:
        """Every problem of every broken backend, one per line."""
        return [problem for problems in self.broken.values() for problem in problems]

    def conditioning_of(self, source_id: str) -> tuple[str, ...]:
        """The ids of the conditioning datasets paired with the backend `source_id` (given ones, then generated)."""
        return self.backend(source_id).conditioning.partners

    def backend(self, backend_id: str) -> BackendConfig:
        """The typed config of one backend; a broken one raises its problems as a ConfigError."""
        for b in self.backends:
            if b.id == backend_id:
                return b
        if backend_id in self.broken:
            raise ConfigError(self.path, list(self.broken[backend_id]))
        raise KeyError(
            f"backend {backend_id!r} is not an enabled dataset in {self.path}; "
            f"known ids: {', '.join(self.backend_ids) or '(none)'}"
        )
