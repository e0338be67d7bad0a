"""A tiny local stand-in for the Hugging Face Hub, for tests and smoke tests.

It serves files under the Hub's URL layout ``/{repo_id}/resolve/{revision}/{filename}`` from
127.0.0.1, supports HEAD, GET and ``Range: bytes=N-`` and can misbehave on purpose (drop the
connection part-way, serve damaged bytes, answer with an HTTP error, redirect like the Hub's
CDN). Point ``HF_ENDPOINT`` at :attr:`HubServer.endpoint` to download from it. Stdlib only, so
installer smoke tests and the GIMP integration test can reuse it.

Files are keyed ``"{repo_id}/{filename}"``; the revision in the URL is accepted but ignored,
and every resolve answer names :attr:`HubServer.commit` in ``X-Repo-Commit`` as the Hub does.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_COMMIT", "HubServer", "RequestRecord"]

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<filename>.+)$")
_CDN = re.compile(r"^/cdn/(?P<key>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-$")
DEFAULT_COMMIT = hashlib.sha1(b"hubserver").hexdigest()


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received: method, path, file key (or None), Range start and
    headers (names in lower case)."""

    method: str
    path: str
    key: str | None
    range_start: int | None
    headers: dict[str, str]


class HubServer:
    """Threaded HTTP server with the Hub's file layout; use as a context manager.

    ``files`` maps ``"{repo_id}/{filename}"`` to bytes; ``folder`` serves
    ``folder/{repo_id}/{filename}``. Test switches, all keyed by the same file key:
    ``fail_after_bytes`` drops the connection after N body bytes (once per key),
    ``corrupt`` serves the file with one byte changed (same length), ``status`` answers with
    that HTTP status instead of the file, and ``redirect=True`` answers every resolve URL with
    a 302 to ``/cdn/...`` like the real Hub does for large files. ``ignore_range=True``
    answers Range requests with the whole file (200), as some proxies do.
    """

    def __init__(
        self,
        files: dict[str, bytes] | None = None,
        folder: Path | None = None,
        *,
        fail_after_bytes: dict[str, int] | None = None,
        corrupt: set[str] | None = None,
        status: dict[str, int] | None = None,
        redirect: bool = False,
        ignore_range: bool = False,
        commit: str = DEFAULT_COMMIT,
    ) -> None:
        self.files: dict[str, bytes] = dict(files or {})
        self.folder = Path(folder) if folder is not None else None
        self.fail_after_bytes: dict[str, int] = dict(fail_after_bytes or {})
        self.corrupt: set[str] = set(corrupt or ())
        self.status: dict[str, int] = dict(status or {})
        self.redirect = redirect
        self.ignore_range = ignore_range
        self.commit = commit
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` while running."""
        if self._httpd is None:
            raise RuntimeError("The server is not running.")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{revision}/{filename}"

    def start(self) -> Self:
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="hubserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def records_for(self, key: str, method: str = "GET") -> list[RequestRecord]:
        """The requests received for one file key (resolve and CDN URLs alike)."""
        with self._lock:
            return [r for r in self.requests if r.key == key and r.method == method]

    def content(self, key: str) -> bytes | None:
        """The bytes served for ``key`` (after the ``corrupt`` switch), or None if unknown."""
        data = self.files.get(key)
        if data is None and self.folder is not None:
            path = (self.folder / key).resolve()
            root = self.folder.resolve()
            if root in path.parents and path.is_file():
                data = path.read_bytes()
        if data is None:
            return None
        if key in self.corrupt and data:
            flipped = bytes([data[len(data) // 2] ^ 0xFF])
            data = data[: len(data) // 2] + flipped + data[len(data) // 2 + 1 :]
        return data

    @staticmethod
    def sha256(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _take_failure(self, key: str) -> int | None:
        with self._lock:
            return self.fail_after_bytes.pop(key, None)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that cancel or time out hang up mid-transfer; that is expected here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, fmt: str, *args: object) -> None:
        """Silence the default stderr logging; the hub keeps its own request log."""

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        key, via_cdn = self._key(path)
        range_header = self.headers.get("Range")
        match = _RANGE.match(range_header.strip()) if range_header else None
        start = int(match.group(1)) if match else None
        self.hub._record(
            RequestRecord(
                self.command, path, key, start, {k.lower(): v for k, v in self.headers.items()}
            )
        )
        if key is None:
            self._plain(404, "Repository or file not found")
            return
        if key in self.hub.status:
            self._plain(self.hub.status[key], "Error requested by the test")
            return
        data = self.hub.content(key)
        if data is None:
            self._plain(404, "Entry not found")
            return
        if self.hub.redirect and not via_cdn:
            self.send_response(302)
            self.send_header("X-Repo-Commit", self.hub.commit)
            self.send_header("Location", f"/cdn/{key}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = len(data)
        if self.hub.ignore_range:
            start = None
        if start is not None and start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start is not None:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        if not via_cdn:
            self.send_header("X-Repo-Commit", self.hub.commit)
        self.send_header("ETag", f'"{HubServer.sha256(self.hub.content(key) or b"")}"')
        self.end_headers()
        if not body:
            return
        fail_after = self.hub._take_failure(key)
        if fail_after is not None and fail_after < len(data):
            self.wfile.write(data[:fail_after])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)

    def _key(self, path: str) -> tuple[str | None, bool]:
        cdn = _CDN.match(path)
        if cdn:
            return cdn.group("key"), True
        resolve = _RESOLVE.match(path)
        if resolve:
            return f"{resolve.group('repo')}/{resolve.group('filename')}", False
        return None, False

    def _plain(self, code: int, message: str) -> None:
        payload = message.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
