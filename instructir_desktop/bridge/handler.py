"""HTTP side of the bridge: the request handler, routing and request parsing.

Kept apart from ``server.py`` (jobs, worker, bridge file) so each reads in one sitting. The
handler checks the token and the Content-Length before reading a body, answers JSON for every
error and never lets an exception escape to ``socketserver`` (the service keeps running).
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import http.server
import json
import logging
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from instructir_desktop.bridge.info import API_VERSION
from instructir_desktop.core.errors import ImageTooLargeError, InstructIRError
from instructir_desktop.core.images import Photo, load_image_bytes

if TYPE_CHECKING:
    from instructir_desktop.bridge.server import BridgeServer

__all__ = [
    "API_VERSION",
    "TOKEN_HEADER",
    "HTTPError",
    "BridgeHTTPServer",
    "BridgeRequestHandler",
    "suggestions",
]

log = logging.getLogger("instructir.bridge")

TOKEN_HEADER = "X-InstructIR-Token"
MAX_JSON_BYTES = 1 << 20
MAX_STEPS = 16


class HTTPError(Exception):
    """An answer other than 200, raised inside a handler."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


class BridgeHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # On Windows SO_REUSEADDR would let a second server steal a port that is in use.
    allow_reuse_address = not sys.platform.startswith("win")

    def __init__(self, address: tuple[str, int], handler: type, bridge: BridgeServer) -> None:
        self.bridge = bridge
        super().__init__(address, handler)


class BridgeRequestHandler(http.server.BaseHTTPRequestHandler):
    server: BridgeHTTPServer
    server_version = f"InstructIRBridge/{API_VERSION}"
    # Answer even a garbage request line with a status line and headers (not HTTP/0.9 style).
    default_request_version = "HTTP/1.0"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, bad headers) also answer JSON."""
        self.close_connection = True
        try:
            self._send_json(code, {"error": message or explain or "Bad request."})
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

    def _dispatch(self, method: str) -> None:
        bridge = self.server.bridge
        try:
            parts = [p for p in urlsplit(self.path).path.split("/") if p]
            route = _route(method, parts)
            authorized = bridge.check_token(self._token())
            if route != "health" and not authorized:
                self._reject(401, "Missing or wrong bridge token (see bridge.json).")
                return
            if method == "POST":
                body = self._read_body(
                    bridge.max_body_bytes if route == "submit" else MAX_JSON_BYTES
                )
                if body is None:
                    return
            if route == "health":
                self._send_json(200, bridge.health(authorized))
            elif route == "submit":
                photo, steps, pack, lease = _parse_submit(self.headers.get("Content-Type"), body)
                self._send_json(202, bridge.submit(photo, steps, pack, lease))
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
            elif route == "suggestions":
                self._send_json(200, suggestions())
            elif route == "intent":
                texts, pack = _parse_intent(body)
                self._send_json(200, bridge.intent(texts, pack))
        except HTTPError as exc:
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

    def _token(self) -> str | None:
        token = self.headers.get(TOKEN_HEADER)
        auth = self.headers.get("Authorization", "")
        if not token and auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        return token

    def _read_body(self, limit: int) -> bytes | None:
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
        chunks, left = [], length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                self.close_connection = True
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

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
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        if status == 503:
            self.send_header("Retry-After", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_png(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


_ROUTES = {
    ("GET", 1, "health"): "health",
    ("GET", 1, "jobs"): "list",
    ("POST", 1, "jobs"): "submit",
    ("GET", 2, "jobs"): "status",
    ("DELETE", 2, "jobs"): "delete",
    ("GET", 1, "intent"): "suggestions",
    ("POST", 1, "intent"): "intent",
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


def _json_body(body: bytes) -> dict:
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPError(400, f"The request body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise HTTPError(400, "The request body must be a JSON object.")
    return obj


def _parse_submit(
    content_type: str | None, body: bytes
) -> tuple[Photo, list[tuple[str, float]], str | None, float | None]:
    """(photo, steps, pack, lease) from a JSON or multipart job request; 400 when malformed."""
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        fields, image, name = _multipart(content_type or "", body)
    elif ctype in ("application/json", "text/json"):
        fields = _json_body(body)
        raw = fields.get("image")
        if not isinstance(raw, str) or not raw:
            raise HTTPError(400, "Give the image as base64 text in the 'image' field.")
        try:
            image = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPError(400, "The 'image' field is not valid base64.") from None
        name = str(fields.get("name") or "the image")
    else:
        raise HTTPError(415, "Send application/json or multipart/form-data.")
    steps = _steps(fields)
    pack = fields.get("pack")
    if pack is not None and (not isinstance(pack, str) or not pack.strip()):
        raise HTTPError(400, "'pack' must be a model pack id such as 'instructir-7d'.")
    lease = fields.get("lease_s")
    if lease is not None and (not _is_number(lease) or not 1 <= lease <= 3600):
        raise HTTPError(400, "'lease_s' must be a number of seconds between 1 and 3600.")
    try:
        photo = load_image_bytes(image, name=name)
    except ImageTooLargeError as exc:
        raise HTTPError(413, str(exc)) from None
    except InstructIRError as exc:
        raise HTTPError(400, str(exc)) from None
    return photo, steps, pack, None if lease is None else float(lease)


def _multipart(content_type: str, body: bytes) -> tuple[dict, bytes, str]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise HTTPError(400, "The multipart body could not be read (check the boundary).")
    fields: dict[str, Any] = {}
    image, name = None, "the image"
    for part in msg.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if field_name == "image":
            image = payload
            name = part.get_filename() or name
        elif field_name == "request":
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
    if not image:
        raise HTTPError(400, "The multipart body has no 'image' file part.")
    return fields, image, name


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
        steps.append((" ".join(text.split()), strength))
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
