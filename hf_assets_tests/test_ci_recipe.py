"""The README's CI recipe, run as written on the demo: validate, materialize per partition, read the instance."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hf_assets_tests.demo_workspace import ROOT

BIN = Path(sys.executable).parent
# the demo's image backends with the most and the fewest rows, and the canny ControlNet dataset made from the latter
PARTITIONS = ["photos", "local-folder", "local-folder_conditioning_canny"]


def recipe() -> str:
    """The shell block under "CI recipe" in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"### CI recipe\n.*?```bash\n(.*?)```", text, re.S)
    assert match, "README has no '### CI recipe' bash block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_ci_recipe_materializes_each_partition_and_reads_the_results(demo_workspace):
    env = {**demo_workspace.env, "PATH": f"{BIN}:{demo_workspace.env['PATH']}", "PARTITIONS": " ".join(PARTITIONS)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert sorted(report) == sorted(PARTITIONS)
    for partition in PARTITIONS:
        assert report[partition]["ok"], report[partition]
        assets = report[partition]["assets"]
        assert set(assets) == {
            "raw_split",
            "filtered_index",
            "aspect_buckets",
            "bucket_previews",
            "vae_latents",
            "text_embeds",
        }
        latents = assets["vae_latents"]["metadata"]
        assert latents["encoded"] + latents["dropped"] == assets["aspect_buckets"]["metadata"]["samples"]
        assert latents["encoded"] > 0
        assert len(report[partition]["checks"]) == 10 and all(report[partition]["checks"].values())
        assert {"raw_split:split_current", "filtered_index:drop_rate", "aspect_buckets:buckets_not_empty"} <= set(
            report[partition]["checks"]
        )
    canny = report["local-folder_conditioning_canny"]["assets"]
    assert canny["aspect_buckets"]["metadata"]["source"] == "local-folder"
    assert (
        canny["vae_latents"]["metadata"]["conditioning_type"],
        canny["aspect_buckets"]["metadata"]["generator"],
    ) == (
        "controlnet",
        "canny",
    )
    source = report["local-folder"]["assets"]
    assert canny["aspect_buckets"]["metadata"]["samples"] == source["aspect_buckets"]["metadata"]["samples"]
    assert canny["vae_latents"]["metadata"]["encoded"] == source["vae_latents"]["metadata"]["encoded"]  # pair by pair


@pytest.mark.slow
def test_the_report_fails_for_a_partition_never_materialized(demo_workspace):
    done = subprocess.run(
        [sys.executable, "-m", "hf_assets.instance_report", "grids"],
        cwd=ROOT,
        env=demo_workspace.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["grids"]["ok"] is False and report["grids"]["assets"]["raw_split"] is None
