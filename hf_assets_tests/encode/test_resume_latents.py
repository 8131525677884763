"""A real crash of the latent update: a child process encodes, is SIGKILLed mid-run, and the next run resumes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors import safe_open

from hf_assets.cache.atomic import is_temp_name
from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.latents import open_latents
from hf_assets.cache.manifest import read_manifest
from hf_assets.cache.shards import list_shards
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine import update_latents
from hf_assets.encode.engine_types import LatentSettings
from hf_assets.encode.image_media import wanted_latents
from hf_assets.encode.vae import vae_factors_from_config
from hf_assets_tests.conftest import photo_rows, write_hub_dataset
from hf_assets_tests.encode.test_image_media import encode_settings, prepare

ROOT = Path(__file__).resolve().parents[2]
N = 40  # row 5 is corrupt and filtered out before bucketing: 39 samples
KILL_AFTER_SHARDS = 2
BATCH_DELAY_S = 0.3  # per batch in the child, so the parent has time to see shards and kill

CHILD = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from hf_assets_tests.encode.test_resume_latents import encode, setup

root, model, delay = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
backend, split, wanted, encoders, meta = setup(root, model)

def slow_vae():
    vae = encoders.vae()
    original = vae.encode

    def encode_slowly(x, *args, **kwargs):
        time.sleep(delay)
        return original(x, *args, **kwargs)

    vae.encode = encode_slowly
    return vae

print("encoding", flush=True)
report = encode(backend, split, wanted, slow_vae, backend.vae_dir, meta)
print("finished", report.encoded, flush=True)
"""


def setup(root: Path, model: str):
    """The backend, split, wanted latents, encoders and cache meta of the dataset under `root`."""
    backend, split, buckets = prepare(root)
    encoders = Encoders(str(model))
    settings = LatentSettings(encoders.vae_identity(), str(torch.float32), str(torch.float32))
    wanted = wanted_latents(buckets, split, backend.image_column, settings, backend.metadata_dir)
    meta = {**vae_factors_from_config(encoders.vae_config()), "vae": settings.vae_identity}
    return backend, split, wanted, encoders, meta


def encode(backend, split, wanted, loader, directory: Path, meta: dict, **kwargs):
    """update_latents with batches of 2 and a shard per flush (shard_bytes=1)."""
    job = encode_settings(kwargs={"batch_size": 2, "decode_workers": 1, "shard_bytes": 1, **kwargs})
    return update_latents(wanted, split, backend.image_column, loader, directory, meta, job)


def start_child(root: Path, model: Path, logs: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    with open(logs / "child.out", "w") as out, open(logs / "child.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(model), str(BATCH_DELAY_S)],
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=env,
        )


def kill_after_shards(proc: subprocess.Popen, shards_dir: Path, logs: Path, count: int, timeout: float = 120) -> None:
    """SIGKILL the child as soon as `count` finished shard files exist."""
    deadline = time.monotonic() + timeout
    try:
        while len(list_shards(shards_dir)) < count:
            if proc.poll() is not None:
                pytest.fail(
                    f"child exited ({proc.returncode}) before {count} shards:\n"
                    f"{(logs / 'child.out').read_text()}\n{(logs / 'child.err').read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no {count} shards after {timeout}s: {(logs / 'child.err').read_text()[-3000:]}")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert "finished" not in (logs / "child.out").read_text()


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def assert_no_final_file_is_half_written(directory: Path) -> None:
    """Every file at a final name is complete; anything partial may only sit at a hidden temp name."""
    for path in files_under(directory):
        name = path.name
        if name.startswith("."):
            assert name == ".lock" or name.startswith(".lock-shard-") or is_temp_name(name), f"unexpected {path}"
            continue
        assert ".tmp-" not in name, f"temp file at a final name: {path}"
        if name.endswith(".safetensors"):
            with safe_open(str(path), framework="pt") as f:
                names = list(f.keys())
                assert names and {n.rsplit("/", 1)[1] for n in names} == {"mean", "std"}
                assert all(torch.isfinite(f.get_tensor(n)).all() for n in names)
        elif name.endswith(".parquet"):
            rows = pq.read_table(path).num_rows  # readable: complete
            assert rows > 0 or name == "dropped.parquet", path  # journal parts and the manifest are never empty
    manifest = directory / "manifest.parquet"
    if manifest.exists():
        read_manifest(directory)


@pytest.mark.slow  # a dagster subprocess, killed, then a rerun
def test_sigkilled_encode_keeps_its_completed_shards_and_the_resume_matches_a_clean_run(tmp_path, tiny_sdxl):
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(N))
    backend, split, wanted, encoders, meta = setup(tmp_path, tiny_sdxl)  # also writes the content-hash memo
    total = wanted.num_rows
    assert total == N - 1

    clean_dir = tmp_path / "clean"
    clean = encode(backend, split, wanted, encoders.vae, clean_dir, meta, batch_size=4, shard_bytes=64 << 20)
    assert clean.encoded == total and not clean.dropped

    # A real crash: the child is SIGKILLed once it has written KILL_AFTER_SHARDS shards.
    logs = tmp_path / "logs"
    logs.mkdir()
    vae_dir = backend.vae_dir
    kill_after_shards(start_child(tmp_path, tiny_sdxl, logs), vae_dir / "shards", logs, KILL_AFTER_SHARDS)
    assert "encoding" in (logs / "child.out").read_text()

    assert_no_final_file_is_half_written(vae_dir)
    assert not (vae_dir / "manifest.parquet").exists()  # the killed run never committed
    cache = EncodedCache(vae_dir)
    survivors = cache.known_entries()  # journaled entries whose shard is on disk
    kept_shards = set(survivors.column("shard").to_pylist())
    assert survivors.num_rows >= 1  # the first shard was journaled before the second was written
    assert kept_shards <= set(list_shards(vae_dir / "shards"))

    # Resume in this process: only what the killed run did not flush is encoded.
    report = encode(backend, split, wanted, encoders.vae, vae_dir, meta)
    assert not report.dropped
    assert report.reused == survivors.num_rows
    assert report.encoded < total and report.encoded + report.reused == total

    final_shards = set(list_shards(vae_dir / "shards"))
    manifest = read_manifest(vae_dir).table
    assert kept_shards <= final_shards  # completed shards were kept, not rewritten
    assert final_shards == set(manifest.column("shard").to_pylist())  # orphans of the killed run pruned
    assert not list((vae_dir / "journal").glob("*.parquet"))
    assert not [p for p in files_under(vae_dir) if ".tmp-" in p.name]
    assert_no_final_file_is_half_written(vae_dir)

    resumed, reference = open_latents(vae_dir), open_latents(clean_dir)
    assert len(resumed) == total and set(resumed) == set(reference) == set(wanted.column("filename").to_pylist())
    for name in reference:
        assert torch.allclose(resumed[name], reference[name], atol=1e-5), name
        assert torch.allclose(resumed.std(name), reference.std(name), atol=1e-5), name
        assert resumed.entry(name)["key"] == reference.entry(name)["key"]
