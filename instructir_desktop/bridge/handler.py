"""The bridge's HTTP side: the server's connection slots, the request handler, routing and
answering.

The handler checks the Host header, the token and the Content-Length before reading a body,
answers JSON for every error and never lets an exception escape to ``socketserver`` (the
service keeps running). Reading a request under its deadline and limits is ``reading.py``;
parsing its body is ``parsing.py``; the jobs are ``server.py``.

The bridge proves it holds the token: a request that carries ``X-InstructIR-Nonce`` gets an
``X-InstructIR-Proof`` header, an HMAC-SHA256 keyed with the token over the nonce, the port, the
status and the body's SHA-256 (``response_proof``). The GIMP plug-in sends a nonce without
the token first and sends the token only to a server whose proof checks out, so a program
squatting on the port never sees it, and it trusts no answer without a valid proof.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import http.server
import json
import logging
import re
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from instructir_desktop.bridge.errors import HTTPError
from instructir_desktop.bridge.info import API_VERSION
from instructir_desktop.bridge.parsing import (
    MAX_JSON_BYTES,
    finish_submit,
    parse_intent,
    parse_submit_fields,
)
from instructir_desktop.bridge.reading import BoundedRequestHandler
from instructir_desktop.core.errors import InstructIRError

if TYPE_CHECKING:
    from instructir_desktop.bridge.server import BridgeServer

__all__ = [
    "API_VERSION",
    "TOKEN_HEADER",
    "NONCE_HEADER",
    "PROOF_HEADER",
    "response_proof",
    "BridgeHTTPServer",
    "BridgeRequestHandler",
    "suggestions",
]

log = logging.getLogger("instructir.bridge")

TOKEN_HEADER = "X-InstructIR-Token"
NONCE_HEADER = "X-InstructIR-Nonce"
PROOF_HEADER = "X-InstructIR-Proof"
# Handler threads at once; further connections get an immediate 503 instead of a thread.
MAX_CONNECTIONS = 64
# Connections the kernel holds before accept(): 50 parallel submissions must all be answered.
LISTEN_BACKLOG = 128
# Bodies above this size give their memory back to the OS once parsed (glibc keeps it).
TRIM_AFTER_BYTES = 16 << 20
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def response_proof(token: str, nonce: str, port: int, status: int, body: bytes) -> str:
    """HMAC-SHA256 (hex) of one answer, keyed with the token: proves the server holds it.

    The port is inside so a relay on another port cannot pass off the real bridge's proof."""
    digest = hashlib.sha256(body).hexdigest()
    message = f"instructir-bridge-proof-v1\n{nonce}\n{port}\n{status}\n{digest}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps large freed bodies otherwise)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class BridgeHTTPServer(http.server.ThreadingHTTPServer):
    """One thread per connection, at most ``MAX_CONNECTIONS`` at once, a deep backlog."""

    daemon_threads = True
    # On Windows SO_REUSEADDR would let a second server steal a port that is in use.
    allow_reuse_address = not sys.platform.startswith("win")
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        handler: type,
        bridge: BridgeServer,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.bridge = bridge
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        """Busy: answer 503 from the accepting thread without reading the request."""
        data = json.dumps({"error": "The bridge is busy; try again in a moment."}).encode()
        head = (
            "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nRetry-After: 2\r\nConnection: close\r\n\r\n"
        )
        try:
            request.settimeout(1.0)
            request.sendall(head.encode() + data)
        except OSError:
            pass
        self.shutdown_request(request)


class BridgeRequestHandler(BoundedRequestHandler):
    server: BridgeHTTPServer
    server_version = f"InstructIRBridge/{API_VERSION}"
    # Answer even a garbage request line with a status line and headers (not HTTP/0.9 style).
    default_request_version = "HTTP/1.0"

    def head_timeout(self) -> float:
        """The bridge's ``head_timeout_s``."""
        return self.server.bridge.head_timeout_s

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, bad headers) also answer JSON."""
        self.close_connection = True
        phrase = self.responses.get(code, ("Bad request.",))[0]
        try:
            self._send_json(code, {"error": message or phrase})
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        bridge = self.server.bridge
        try:
            self._check_host()
            parts = [p for p in urlsplit(self.path).path.split("/") if p]
            route = _route("GET" if method == "HEAD" else method, parts)
            authorized = bridge.check_token(self._token())
            if route != "health" and not authorized:
                self._reject(401, "Missing or wrong bridge token (see bridge.json).")
                return
            body = None
            if method == "POST":
                big = route in ("submit", "assess")
                body = self._read_body(bridge.max_body_bytes if big else MAX_JSON_BYTES)
                if body is None:
                    return
            if route == "health":
                self._send_json(200, bridge.health(authorized))
            elif route == "submit":
                assert body is not None
                size = len(body)
                request = parse_submit_fields(self.headers.get("Content-Type"), body)
                del body  # the image's bytes are copied out: the body's memory goes now
                if size > TRIM_AFTER_BYTES:
                    _trim_heap()
                photo, steps, pack, lease, as_written = finish_submit(*request)
                del request
                answer = bridge.submit(photo, steps, pack, lease, as_written=as_written)
                del photo
                self._send_json(202, answer)
                if size > TRIM_AFTER_BYTES:
                    _trim_heap()
            elif route == "list":
                self._send_json(200, bridge.list_jobs())
            elif route == "status":
                self._send_json(200, bridge.job_status(parts[1]))
            elif route == "result":
                query = parse_qs(urlsplit(self.path).query)
                plain = query.get("filter", [""])[0] == "none"
                self._send_png(bridge.job_result(parts[1], plain=plain))
            elif route == "cancel":
                self._send_json(200, bridge.cancel_job(parts[1]))
            elif route == "delete":
                self._send_json(200, bridge.delete_job(parts[1]))
            elif route == "assess":
                assert body is not None
                from instructir_desktop.core.assess import assess_photo_bytes

                # Numpy only and a fraction of a second: it runs here, not in the model queue.
                _, image, name = parse_submit_fields(self.headers.get("Content-Type"), body)
                del body
                self._send_json(200, assess_photo_bytes(image, name))
            elif route == "suggestions":
                self._send_json(200, suggestions())
            elif route == "intent":
                assert body is not None
                texts, pack = parse_intent(body)
                self._send_json(200, {**bridge.intent(texts, pack), **_gate()})
        except HTTPError as exc:
            self.close_connection = self.close_connection or exc.status == 403
            self._send_json(exc.status, {"error": str(exc), **exc.extra})
        except InstructIRError as exc:
            self._send_json(400, {"error": str(exc), "type": type(exc).__name__})
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a bad request must never stop the service
            log.exception("bridge request failed: %s %s", method, self.path)
            try:
                self._send_json(500, {"error": f"Internal error: {exc}"})
            except OSError:
                self.close_connection = True

    def _check_host(self) -> None:
        """Refuse a request addressed to another name (DNS rebinding from a web page)."""
        host = self.headers.get("Host")
        if host is None:
            return  # an HTTP/1.0 client without Host is not a browser
        port = self.server.server_address[1]
        if host.strip().lower() not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            raise HTTPError(
                403, f"The bridge answers only requests to 127.0.0.1:{port} or localhost:{port}."
            )

    def _token(self) -> str | None:
        token = self.headers.get(TOKEN_HEADER)
        auth = self.headers.get("Authorization", "")
        if not token and auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        return token

    def _send_json(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self._send(status, "application/json", data)

    def _send_png(self, data: bytes) -> None:
        self._send(200, "image/png", data)

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        headers = getattr(self, "headers", None)  # absent when the request line was garbage
        nonce = headers.get(NONCE_HEADER) if headers is not None else None
        if nonce and _NONCE.match(nonce):
            port = self.server.server_address[1]
            proof = response_proof(self.server.bridge.token, nonce, port, status, data)
            self.send_header(PROOF_HEADER, proof)
        if self.close_connection:
            self.send_header("Connection", "close")
        if status == 503:
            self.send_header("Retry-After", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


_ROUTES = {
    ("GET", 1, "health"): "health",
    ("GET", 1, "jobs"): "list",
    ("POST", 1, "jobs"): "submit",
    ("GET", 2, "jobs"): "status",
    ("DELETE", 2, "jobs"): "delete",
    ("GET", 1, "intent"): "suggestions",
    ("POST", 1, "intent"): "intent",
    ("POST", 1, "assess"): "assess",
}


def _route(method: str, parts: list[str]) -> str:
    if len(parts) == 3 and parts[0] == "jobs":
        route = {("GET", "result"): "result", ("POST", "cancel"): "cancel"}.get((method, parts[2]))
    else:
        route = _ROUTES.get((method, len(parts), parts[0] if parts else ""))
    if route is None:
        known = {p for _, _, p in _ROUTES} | {"jobs"}
        if parts and parts[0] in known and len(parts) <= 3:
            raise HTTPError(405, f"{method} is not allowed on {'/' + '/'.join(parts)}.")
        raise HTTPError(404, "Unknown endpoint; see GET /health.")
    return route


def suggestions() -> dict:
    """The seven tasks and a suggested prompt for each (GET /intent)."""
    from instructir_desktop.core.packs import TASK_PROMPTS, TASKS  # imports torch: lazily

    return {"tasks": list(TASKS), "suggestions": dict(TASK_PROMPTS)}


def _gate() -> dict:
    """The confidence below which a job is refused unless sent ``as_written``."""
    from instructir_desktop.core.packs import DEFAULT_MIN_CONFIDENCE  # imports torch: lazily

    return {"min_confidence": DEFAULT_MIN_CONFIDENCE}
