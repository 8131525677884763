"""The `dg` CLI of current Dagster on this project, run from the repository root as the README says."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hf_assets_tests.conftest import write_config
from hf_assets_tests.test_cli import env_for

ROOT = Path(__file__).resolve().parents[1]
DG = str(Path(sys.executable).parent / "dg")


def dg(*args: str, env: dict, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([DG, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_dg_check_defs_passes_and_dg_list_defs_lists_assets_checks_jobs_and_automation(tmp_path, photos_entry):
    entries = [photos_entry, {**photos_entry, "id": "photos-2", "cache_dir": "cache/photos-2"}]
    env = env_for(tmp_path, write_config(tmp_path / "dataloader.json", entries))
    checked = dg("check", "defs", env=env)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-3000:]
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    assert "SupersessionWarning" not in checked.stderr

    listed = dg("list", "defs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr[-3000:]
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"]: a for a in defs["assets"]}
    assert list(assets) == sorted(
        ["raw_split", "filtered_index", "aspect_buckets", "bucket_previews", "vae_latents", "text_embeds"]
    )
    assert assets["vae_latents"]["group_name"] == "encoders" and assets["raw_split"]["group_name"] == "metadata"
    checks = {c["key"] for c in defs["asset_checks"]}
    assert checks == {
        "raw_split:split_current",
        "filtered_index:drop_rate",
        "aspect_buckets:buckets_not_empty",
        "vae_latents:latents_complete",
        "vae_latents:latent_shapes",
        "vae_latents:latents_finite",
        "vae_latents:conditioning_pairs_complete",
        "text_embeds:text_embeds_complete",
        "text_embeds:text_embed_shapes",
        "text_embeds:text_embeds_finite",
    }
    assert {j["name"] for j in defs["jobs"]} == {"prepare_datasets", "scan_datasets"}
    assert [s["name"] for s in defs["schedules"]] == ["nightly_refresh"]
    assert {s["name"] for s in defs["sensors"]} == {"refresh_photos_on_change", "refresh_photos_2_on_change"}


@pytest.mark.slow
def test_a_broken_backend_loads_in_dg_check_defs_naming_its_problem_and_fails_the_config_check(tmp_path, photos_entry):
    config = write_config(tmp_path / "dataloader.json", [{**photos_entry, "crop": "False"}])
    env = env_for(tmp_path, config)
    checked = dg("check", "defs", env=env)  # the code location loads: the backend is a partition that fails at once
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-3000:]
    assert "key 'crop' must be true or false" in checked.stderr
    gate = subprocess.run(
        [sys.executable, "-m", "hf_assets.config.check", str(config)], env=env, capture_output=True, text=True
    )
    assert gate.returncode == 1 and "key 'crop' must be true or false" in gate.stdout + gate.stderr
