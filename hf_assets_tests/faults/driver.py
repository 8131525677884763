"""Run the real `dagster` CLI in this process and SIGKILL it at a chosen point of the encoding.

    python -m hf_assets_tests.faults.driver KILL_POINT COUNT -- dagster-args...

KILL_POINT is `none`, `pause` (hold the cache lock after the COUNT-th flush until the file HF_ASSETS_TEST_RELEASE
exists, at most HF_ASSETS_TEST_PAUSE seconds), `decode` (the COUNT-th image
decode), `shard` (right after the COUNT-th shard is flushed and journaled) or `commit` (right after the manifest is
written, before the journal is cleared and old shards pruned). The kill is a real SIGKILL of this process: no
handler, no cleanup, no flush.
"""

import os
import signal
import sys
import threading
import time

KILLED_AT = "HF_ASSETS_TEST_KILLED_AT"  # file the driver touches just before killing itself
RELEASE = "HF_ASSETS_TEST_RELEASE"  # file whose creation ends a `pause`


def die(point: str) -> None:
    marker = os.environ.get(KILLED_AT)
    if marker:
        with open(marker, "w") as f:
            f.write(point)
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, count: int) -> None:
    """Patch the function where `point` lies so that its `count`-th call kills the process."""
    calls = {"n": 0}
    lock = threading.Lock()

    def counted() -> bool:
        with lock:
            calls["n"] += 1
            return calls["n"] == count

    if point == "decode":
        import hf_assets.encode.image_media as target

        real = target.load_pixels

        def load_pixels(*args, **kwargs):
            if counted():
                die(point)
            return real(*args, **kwargs)

        target.load_pixels = load_pixels
    elif point == "shard":
        from hf_assets.cache.shards import ShardWriter

        real_flush = ShardWriter.flush

        def flush(self):
            shard = real_flush(self)
            if shard is not None and counted():
                die(point)
            return shard

        ShardWriter.flush = flush
    elif point == "pause":  # hold the cache's writer lock a while after the count-th flush
        from hf_assets.cache.shards import ShardWriter

        real_pause_flush = ShardWriter.flush

        def paused_flush(self):
            shard = real_pause_flush(self)
            if shard is not None and counted():
                with open(os.environ[KILLED_AT], "w") as f:
                    f.write(point)
                release = os.environ.get(RELEASE)
                deadline = time.monotonic() + float(os.environ.get("HF_ASSETS_TEST_PAUSE", "20"))
                while time.monotonic() < deadline and not (release and os.path.exists(release)):
                    time.sleep(0.1)
            return shard

        ShardWriter.flush = paused_flush
    elif point == "commit":
        import hf_assets.cache.encoded as target

        real_write = target.write_manifest

        def write_manifest(*args, **kwargs):
            path = real_write(*args, **kwargs)
            if "vae" in str(args[0]) and counted():
                die(point)
            return path

        target.write_manifest = write_manifest
    elif point != "none":
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    point, count, sep, *cli = sys.argv[1:]
    assert sep == "--", "usage: driver KILL_POINT COUNT -- dagster-args..."
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stuck test run can be asked where it is
    arm(point, int(count))
    from dagster._cli import main

    sys.argv = ["dagster", *cli]
    sys.exit(main())
