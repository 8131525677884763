"""The values the encoding engine passes between its three steps (plan, encode a shard, commit) and its callers.

Plain data, JSON-able where it travels between Dagster steps or machines. This module imports no other hf_assets
module, so the plan, shard and commit modules can all use it without importing each other.
"""

import json
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LATENT_FORMAT = 1  # version of the image transform (decode, tile, resize, crop): part of every latent's key
PLAN_FILE = "plan.json"  # written last into a plan's folder: its presence marks the plan whole
REPORTS_DIR = "reports"  # <plan>/reports/shard-<k>.json: what each shard step did, read by the commit
DECODE_PATHS = {  # how images become pixels; part of every latent's key (their pixels differ)
    "pillow": "Pillow: decode and LANCZOS resize on the decode threads",
    "nvjpeg": "JPEGs: nvJPEG and an antialiased bicubic resize on the GPU; other formats and failures: Pillow",
}


@dataclass(frozen=True)
class EncodeSettings:
    """How an encoding job runs: batch size, decode threads, shard size, the dtypes and the speed options.

    The dtypes are torch dtype names (`str(torch.bfloat16)`), so the settings travel as JSON. The model and stored
    dtypes and the decode path change the result (they are in every latent's key, see `LatentSettings`); the
    other speed options (memory layout, compilation) change it no more than the batch size does (float rounding).
    """

    batch_size: int = 8  # images per VAE forward pass (halved on CUDA out-of-memory); 0: the most that fit
    decode_workers: int = 4  # threads decoding and resizing ahead of the VAE
    shard_bytes: int = 256 << 20  # size of one safetensors shard of the cache
    model_dtype: str = "torch.float32"  # the dtype the VAE runs in
    latent_dtype: str = "torch.float32"  # the dtype latents are stored in
    compile: str = "off"  # off, or a torch.compile mode for the image VAE's encoder (encode/compiled.py)
    memory_format: str = "auto"  # the image VAE's memory layout: auto, nchw or channels_last (encode/vae_runner.py)
    decode: str = "pillow"  # pillow, or nvjpeg: JPEGs decoded and resized on the GPU (encode/gpu_decode.py)
    compile_cache: str = ""  # folder of compiled graphs kept between processes ("": encode/compiled.py's default)

    def __post_init__(self):
        for name in ("decode_workers", "shard_bytes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"EncodeSettings.{name} must be at least 1, got {getattr(self, name)!r}")
        if int(self.batch_size) < 0:
            raise ValueError(f"EncodeSettings.batch_size must be 0 (automatic) or more, got {self.batch_size!r}")
        if self.decode not in DECODE_PATHS:
            raise ValueError(f"EncodeSettings.decode={self.decode!r}: choose {' or '.join(DECODE_PATHS)}")

    def latent_settings(self, vae_identity: str) -> "LatentSettings":
        """The settings that key this job's latents, for the VAE with identity `vae_identity`."""
        return LatentSettings(vae_identity, self.model_dtype, self.latent_dtype, decode=self.decode)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "EncodeSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class LatentSettings:
    """Everything global that changes a latent: the VAE, its dtype, the stored dtype, the transform, the decoder."""

    vae_identity: str
    model_dtype: str
    latent_dtype: str
    resample: str = "lanczos"
    format: int = LATENT_FORMAT
    decode: str = "pillow"  # a key of DECODE_PATHS

    def key_fields(self) -> dict:
        """The fields hashed into each cache key; Pillow's decode path is left out, so caches written before the
        decode setting existed keep their keys."""
        values = asdict(self)
        if values["decode"] == "pillow":
            del values["decode"]
        return values


@dataclass
class EncodeReport:
    """What one update (plan, shards, commit) did."""

    encoded: int = 0
    reused: int = 0
    dropped: dict[str, str] = field(default_factory=dict)  # filename -> reason
    dropped_before: set[str] = field(default_factory=set)  # of `dropped`: skipped for a failure an earlier run recorded
    encode_seconds: float = 0.0
    size_bytes: int = 0

    @property
    def throughput(self) -> float:
        return self.encoded / self.encode_seconds if self.encode_seconds else 0.0


@dataclass
class ShardReport:
    """What encoding one shard did; plain JSON values, so it can travel between Dagster steps."""

    shard: int
    encoded: int = 0
    resumed: int = 0  # entries an earlier attempt of this shard had already written
    reused: int = 0  # samples keyed by this shard (see encode.fetch_hashes) whose entry the cache already held
    carried: dict[str, str] = field(default_factory=dict)  # of `failures`: those an earlier run recorded
    failures: dict[str, str] = field(default_factory=dict)  # cache key -> drop reason
    seconds: float = 0.0  # encoding time
    started: float = 0.0  # wall clock (epoch seconds), 0 when nothing was encoded
    finished: float = 0.0
    host: str = ""
    pid: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ShardReport":
        return cls(**values)


class CacheNotShared(RuntimeError):
    """A step cannot see the cache directory another step wrote: the cache is not on a shared filesystem."""


@dataclass(frozen=True)
class LatentPlan:
    """A written plan: what each shard encodes, with the settings and cache metadata every step shares.

    The tables live in `directory` (`<cache dir>/plans/<plan id>`): the rows to commit, the rows of each shard, the
    samples refused before encoding, and the decode failures carried from earlier runs.
    """

    directory: Path  # <cache dir>/plans/<plan id>
    shards: int
    shard_sizes: tuple[int, ...]  # rows to encode per shard
    reused: int
    host: str
    media: str = "image"  # the kind of sample (a backend's dataset_type): how each one is decoded and encoded
    column: str = "image"  # the split's column holding the samples' bytes
    settings: EncodeSettings = EncodeSettings()
    meta: dict = field(default_factory=dict)  # the cache's manifest.json metadata (VAE, factors, dtypes, backend)
    memo_dir: str = ""  # where the commit records the content hashes its shards computed ("": none were left to them)

    @property
    def cache_dir(self) -> Path:
        return self.directory.parent.parent

    @property
    def busy_shards(self) -> list[int]:
        """Shards with something to encode."""
        return [k for k, n in enumerate(self.shard_sizes) if n]

    @property
    def to_encode(self) -> int:
        return sum(self.shard_sizes)

    def shard_rows(self, shard: int) -> pa.Table:
        """The rows shard `shard` encodes (key, filename, row, geometry, hashes)."""
        return _read(self.directory / f"shard-{shard:05d}.parquet", self)

    def readable(self) -> pa.Table:
        """Every wanted sample whose bytes could be read, with its key: what the commit records."""
        return _read(self.directory / "readable.parquet", self)

    def refused(self) -> dict[str, str]:
        """file name -> reason of the samples refused before encoding (bytes unreadable, too few frames)."""
        table = _read(self.directory / "refused.parquet", self)
        return dict(zip(table.column("filename").to_pylist(), table.column("reason").to_pylist()))

    def report_path(self, shard: int) -> Path:
        """Where shard `shard` leaves its report for the commit."""
        return self.directory / REPORTS_DIR / f"shard-{shard:05d}.json"

    def shard_reports(self) -> list[ShardReport]:
        """The reports the plan's shard steps left, wherever they ran (a shard that encoded nothing may leave none)."""
        require_visible(self)
        paths = sorted((self.directory / REPORTS_DIR).glob("shard-*.json"))
        return [ShardReport.from_dict(json.loads(path.read_text())) for path in paths]

    def pending(self) -> pa.Table:
        """The samples its shards key as they fetch them (no content hash yet; `encode.fetch_hashes`)."""
        path = self.directory / "pending.parquet"
        return pq.read_table(path) if path.is_file() else pa.table({"row": pa.array([], pa.int64())})

    def carried_failures(self) -> dict[str, str]:
        """cache key -> reason of samples that failed to decode in an earlier run (not tried again)."""
        table = _read(self.directory / "carried_failures.parquet", self)
        return dict(zip(table.column("key").to_pylist(), table.column("reason").to_pylist()))

    def to_dict(self) -> dict:
        return {
            "directory": str(self.directory),
            "shards": self.shards,
            "shard_sizes": list(self.shard_sizes),
            "reused": self.reused,
            "host": self.host,
            "media": self.media,
            "column": self.column,
            "settings": self.settings.to_dict(),
            "meta": self.meta,
            "memo_dir": self.memo_dir,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "LatentPlan":
        return cls(
            Path(values["directory"]),
            int(values["shards"]),
            tuple(values["shard_sizes"]),
            int(values["reused"]),
            values["host"],
            values.get("media", "image"),
            values.get("column", "image"),
            EncodeSettings.from_dict(values.get("settings", {})),
            dict(values.get("meta", {})),
            values.get("memo_dir", ""),
        )


def require_visible(plan: LatentPlan) -> None:
    """Fail clearly when this process cannot see the plan another step wrote (the cache is not shared)."""
    if not (plan.directory / PLAN_FILE).is_file():
        raise CacheNotShared(
            f"{socket.gethostname()} cannot see {plan.directory / PLAN_FILE}, written by the plan step on "
            f"{plan.host}: the cache_dir of this backend must be on a filesystem every step can read and write "
            "(NFS, Lustre, a ReadWriteMany volume mounted at the same path), or the plan was removed by a commit"
        )


_OPTIONAL = {
    "refused.parquet": pa.table({"filename": pa.array([], pa.string()), "reason": pa.array([], pa.string())}),
    "carried_failures.parquet": pa.table({"key": pa.array([], pa.string()), "reason": pa.array([], pa.string())}),
}


def _read(path: Path, plan: LatentPlan) -> pa.Table:
    if not path.is_file():
        require_visible(plan)
        if path.name in _OPTIONAL:
            return _OPTIONAL[path.name]
        if path.name.startswith("shard-"):
            return pa.table({"key": pa.array([], pa.string())})  # an idle shard has no file
        raise FileNotFoundError(f"{path}: the plan in {plan.directory} is incomplete; run vae_latents again")
    return pq.read_table(path)
