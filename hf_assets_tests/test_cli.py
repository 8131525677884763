"""The dagster CLI end to end, as CI and users run it, with values read back from another process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_assets_tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env_for(tmp_path, config) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    return {**os.environ, "DAGSTER_HOME": str(home), "HF_ASSETS_DATALOADER_CONFIG": str(config), "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_cli_materialize_then_load_from_another_process(tmp_path, hub_dataset, photos_entry):
    config = write_config(tmp_path / "dataloader.json", [photos_entry])
    env = env_for(tmp_path, config)
    cmd = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "hf_assets.definitions",
        "--select",
        "raw_split,filtered_index,aspect_buckets",
        "--partition",
        "photos",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = (
        "import json; from hf_assets.definitions import defs\n"
        "t = defs.load_asset_value('aspect_buckets', partition_key='photos')\n"
        "i = defs.load_asset_value('filtered_index', partition_key='photos')\n"
        "print(json.dumps({'rows': t.num_rows, 'index_rows': i.num_rows, 'cols': t.column_names}))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd="/", env=env, capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    value = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert value["rows"] == value["index_rows"] > 0 and "bucket" in value["cols"]


def test_the_metadata_steps_and_their_checks_import_no_torch():
    # a metadata run executes these in one process: torch alone would add some 190 MB to its peak memory
    modules = [
        "hf_assets.data.metadata_verify",
        "hf_assets.assets.metadata_checks",
        "hf_assets.data.index_writer",
        "hf_assets.data.backend_buckets",
        "hf_assets.assets.bucket_previews",
    ]
    probe = f"import sys; import {', '.join(modules)}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_loading_the_definitions_imports_no_torch_or_model_library(tmp_path, photos_entry):
    config = write_config(tmp_path / "dataloader.json", [photos_entry])
    probe = (
        "import sys; import hf_assets.definitions; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'datasets') if m in sys.modules))"
    )
    env = {**os.environ, "HF_ASSETS_DATALOADER_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
