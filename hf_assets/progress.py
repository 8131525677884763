"""Progress of a long step: count, rate and ETA logged at a steady interval, and a summary for run metadata.

The interval is HF_ASSETS_PROGRESS_SECONDS (default 10). A step that logs through a real log also gets a
heartbeat: when no item finishes within an interval (one slow batch, a model download), the current line is
logged anyway, so a running step never goes quiet for longer than the interval.
"""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hf_assets import env

DEFAULT_EVERY_SECONDS = env.DEFAULT_PROGRESS_SECONDS


def interval_seconds() -> float:
    """The progress interval in seconds: HF_ASSETS_PROGRESS_SECONDS, else 10."""
    return env.progress_seconds()


def format_duration(seconds: float) -> str:
    """A short human duration: "45s", "3m07s", "2h05m"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_rate(per_second: float) -> str:
    """A rate with one decimal, or two significant digits below 1 ("0.031"), so a slow step never reads "0.0"."""
    return f"{per_second:,.1f}" if per_second >= 1 or per_second == 0 else f"{per_second:.2g}"


@dataclass(frozen=True)
class ProgressSummary:
    """The numbers of a finished (or running) step, in one unit."""

    step: str
    unit: str
    done: int
    total: int | None
    seconds: float

    @property
    def rate(self) -> float:
        """Items per second (0 before any time has passed)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def metadata(self) -> dict[str, float | int]:
        """Flat numbers for a run's metadata, named `<step>_<what>`."""
        return {
            f"{self.step}_{self.unit}": self.done,
            f"{self.step}_seconds": round(self.seconds, 2),
            f"{self.step}_{self.unit}_per_s": round(self.rate, 2),
        }


class Progress:
    """Counts items of one step and logs "step: done/total (pct), rate, ETA" every `every_seconds` or `every_items`.

    Thread-safe: worker threads may call `advance`. `clock` is injectable so tests need no real time. With
    `heartbeat`, a thread also logs the line when an interval passes without one (slow items); `finish` stops it.
    """

    def __init__(
        self,
        step: str,
        total: int | None,
        log: Callable[[str], None],
        unit: str = "items",
        every_seconds: float = DEFAULT_EVERY_SECONDS,
        every_items: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_finish: Callable[[ProgressSummary], None] | None = None,
        heartbeat: bool = False,
    ):
        self.step, self.total, self.unit, self._log = step, total, unit, log
        self.every_seconds, self.every_items, self._clock = every_seconds, every_items, clock
        self._on_finish = on_finish
        self.done = 0
        self._lock = threading.Lock()
        self._started = clock()
        self._last_time = self._started
        self._last_done = 0
        self._finished: ProgressSummary | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        if heartbeat and every_seconds > 0:
            self._heartbeat = threading.Thread(target=self._beat, name=f"progress-{step}", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        """Log the current line whenever an interval passes with no line logged, until `finish`."""
        wait = self.every_seconds
        while not self._stop.wait(wait):
            with self._lock:
                if self._finished is not None:
                    return
                now = self._clock()
                wait = self.every_seconds - (now - self._last_time)
                if wait > 0:  # a line was logged within the interval
                    continue
                self._last_time, self._last_done, wait = now, self.done, self.every_seconds
                line = self.line(now)
            self._log(line)

    def advance(self, count: int = 1) -> None:
        """Record `count` more items done; log a line when the interval has passed."""
        with self._lock:
            self.done += count
            now = self._clock()
            due = now - self._last_time >= self.every_seconds or (
                self.every_items is not None and self.done - self._last_done >= self.every_items
            )
            if not due:
                return
            self._last_time, self._last_done = now, self.done
            line = self.line(now)
        self._log(line)

    def line(self, now: float | None = None, final: bool = False) -> str:
        """The current progress as one log line (`final`: no ETA, the step is over)."""
        elapsed = (self._clock() if now is None else now) - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.step}: {self.done:,}"]
        if self.total:
            parts[0] += f"/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        parts.append(f"{format_rate(rate)} {self.unit}/s")
        if self.total and rate > 0 and self.done < self.total and not final:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate)}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        return ", ".join(parts)

    def finish(self) -> ProgressSummary:
        """Log the final line once and give the step's numbers."""
        with self._lock:
            if self._finished is None:
                now = self._clock()
                self._finished = ProgressSummary(self.step, self.unit, self.done, self.total, now - self._started)
                line = self.line(now, final=True) + " (done)"
            else:
                return self._finished
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()
        self._log(line)
        if self._on_finish is not None:
            self._on_finish(self._finished)
        return self._finished

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


class ProgressLog:
    """Where a run's steps report: each `step(...)` logs through `log`; `metadata()` gathers the finished ones.

    `every_seconds` defaults to HF_ASSETS_PROGRESS_SECONDS (else 10). Given a log and the real clock, its steps
    have a heartbeat (see `Progress`).
    """

    def __init__(
        self,
        log: Callable[[str], None] | None = None,
        every_seconds: float | None = None,
        every_items: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.heartbeat = log is not None and clock is time.monotonic
        self.log = log or (lambda _line: None)
        self.every_seconds = interval_seconds() if every_seconds is None else every_seconds
        self.every_items, self.clock = every_items, clock
        self.summaries: list[ProgressSummary] = []

    def step(self, name: str, total: int | None = None, unit: str = "items") -> Progress:
        """A progress for one step (use as a context manager, or call `finish`)."""
        return Progress(
            name,
            total,
            self.log,
            unit=unit,
            every_seconds=self.every_seconds,
            every_items=self.every_items,
            clock=self.clock,
            on_finish=self.summaries.append,
            heartbeat=self.heartbeat,
        )

    @contextlib.contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """Around one blocking call of unknown length (a model load, a listing): "what…" at once, "what: still
        running, elapsed 20s" every interval, "what: done in 1m05s" at the end."""
        self.log(f"{what}…")
        started, stop = self.clock(), threading.Event()

        def beat() -> None:
            while not stop.wait(self.every_seconds):
                self.log(f"{what}: still running, elapsed {format_duration(self.clock() - started)}")

        ticker = threading.Thread(target=beat, name="progress-waiting", daemon=True) if self.heartbeat else None
        if ticker is not None:
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
        self.log(f"{what}: done in {format_duration(self.clock() - started)}")

    def metadata(self) -> dict[str, float | int]:
        """Every finished step's count, seconds and rate, flat, for a materialization."""
        merged: dict[str, float | int] = {}
        for summary in self.summaries:
            merged.update(summary.metadata())
        return merged


def quiet() -> ProgressLog:
    """A progress log that logs nothing: the default where a caller passes none."""
    return ProgressLog()
