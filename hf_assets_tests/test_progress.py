"""Progress of a long step: steady log lines with count, rate and ETA, and the same numbers as metadata."""

import threading
import time

import pytest

from hf_assets.progress import Progress, ProgressLog, format_duration


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_logs_count_rate_and_eta_once_per_interval():
    clock, lines = FakeClock(), []
    progress = Progress("encode", 1000, lines.append, unit="images", every_seconds=10, clock=clock)
    for _ in range(9):
        clock.now += 1
        progress.advance(10)
    assert lines == []  # 9 s: not yet
    clock.now += 1
    progress.advance(10)  # 100 images in 10 s
    assert lines == ["encode: 100/1,000 images (10%), 10.0 images/s, ETA 1m30s, elapsed 10s"]
    clock.now += 5
    progress.advance(50)
    assert len(lines) == 1  # 5 s after the last line


def test_logs_every_n_items_when_asked():
    clock, lines = FakeClock(), []
    progress = Progress("hash", None, lines.append, every_seconds=3600, every_items=100, clock=clock)
    for _ in range(25):
        clock.now += 0.5
        progress.advance(10)
    assert len(lines) == 2
    assert lines[0].startswith("hash: 100 items, 20.0 items/s") and "ETA" not in lines[0]


def test_finish_logs_once_and_gives_metadata_in_one_unit():
    clock, lines = FakeClock(), []
    log = ProgressLog(lines.append, clock=clock)
    with log.step("encode", 40, unit="images") as step:
        clock.now += 8
        step.advance(40)
    step.finish()
    assert lines == ["encode: 40/40 images (100%), 5.0 images/s, elapsed 8s (done)"]
    assert log.metadata() == {"encode_images": 40, "encode_seconds": 8.0, "encode_images_per_s": 5.0}


def test_advance_is_safe_from_worker_threads():
    log = ProgressLog()
    step = log.step("scan", 8000)
    workers = [threading.Thread(target=lambda: [step.advance() for _ in range(1000)]) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert step.finish().done == 8000


def test_durations_read_naturally():
    assert [format_duration(s) for s in (4.4, 187, 7500)] == ["4s", "3m07s", "2h05m"]


def test_a_slow_item_still_gets_a_line_every_interval_and_finish_stops_the_heartbeat():
    lines: list[str] = []
    log = ProgressLog(lines.append, every_seconds=0.05)
    with log.step("encode", 10, unit="images") as step:
        step.advance(1)
        time.sleep(0.3)  # one slow batch: nothing advances for six intervals
    beats = [line for line in lines if not line.endswith("(done)")]
    assert len(beats) >= 2 and all(line.startswith("encode: 1/10 images (10%), ") for line in beats)
    assert lines[-1].startswith("encode: 1/10 images") and lines[-1].endswith("(done)")
    count = len(lines)
    time.sleep(0.15)
    assert len(lines) == count  # no line after finish
    assert not any(t.name == "progress-encode" for t in threading.enumerate())


def test_a_quiet_or_fake_clock_progress_starts_no_thread():
    before = threading.active_count()
    ProgressLog(every_seconds=0.01).step("scan", 5)
    ProgressLog([].append, every_seconds=0.01, clock=FakeClock()).step("scan", 5)
    assert threading.active_count() == before


def test_waiting_says_what_it_waits_for_every_interval_and_when_it_is_done():
    lines: list[str] = []
    with ProgressLog(lines.append, every_seconds=0.05).waiting("loading the VAE from /models/sdxl"):
        time.sleep(0.2)
    assert lines[0] == "loading the VAE from /models/sdxl…"
    assert lines[1].startswith("loading the VAE from /models/sdxl: still running, elapsed ")
    assert lines[-1] == "loading the VAE from /models/sdxl: done in 0s"


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HF_ASSETS_PROGRESS_SECONDS", "2.5")
    assert ProgressLog().every_seconds == 2.5
    monkeypatch.setenv("HF_ASSETS_PROGRESS_SECONDS", "0")
    with pytest.raises(ValueError, match="HF_ASSETS_PROGRESS_SECONDS='0': give a number of seconds above 0"):
        ProgressLog()
    monkeypatch.delenv("HF_ASSETS_PROGRESS_SECONDS")
    assert ProgressLog().every_seconds == 10.0


def test_a_slow_step_shows_its_rate_and_its_last_line_has_no_eta():
    clock, lines = FakeClock(), []
    progress = Progress("encode", 9, lines.append, unit="clips", every_seconds=10, clock=clock)
    clock.now += 245
    progress.advance(7)  # 7 clips in 4 minutes: 0.029 clips/s, not "0.0"
    assert lines == ["encode: 7/9 clips (78%), 0.029 clips/s, ETA 1m10s, elapsed 4m05s"]
    progress.advance(1)  # one clip could not be decoded: the step ends short of its total
    progress.finish()
    assert lines[-1] == "encode: 8/9 clips (89%), 0.033 clips/s, elapsed 4m05s (done)"
