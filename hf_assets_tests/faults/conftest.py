"""A real instance, dataset and tiny model for CLI runs that are killed and rerun."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hf_assets_tests.conftest import PHOTOS_ENTRY, photo_rows, write_config, write_hub_dataset

ROOT = Path(__file__).resolve().parents[2]
ASSETS = "raw_split,filtered_index,aspect_buckets,vae_latents,text_embeds"


class Project:
    """One DAGSTER_HOME, one dataloader config and one model, and the CLI runs made against them."""

    def __init__(self, root: Path, model: Path, shard_mb: int = 1):
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        write_hub_dataset(root / "data" / "photos", photo_rows(24))
        entry = {**PHOTOS_ENTRY, "resolution": 512, "aspect_bucket_alignment": 64}
        self.config = write_config(root / "dataloader.json", [entry])
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "HF_ASSETS_DATALOADER_CONFIG": str(self.config),
            "HF_ASSETS_MODEL": str(model),
            "HF_HUB_OFFLINE": "1",
            "HF_ASSETS_VAE_BATCH_SIZE": "2",
            "HF_ASSETS_DECODE_WORKERS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        # a 512x512 latent is 4x64x64 fp32, mean + std = 128 KiB: 1 MiB shards give several per run
        self.env["HF_ASSETS_SHARD_MB"] = str(shard_mb)

    @property
    def vae_dir(self) -> Path:
        return self.root / "cache" / "photos" / "vae" / "photos"

    @property
    def text_dir(self) -> Path:
        return self.root / "cache" / "photos" / "text_embeds" / "photos"

    def command(self, point: str = "none", count: int = 1, select: str = ASSETS) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hf_assets_tests.faults.driver",
            point,
            str(count),
            "--",
            "asset",
            "materialize",
            "-m",
            "hf_assets.definitions",
            "--select",
            select,
            "--partition",
            "photos",
        ]

    def run(self, point: str = "none", count: int = 1, timeout: int = 600, **env) -> subprocess.CompletedProcess:
        marker = self.root / "killed_at"
        marker.unlink(missing_ok=True)
        done = subprocess.run(
            self.command(point, count),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, "HF_ASSETS_TEST_KILLED_AT": str(marker), **env},
        )
        if point != "none":
            assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
            assert marker.read_text() == point
        return done

    def start(self, **env) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**self.env, **env},
        )

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))


@pytest.fixture
def project(tmp_path, tiny_sdxl) -> Project:
    return Project(tmp_path, tiny_sdxl)
