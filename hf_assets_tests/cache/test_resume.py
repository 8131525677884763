"""Real crashes: a child process encodes, dies (os._exit or SIGKILL), and the next run resumes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hf_assets.cache.encoded import EncodedCache
from hf_assets.cache.reader import LazyTensorMapping
from hf_assets.cache.shards import list_shards
from hf_assets_tests.cache.helpers import SHARD_BYTES, assert_same, encode_all, sample_tensors, wanted_table

ROOT = Path(__file__).resolve().parents[2]
N = 30  # 10 shards of 3 entries

CHILD = f"""
import os, sys, time
from hf_assets.cache.encoded import EncodedCache
from hf_assets_tests.cache.helpers import SHARD_BYTES, sample_tensors, wanted_table

directory, mode, stop_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = EncodedCache(directory, max_bytes=SHARD_BYTES)
to_encode, _ = cache.triage(wanted_table({N}))
with cache.writer() as w:
    for row in to_encode.to_pylist():
        w.add(row["key"], sample_tensors(row["filename"]))
        print("flushed", len(w.flushed), flush=True)
        if mode == "exit" and len(w.flushed) == stop_after:
            w.add("buffered-then-lost", sample_tensors("0.jpg"))
            os._exit(1)  # no flush, no cleanup: like an OOM kill
        if mode == "wait":
            time.sleep(0.05)
print("finished", flush=True)
"""


def child(directory: Path, mode: str, stop_after: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), mode, str(stop_after)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def resume_and_check(directory: Path, flushed_by_child: int) -> None:
    cache = EncodedCache(directory, max_bytes=SHARD_BYTES)
    before = set(list_shards(cache.shards_dir))
    journaled = cache.journal_entries()
    assert journaled.num_rows >= 3 * flushed_by_child
    wanted = wanted_table(N)
    to_encode, reused = cache.triage(wanted)
    assert reused.num_rows == journaled.num_rows and to_encode.num_rows == N - journaled.num_rows
    assert not set(to_encode.column("key").to_pylist()) & set(journaled.column("key").to_pylist())
    encode_all(cache, to_encode)
    result = cache.commit(wanted, {"scaling_factor": 0.18215})
    kept = set(list_shards(cache.shards_dir))
    assert set(journaled.column("shard").to_pylist()) <= kept  # completed shards survive the resume
    assert set(result.deleted_shards) == before - set(journaled.column("shard").to_pylist())
    leftovers = [p.name for d in (cache.directory, cache.shards_dir, cache.journal_dir) for p in d.iterdir()]
    assert not [n for n in leftovers if ".tmp-" in n]
    m = LazyTensorMapping(directory)
    assert len(m) == N
    for i in range(N):
        assert_same(m[f"{i}.jpg"], sample_tensors(f"{i}.jpg"))


def test_os_exit_mid_run_loses_only_the_buffer(tmp_path):
    proc = child(tmp_path, "exit", stop_after=4)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "finished" not in out and "flushed 4" in out
    cache = EncodedCache(tmp_path)
    assert len(list_shards(cache.shards_dir)) == 4
    assert "buffered-then-lost" not in cache.journal_entries().column("key").to_pylist()
    resume_and_check(tmp_path, flushed_by_child=4)


def test_sigkill_mid_loop_then_resume(tmp_path):
    proc = child(tmp_path, "wait", stop_after=0)
    try:
        for line in proc.stdout:
            if line.strip() == "flushed 3":
                proc.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"child ended early: {proc.stderr.read()}")
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    resume_and_check(tmp_path, flushed_by_child=3)


def test_stale_temp_from_a_killed_flush_is_cleaned(tmp_path):
    cache = EncodedCache(tmp_path, max_bytes=SHARD_BYTES)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    cache.shards_dir.mkdir(parents=True)
    temp = cache.shards_dir / f".shard-dead.safetensors.tmp-{dead_pid}-deadbeef"
    temp.write_bytes(b"half a shard")
    wanted = wanted_table(2)
    encode_all(cache, cache.triage(wanted)[0])
    assert not temp.exists()
    cache.commit(wanted)
    assert len(list_shards(cache.shards_dir)) == 1
