"""HTTP side of the bridge: the request handler, routing and request parsing.

Kept apart from ``server.py`` (jobs, worker, bridge file) so each reads in one sitting. The
handler gives a request's line and headers one overall deadline (408 after it), checks the Host
header, the token and the Content-Length before reading a body, answers JSON for every error
and never lets an exception escape to ``socketserver`` (the service keeps running).

The bridge proves it holds the token: a request that carries ``X-InstructIR-Nonce`` gets an
``X-InstructIR-Proof`` header, an HMAC-SHA256 keyed with the token over the nonce, the port, the
status and the body's SHA-256 (``response_proof``). The GIMP plug-in sends a nonce without
the token first and sends the token only to a server whose proof checks out, so a program
squatting on the port never sees it, and it trusts no answer without a valid proof.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import email.message
import email.parser
import email.policy
import hashlib
import hmac
import http.server
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from instructir_desktop.bridge.info import API_VERSION
from instructir_desktop.core.errors import ImageTooLargeError, InstructIRError
from instructir_desktop.core.images import Photo, load_image_bytes
from instructir_desktop.core.phrasing import clean_instruction

if TYPE_CHECKING:
    from instructir_desktop.bridge.server import BridgeServer

__all__ = [
    "API_VERSION",
    "TOKEN_HEADER",
    "NONCE_HEADER",
    "PROOF_HEADER",
    "HTTPError",
    "response_proof",
    "BridgeHTTPServer",
    "BridgeRequestHandler",
    "HEAD_TIMEOUT_S",
    "suggestions",
]

log = logging.getLogger("instructir.bridge")

TOKEN_HEADER = "X-InstructIR-Token"
NONCE_HEADER = "X-InstructIR-Nonce"
PROOF_HEADER = "X-InstructIR-Proof"
MAX_JSON_BYTES = 1 << 20
MAX_STEPS = 16
# Handler threads at once; further connections get an immediate 503 instead of a thread.
MAX_CONNECTIONS = 64
# Seconds a client has for a request's line and headers, in all: one that drips them a byte
# at a time stays under the per-read timeout, but not under this, so it cannot hold a slot.
HEAD_TIMEOUT_S = 10.0
# Connections the kernel holds before accept(): 50 parallel submissions must all be answered.
LISTEN_BACKLOG = 128
# Bodies above this size give their memory back to the OS once parsed (glibc keeps it).
TRIM_AFTER_BYTES = 16 << 20
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_TRUE = ("1", "true", "yes", "on")


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


class HTTPError(Exception):
    """An answer other than 200, raised inside a handler."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


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


class _HeadReader(socket.SocketIO):
    """The reading side of a connection: while a request's head is being read, no read waits
    past the head's deadline, and the bytes that arrive are counted."""

    def __init__(self, sock: socket.socket, handler: BridgeRequestHandler) -> None:
        super().__init__(sock, "rb")
        self._handler = handler

    def readinto(self, buffer: Any) -> int | None:
        handler = self._handler
        deadline = handler.head_deadline
        if deadline is None:
            return super().readinto(buffer)
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request's head took too long")
            self._sock.settimeout(min(handler.timeout or left, left))
            n = super().readinto(buffer)
        except TimeoutError:
            handler.head_timed_out = True
            raise
        handler.head_bytes += n or 0
        return n


class BridgeRequestHandler(http.server.BaseHTTPRequestHandler):
    server: BridgeHTTPServer
    server_version = f"InstructIRBridge/{API_VERSION}"
    # Answer even a garbage request line with a status line and headers (not HTTP/0.9 style).
    default_request_version = "HTTP/1.0"
    # Seconds a silent client may hold a connection (a slow upload keeps sending, so it lives).
    timeout = 20
    # While a request's line and headers are read: when they must have arrived (monotonic).
    head_deadline: float | None = None
    head_bytes = 0
    head_timed_out = False

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain reader gives way to one that keeps the head's deadline
        self.rfile = io.BufferedReader(_HeadReader(self.connection, self))

    def handle_one_request(self) -> None:
        """One request, whose line and headers must all arrive within the bridge's
        ``head_timeout_s``: a client that is still sending them then gets 408 and the
        connection closes; an idle kept-alive connection just closes."""
        self.head_deadline = time.monotonic() + self.server.bridge.head_timeout_s
        self.head_bytes, self.head_timed_out = 0, False
        self.command, self.request_version = None, self.default_request_version
        self.requestline = ""
        # Not the previous request's headers, on a kept-alive connection.
        self.headers = None  # type: ignore[assignment]
        try:
            super().handle_one_request()
        finally:
            self._end_head()
        if self.head_timed_out and self.head_bytes:
            limit = self.server.bridge.head_timeout_s
            self._answer_cut_off(
                408,
                f"The request's headers did not all arrive within {limit:g} s, so nothing was "
                "done. Send the request again.",
            )

    def parse_request(self) -> bool:
        try:
            return super().parse_request()
        finally:
            self._end_head()

    def _end_head(self) -> None:
        """The head is read (or given up on): reads wait ``timeout`` each again."""
        if self.head_deadline is None:
            return
        self.head_deadline = None
        try:
            self.connection.settimeout(self.timeout)
        except OSError:
            pass

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
                request = _parse_submit_fields(self.headers.get("Content-Type"), body)
                del body  # the image's bytes are copied out: the body's memory goes now
                if size > TRIM_AFTER_BYTES:
                    _trim_heap()
                photo, steps, pack, lease, as_written = _finish_submit(*request)
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
                _, image, name = _parse_submit_fields(self.headers.get("Content-Type"), body)
                del body
                self._send_json(200, assess_photo_bytes(image, name))
            elif route == "suggestions":
                self._send_json(200, suggestions())
            elif route == "intent":
                assert body is not None
                texts, pack = _parse_intent(body)
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

    def _read_body(self, limit: int) -> bytearray | None:
        if self.headers.get("Transfer-Encoding"):
            self._reject(411, "Send the body with a Content-Length, not chunked.")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._reject(400, "The Content-Length header is not a valid number.")
            return None
        if length > limit:
            mib = limit / (1 << 20)
            self._reject(413, f"The request is too large (limit {mib:.0f} MiB).", limit=limit)
            return None
        body = bytearray(length)  # one buffer the size of the body, filled in place
        view, got = memoryview(body), 0
        try:
            while got < length:
                try:
                    n = self.rfile.readinto(view[got : got + (1 << 20)])
                except TimeoutError:
                    n = None
                if not n:
                    # The client stopped sending (gone, half-closed or silent): it may still
                    # read why nothing was done.
                    why = "was cut off" if n == 0 else f"stalled for {self.timeout} s"
                    self._answer_cut_off(
                        408 if n is None else 400,
                        f"The request body {why}: {got:,} of {length:,} bytes arrived, so "
                        "nothing was done. Send the request again.",
                    )
                    return None
                got += n
        finally:
            view.release()
        return body

    def _answer_cut_off(self, status: int, message: str) -> None:
        self.close_connection = True
        try:
            self._send_json(status, {"error": message})
        except OSError:
            pass

    def _reject(self, status: int, message: str, **extra: Any) -> None:
        """Answer without reading the body, then close gracefully so the client sees it."""
        self.close_connection = True
        self._send_json(status, {"error": message, **extra})
        if not (
            self.headers.get("Content-Length", "0") not in ("", "0")
            or self.headers.get("Transfer-Encoding")
        ):
            return
        try:
            self.wfile.flush()
            self.connection.shutdown(1)  # SHUT_WR: no RST while the client is still sending
            self.connection.settimeout(0.5)
            for _ in range(64):
                if not self.connection.recv(1 << 16):
                    break
        except OSError:
            pass

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


def _json_body(body: bytes | bytearray) -> dict:
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPError(400, f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPError(400, "The request body is JSON nested too deeply.") from None
    except ValueError:  # an integer longer than Python converts (4300 digits)
        raise HTTPError(400, "The request body has a number with too many digits.") from None
    if not isinstance(obj, dict):
        raise HTTPError(400, "The request body must be a JSON object.")
    return obj


_SubmitFields = tuple[dict, bytes, str]


def _parse_submit_fields(content_type: str | None, body: bytearray) -> _SubmitFields:
    """(fields, image bytes, name) from a JSON or multipart job request; 400 when malformed.

    Only the image's bytes are copied out of ``body``, so the caller can drop the body before
    the image is decoded."""
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return _multipart(content_type or "", body)
    if ctype not in ("application/json", "text/json"):
        raise HTTPError(415, "Send application/json or multipart/form-data.")
    fields = _json_body(body)
    raw = fields.pop("image", None)
    if not isinstance(raw, str) or not raw:
        raise HTTPError(400, "Give the image as base64 text in the 'image' field.")
    try:
        image = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, "The 'image' field is not valid base64.") from None
    return fields, image, str(fields.get("name") or "the image")


def _finish_submit(
    fields: dict, image: bytes, name: str
) -> tuple[Photo, list[tuple[str, float]], str | None, float | None, bool]:
    """(photo, steps, pack, lease, as_written) from the parsed fields; 400 when malformed."""
    steps = _steps(fields)
    pack = fields.get("pack")
    if pack is not None and (not isinstance(pack, str) or not pack.strip()):
        raise HTTPError(400, "'pack' must be a model pack id such as 'instructir-7d'.")
    lease = fields.get("lease_s")
    if lease is not None and (not _is_number(lease) or not 1 <= lease <= 3600):
        raise HTTPError(400, "'lease_s' must be a number of seconds between 1 and 3600.")
    as_written = fields.get("as_written", False)
    if not isinstance(as_written, bool):
        raise HTTPError(400, "'as_written' must be true or false.")
    try:
        photo = load_image_bytes(image, name=name)
    except ImageTooLargeError as exc:
        raise HTTPError(413, str(exc)) from None
    except InstructIRError as exc:
        raise HTTPError(400, str(exc)) from None
    return photo, steps, pack, None if lease is None else float(lease), as_written


def _multipart(content_type: str, body: bytearray) -> _SubmitFields:
    """Split a multipart body in place: small fields are decoded, the image part copied once."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise HTTPError(400, "The multipart body could not be read (check the boundary).")
    delimiter = b"--" + boundary
    fields: dict[str, Any] = {}
    image, name = None, "the image"
    view = memoryview(body)
    try:
        pos = body.find(delimiter)
        parts = 0
        while pos >= 0:
            start = pos + len(delimiter)
            if body[start : start + 2] == b"--":
                break
            head_end = body.find(b"\r\n\r\n", start)
            if head_end < 0:
                break
            nxt = body.find(b"\r\n" + delimiter, head_end + 4)
            if nxt < 0:
                break
            parts += 1
            headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(
                bytes(view[start:head_end]).lstrip(b"\r\n") + b"\r\n\r\n"
            )
            field_name = headers.get_param("name", header="content-disposition")
            payload = view[head_end + 4 : nxt]
            encoding = (headers.get("Content-Transfer-Encoding") or "").strip().lower()
            if field_name == "image":
                image = bytes(payload)
                if encoding == "base64":
                    image = base64.b64decode(image)
                name = headers.get_filename() or name
            elif len(payload) > MAX_JSON_BYTES:
                raise HTTPError(400, f"The '{field_name}' field is too large.")
            else:
                _multipart_field(fields, field_name, bytes(payload))
            pos = nxt + 2
        if not parts:
            raise HTTPError(400, "The multipart body could not be read (check the boundary).")
    finally:
        view.release()
    if not image:
        raise HTTPError(400, "The multipart body has no 'image' file part.")
    return fields, image, name


def _boundary(content_type: str) -> bytes | None:
    msg = email.message.Message()
    msg["Content-Type"] = content_type
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        return None
    return boundary.encode("latin-1", "replace")


def _multipart_field(fields: dict, field_name: Any, payload: bytes) -> None:
    if field_name == "request":
        fields.update(_json_body(payload))
    elif field_name in ("instruction", "instructions"):
        fields.setdefault("instructions", []).append(payload.decode("utf-8", "replace"))
    elif field_name in ("strength", "lease_s"):
        try:
            fields[field_name] = float(payload)
        except ValueError:
            raise HTTPError(400, f"'{field_name}' must be a number.") from None
    elif field_name == "pack":
        fields["pack"] = payload.decode("utf-8", "replace")
    elif field_name == "as_written":
        fields["as_written"] = payload.decode("utf-8", "replace").strip().lower() in _TRUE


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _strength(value: Any, where: str) -> float:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise HTTPError(400, f"{where} must be a number between 0 and 1.")
    return float(value)


def _steps(fields: dict) -> list[tuple[str, float]]:
    raw = fields.get("instructions", fields.get("instruction"))
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise HTTPError(400, 'Give at least one instruction, e.g. "remove the noise".')
    if len(raw) > MAX_STEPS:
        raise HTTPError(400, f"Give at most {MAX_STEPS} instructions per job.")
    default = _strength(fields.get("strength", 1.0), "'strength'")
    steps = []
    for item in raw:
        text, strength = item, default
        if isinstance(item, dict):
            text = item.get("instruction")
            strength = _strength(item.get("strength", default), "Each step's 'strength'")
        if not isinstance(text, str) or not text.strip():
            raise HTTPError(400, "Every instruction must be non-empty text.")
        # Refused here (400), not after the photo waited in the queue: no words, too long.
        steps.append((clean_instruction(text, words=True), strength))
    return steps


def _parse_intent(body: bytes) -> tuple[list[str], str | None]:
    fields = _json_body(body)
    texts = fields.get("texts", fields.get("text"))
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or len(texts) > 64:
        raise HTTPError(400, "Give 'text' (or 'texts', at most 64) to interpret.")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise HTTPError(400, "Every text must be non-empty.")
    pack = fields.get("pack")
    return texts, pack if isinstance(pack, str) and pack else None
