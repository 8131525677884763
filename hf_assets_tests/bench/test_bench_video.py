"""bench_video runs to its table on two tiny clips with the tiny Wan VAE."""

import pytest

from hf_assets_tests.bench.test_bench_smoke import run


@pytest.mark.slow
def test_bench_video_with_the_tiny_wan_vae(tmp_path):
    args = [
        "--device",
        "cpu",
        "--vae",
        "tiny",
        "--clips",
        "2",
        "--batch",
        "1",
        "--width",
        "32",
        "--height",
        "32",
        "--frames",
        "5",
        "--out",
        str(tmp_path),
    ]
    out = run("bench_video", *args)
    assert "| bare VAE forward |" in out and "| pipeline (decode + encode + cache) |" in out
    assert "pipeline / bare:" in out and "32x32x5 -> 32x32x5" in out
    assert not list(tmp_path.glob("run-*"))  # the run folder is removed
