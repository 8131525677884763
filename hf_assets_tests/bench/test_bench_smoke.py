"""Every benchmark script runs to its table on tiny sizes (`python -m bench.<script>`, as the README runs them)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem.startswith(("bench_", "make_")))


def run(module: str, *args: str, timeout: int = 300) -> str:
    """stdout of `python -m bench.<module> args` from the repository root; fails with its stderr otherwise."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_bench_sizes_on_a_few_images():
    out = run("bench_sizes", "--n", "3", "--repeats", "1")
    assert "full decode" in out and "image_size (header only)" in out and "x\n" in out


def test_bench_captions_filters_on_a_few_thousand_rows():
    out = run("bench_captions_filters", "--rows", "2000", "--repeats", "1")
    assert "results identical to baseline: yes" in out and "extract_captions" in out


def test_bench_generators_on_a_few_small_photographs():
    out = run("bench_generators", "--n", "2", "--size", "64", "--repeats", "1")
    assert "| decode + LANCZOS resize (baseline) |" in out and "| canny |" in out and "| random_masks |" in out


def test_make_bench_dataset_writes_a_loadable_folder(tmp_path):
    out = run("make_bench_dataset", "--rows", "300", "--shards", "1", "--out", str(tmp_path / "data"))
    assert "wrote 300 rows" in out
    assert len(list((tmp_path / "data" / "data").glob("*.parquet"))) == 1


@pytest.mark.slow
def test_bench_metadata_on_a_small_dataset(tmp_path):
    out = run("bench_metadata", "--rows", "2000", "--loop-rows", "200", "--scale", "0", "--out", str(tmp_path))
    sides = [line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| 1,000 |")]
    assert sides == ["floor", "ours", "ours_warm", "idiomatic", "loop"]  # ours and idiomatic kept the same rows


@pytest.mark.slow
def test_bench_metadata_cli_runs_the_cli_over_http_beside_both_baselines(tmp_path):
    """One run of the bench (each CLI run is a dagster process): the remote source, both baselines at both sizes."""
    args = ["--rows", "600", "--base-rows", "300", "--shards", "1", "--row-group-rows", "200", "--out", str(tmp_path)]
    out = run("bench_metadata_cli", *args, "--baselines", "idiomatic", "loop", "--loop-rows", "50", "--remote")
    assert "| CLI (ours) | 600 |" in out and "| idiomatic (in-process, imports excluded) | 600 |" in out
    assert "| aspect_buckets |" in out and "machine:" in out
    assert "HTTP: the server sent" in out and "(bucket_previews included)" in out
    big = json.loads((tmp_path / "results-r600-b1000-remote.json").read_text())["big"]
    cli = big["cli"]
    assert cli["status"] == "SUCCESS" and set(cli["steps"]) >= {"aspect_buckets", "bucket_previews"}
    assert 0 < cli["sent_bytes"] and cli["peak_rss_mb"] > 0 and cli["metadata"]["aspect_buckets.samples"] > 0
    assert set(big) >= {"cli", "idiomatic", "loop"}, sorted(big)


@pytest.mark.slow
def test_bench_encode_with_the_tiny_vae(tmp_path):
    figures = tmp_path / "figures.json"
    args = ["--device", "cpu", "--vae", "tiny", "--images", "4", "--batch", "2", "--resolution", "64"]
    out = run("bench_encode", *args, "--work-dir", str(tmp_path / "work"), "--json", str(figures))
    assert "| pipeline `update_latents`, eager | pillow | 4 |" in out and "÷ best bare" in out
    best = json.loads(figures.read_text())["best_images_per_s"]
    stages = ("bare_nchw", "bare_channels_last", "pipeline_eager_pillow", "naive", "decode_pillow", "null")
    assert all(best[stage] > 0 for stage in stages)
    assert not list((tmp_path / "work" / "runs").iterdir())  # the run folder is removed without --keep


@pytest.mark.slow
def test_the_gpu_check_runs_end_to_end_on_cpu_in_its_dry_mode(tmp_path):
    # as on the GPU machine (field notes §6), the packages it lacks cannot be imported (its wheels bring diffusers)
    lacking = tmp_path / "gpu_machine"
    lacking.mkdir()
    (lacking / "sitecustomize.py").write_text(
        "import sys\nfor name in ('datasets', 'dill', 'multiprocess', 'av', 'dagster'):\n    sys.modules[name] = None\n"
    )
    pythonpath = os.pathsep.join(filter(None, [str(lacking), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "GPU_CHECK_DRY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable, "PYTHONPATH": pythonpath}
    done = subprocess.run(
        ["bash", "bench/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = done.stdout.split("## Summary")[1]
    for part in ("1024_mixed", "512_square", "1024_warm_compile"):
        assert (tmp_path / f"{part}.json").is_file() and f"| {part} |" in summary
    assert "**pipeline ÷ best bare** (pipeline_eager_pillow)" in summary  # the targets' rows, with a value
    pillow = [line for line in summary.splitlines() if "1024_mixed | pipeline `update_latents`, eager pillow" in line]
    assert len(pillow) == 1 and "img/s" in pillow[0]  # the pipeline ran without the packages the machine lacks
    nvjpeg = [line for line in summary.splitlines() if "1024_mixed | pipeline `update_latents`, eager nvjpeg" in line]
    assert len(nvjpeg) == 1 and ("img/s" in nvjpeg[0] or "error: ImportError" in nvjpeg[0])  # a row either way


SMOKED = {
    "bench_sizes",
    "bench_captions_filters",
    "bench_generators",
    "make_bench_dataset",
    "bench_metadata",
    "bench_metadata_cli",
    "bench_encode",
}


@pytest.mark.parametrize("script", sorted(set(SCRIPTS) - SMOKED) or ["none"])
def test_every_other_bench_script_at_least_starts(script):
    if script == "none":
        pytest.skip("every bench script has a tiny run above")
    assert "usage" in run(script, "--help").lower()
