"""A local HTTP file server that answers Range requests and counts the body bytes it sends (tests of remote reads)."""

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class Traffic:
    """Body bytes sent, per path, and requests seen (`calls`: method and path of each; `ranges`: path, first byte and
    length of each file body sent); `fail_next` makes that many GETs answer 503."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bytes: dict[str, int] = {}
        self.requests = 0
        self.calls: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, int, int]] = []
        self.fail_next = 0
        self.failed = 0

    def listings(self) -> int:
        """GETs of a folder (its index page: what a listing reads)."""
        with self.lock:
            return sum(1 for method, path in self.calls if method == "GET" and path.endswith("/"))

    def add(self, path: str, n: int, start: int = 0) -> None:
        with self.lock:
            self.bytes[path] = self.bytes.get(path, 0) + n
            self.ranges.append((path, start, n))

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.bytes.values())

    def reset(self) -> None:
        with self.lock:
            self.bytes.clear()
            self.requests = 0
            self.calls.clear()
            self.ranges.clear()


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range support (206), Content-Length, ETag and Last-Modified."""

    traffic: Traffic

    def log_message(self, *args) -> None:  # quiet
        pass

    def _file(self) -> Path | None:
        path = Path(self.translate_path(self.path))
        return path if path.is_file() else None

    def _headers(self, path: Path, status: int, start: int, length: int, size: int) -> None:
        stat = path.stat()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        etag = hashlib.md5(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
        self.end_headers()

    def do_HEAD(self):
        with self.traffic.lock:
            self.traffic.calls.append(("HEAD", self.path))
        path = self._file()
        if path is None:
            return super().do_HEAD()
        size = path.stat().st_size
        self._headers(path, 200, 0, size, size)

    def do_GET(self):
        with self.traffic.lock:
            self.traffic.requests += 1
            self.traffic.calls.append(("GET", self.path))
            failing = self.traffic.fail_next > 0
            if failing:
                self.traffic.fail_next -= 1
                self.traffic.failed += 1
        path = self._file()
        if path is None:
            return super().do_GET()  # directory listings (fsspec globs read them)
        if failing:
            self.send_error(503, "temporarily unavailable")
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        match = RANGE.match(self.headers.get("Range", ""))
        if match:
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start, end = max(size - int(last), 0), size - 1
        length = max(end - start + 1, 0)
        self._headers(path, 206 if match else 200, start, length, size)
        with open(path, "rb") as fp:
            fp.seek(start)
            data = fp.read(length)
        # counted before it is sent: a client that has its bytes finds them counted (counted after, a busy
        # machine could let a test reset the count between the client's read and this thread's count)
        self.traffic.add(self.path, len(data), start)
        self.wfile.write(data)


@contextmanager
def serve(directory: Path):
    """Serve `directory` on 127.0.0.1 (a free port); yields (base URL, Traffic)."""
    traffic = Traffic()
    handler = type("Handler", (RangeHandler,), {"traffic": traffic})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=os.fspath(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", traffic
    finally:
        server.shutdown()
        server.server_close()
