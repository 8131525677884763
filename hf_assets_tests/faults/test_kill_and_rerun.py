"""SIGKILL at several points of a real encoding run (the dagster CLI), damaged caches and two writers at once:
each rerun finishes without manual cleanup and leaves the same cache as a clean run."""

import shutil
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_assets.cache import verify
from hf_assets.cache.latents import open_latents
from hf_assets.cache.manifest import read_manifest
from hf_assets.cache.text_embed_cache import open_text_embeds
from hf_assets_tests.faults.conftest import Project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean(tmp_path_factory, tiny_sdxl) -> Project:
    """The same project encoded once without any fault: the reference."""
    project = Project(tmp_path_factory.mktemp("clean"), tiny_sdxl)
    done = project.run()
    assert done.returncode == 0, done.stderr[-3000:]
    return project


def assert_same_caches(project: Project, clean: Project) -> None:
    """Same entries, same tensors (on CPU), nothing left over, checks passing."""
    for directory in (project.vae_dir, project.text_dir):
        assert verify.nonfinite_tensors(directory).passed
        shards = set(p.name for p in (directory / "shards").iterdir())
        assert shards == read_manifest(directory).shards()  # no orphan or temp file left
        assert not list((directory / "journal").glob("*.parquet"))
    got, want = open_latents(project.vae_dir), open_latents(clean.vae_dir)
    assert sorted(got) == sorted(want) and len(want) > 0
    for name in want:
        # Re-encoding only the damaged entries puts them in other batches than the clean run did, which changes
        # fp32 results by about 1e-4 through the VAE's convolutions and norms; a wrong repair differs by far more.
        assert torch.allclose(got[name], want[name], rtol=1e-3, atol=1e-3), name
        assert torch.allclose(got.std(name), want.std(name), rtol=1e-3, atol=1e-3), name
    got_text, want_text = open_text_embeds(project.text_dir), open_text_embeds(clean.text_dir)
    assert sorted(got_text) == sorted(want_text)
    for name in want_text:
        for a, b in zip(got_text[name], want_text[name], strict=True):
            assert a.keys() == b.keys(), name
            assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-3) for k in a if a[k].is_floating_point()), name
            assert all(torch.equal(a[k], b[k]) for k in a if not a[k].is_floating_point()), name


@pytest.mark.parametrize(
    ("point", "count"),
    [("decode", 7), ("shard", 2), ("commit", 1)],
    ids=["during_decode", "between_shards", "during_commit"],
)
def test_sigkill_then_rerun_gives_the_clean_cache(project, clean, point, count):
    project.run(point, count)
    rerun = project.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "marking it failed" in rerun.stderr  # the killed run was failed and its slot freed on the way
    assert_same_caches(project, clean)


def test_corrupt_truncated_nan_and_lost_manifest_are_repaired_by_the_next_cli_run(project, clean):
    # the clean run's caches, copied: a cache folder is self-contained (keys by content, paths relative to it)
    shutil.copytree(clean.root / "cache", project.root / "cache")
    shards = sorted((project.vae_dir / "shards").glob("*.safetensors"))
    assert len(shards) >= 3
    data = bytearray(shards[0].read_bytes())
    data[20] ^= 0x41  # a flipped byte in the header
    shards[0].write_bytes(bytes(data))
    shards[1].write_bytes(shards[1].read_bytes()[:-64])  # truncated
    tensors = load_file(shards[2])
    name = next(n for n in tensors if n.endswith("/mean"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, shards[2])
    (project.text_dir / "manifest.parquet").unlink()

    rerun = project.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for shard in shards[:2]:
        assert f"unreadable shard {shard.name}" in rerun.stderr
    assert "held NaN or inf" in rerun.stderr and "manifest.parquet is missing" in rerun.stderr
    assert_same_caches(project, clean)


def test_two_instances_writing_one_cache_at_once_wait_for_each_other_and_agree(project, clean, tmp_path):
    other_home = tmp_path / "other_home"
    other_home.mkdir()
    (other_home / "dagster.yaml").write_text((project.home / "dagster.yaml").read_text())
    marker, release = tmp_path / "paused", tmp_path / "release"
    pause = {
        "HF_ASSETS_TEST_KILLED_AT": str(marker),
        "HF_ASSETS_TEST_RELEASE": str(release),
        "HF_ASSETS_TEST_PAUSE": "600",
    }
    first_log = tmp_path / "first.log"  # a file, not a pipe: a full pipe would stall the paused run
    first = subprocess.Popen(
        project.command("pause", 1),
        cwd=project.root,
        stdout=first_log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        env={**project.env, **pause},
    )
    second = None
    try:
        for _ in range(3000):  # until the first run holds the cache's writer lock
            if marker.exists() or first.poll() is not None:
                break
            time.sleep(0.2)
        assert marker.exists(), first_log.read_text()[-3000:]
        second = subprocess.Popen(
            project.command(),
            cwd=project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**project.env, "DAGSTER_HOME": str(other_home)},
        )
        second_lines = []
        for line in second.stdout:  # the second run reaches the held lock and says it waits: let the first go on
            second_lines.append(line)
            if "is being written by another writer or commit: waiting" in line:
                release.touch()
                break
        assert release.exists(), "".join(second_lines)[-3000:]
        second_out = "".join(second_lines) + second.communicate(timeout=600)[0]
        first.wait(timeout=600)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    assert first.returncode == 0, first_log.read_text()[-3000:]
    assert second.returncode == 0, second_out[-3000:]
    assert_same_caches(project, clean)
