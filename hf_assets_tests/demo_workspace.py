"""The bundled demo as a throwaway workspace: data and config in a temp folder, a fresh DAGSTER_HOME, tiny models."""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from hf_assets import env as env_names

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DemoWorkspace:
    config: Path
    home: Path
    env: dict


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The demo data built once per session by the examples module (`make demo` builds the same)."""
    from examples.make_demo_data import build_demo_data

    return build_demo_data(tmp_path_factory.mktemp("demo") / "demo_data").parent


@pytest.fixture
def demo_workspace(tmp_path, demo_data) -> DemoWorkspace:
    """A private copy of the demo (its caches start empty), a DAGSTER_HOME with the bundled dagster.yaml. No model
    is set in the environment: each backend's entry names its own."""
    folder = tmp_path / "demo"
    shutil.copytree(demo_data, folder, ignore=shutil.ignore_patterns("cache"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    config = folder / "dataloader.json"
    env = {
        **{k: v for k, v in os.environ.items() if k not in (env_names.MODEL, env_names.VIDEO_MODEL)},
        "DAGSTER_HOME": str(home),
        "HF_ASSETS_DATALOADER_CONFIG": str(config),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    return DemoWorkspace(config, home, env)
