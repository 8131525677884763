"""A local stand-in for the Hub's dataset API, enough for `huggingface_hub.HfFileSystem` (HF_ENDPOINT tests).

It answers repo info, tree listings, paths-info and ranged `resolve` downloads for one dataset repo whose
revisions are local folders, and counts the bytes it sends like `range_server`.
"""

import hashlib
import json
import os
import threading
from contextlib import contextmanager
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from hf_assets_tests.range_server import RangeHandler, Traffic


def _entry(root: Path, path: Path) -> dict:
    rel = path.relative_to(root).as_posix()
    if path.is_dir():
        return {"type": "directory", "oid": hashlib.sha1(rel.encode()).hexdigest(), "path": rel}
    data = path.read_bytes()
    return {
        "type": "file",
        "oid": hashlib.sha1(data).hexdigest(),
        "size": len(data),
        "path": rel,
        "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134},
    }


class HubHandler(RangeHandler):
    """/api/datasets/<repo>/revision|tree|paths-info/<rev>/... and /datasets/<repo>/resolve/<rev>/<path>."""

    repo: str
    revisions: dict[str, Path]

    def _not_found(self, code: str) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        body = json.dumps({"error": code}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> tuple[str, Path | None, str] | None:
        """(action, revision folder, path in repo) or None after answering an error."""
        url = urlparse(self.path)
        for prefix, action in ((f"/api/datasets/{self.repo}/", "api"), (f"/datasets/{self.repo}/resolve/", "resolve")):
            if url.path.startswith(prefix):
                rest = url.path[len(prefix) :]
                if action == "api":
                    action, _, rest = rest.partition("/")
                revision, _, inner = rest.partition("/")
                folder = self.revisions.get(unquote(revision))
                if folder is None:
                    self._not_found("RevisionNotFound")
                    return None
                return action, folder, unquote(inner)
        self._not_found("RepoNotFound")
        return None

    def _listing(self, folder: Path, inner: str, recursive: bool) -> list[dict]:
        base = folder / inner if inner else folder
        paths = sorted(base.rglob("*") if recursive else base.iterdir())
        return [_entry(folder, p) for p in paths]

    def do_GET(self):
        route = self._route()
        if route is None:
            return
        action, folder, inner = route
        if action == "revision":
            sha = hashlib.sha1(str(folder).encode()).hexdigest()
            return self._json(
                {
                    "id": self.repo,
                    "sha": sha,
                    "private": False,
                    "siblings": [
                        {"rfilename": e["path"]} for e in self._listing(folder, "", True) if e["type"] == "file"
                    ],
                }
            )
        if action == "tree":
            recursive = parse_qs(urlparse(self.path).query).get("recursive", ["False"])[0].lower() == "true"
            if inner and not (folder / inner).exists():
                return self._not_found("EntryNotFound")
            return self._json(self._listing(folder, inner, recursive))
        if action == "resolve":
            self.path = "/" + (folder / inner).relative_to(self.directory).as_posix()
            return super().do_GET()
        self._not_found("EntryNotFound")

    def do_HEAD(self):
        route = self._route()
        if route is None:
            return
        _, folder, inner = route
        self.path = "/" + (folder / inner).relative_to(self.directory).as_posix()
        return super().do_HEAD()

    def do_POST(self):
        route = self._route()
        if route is None:
            return
        _, folder, _ = route
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        paths = form.get("paths", [])
        return self._json([_entry(folder, folder / p) for p in paths if (folder / p).exists()])


@contextmanager
def serve_hub(root: Path, repo: str, revisions: dict[str, str]):
    """Serve `repo`, each revision being a folder under `root`; yields (endpoint URL, Traffic)."""
    traffic = Traffic()
    folders = {rev: (root / sub).resolve() for rev, sub in revisions.items()}
    handler = type("Hub", (HubHandler,), {"traffic": traffic, "repo": repo, "revisions": folders})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=os.fspath(root.resolve())))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", traffic
    finally:
        server.shutdown()
        server.server_close()
