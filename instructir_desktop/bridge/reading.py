"""Reading a bridge request off its connection, under a deadline and limits.

A request's line and headers share one overall deadline (``HEAD_TIMEOUT_S`` by default): a
client that drips them a byte at a time stays under the per-read ``timeout`` but not under
this, so it cannot hold a connection slot; one still sending them gets 408. A body is read only
when it has a Content-Length within the route's limit (411, 400 and 413 otherwise), into one
buffer the size of the body; a client that stops sending part-way gets 400 (cut off) or 408
(stalled). A request refused before its body is read is answered first and the unread body
drained, so the client sees the answer instead of a reset.

``BoundedRequestHandler`` holds all of this; the bridge's handler (``handler.py``) derives from
it and supplies the answering (``_send_json``) and the head's deadline (``head_timeout``).
"""

from __future__ import annotations

import http.server
import io
import socket
import time
from typing import Any

__all__ = ["HEAD_TIMEOUT_S", "BoundedRequestHandler"]

# Seconds a client has for a request's line and headers, in all: one that drips them a byte
# at a time stays under the per-read timeout, but not under this, so it cannot hold a slot.
HEAD_TIMEOUT_S = 10.0


class _HeadReader(socket.SocketIO):
    """The reading side of a connection: while a request's head is being read, no read waits
    past the head's deadline, and the bytes that arrive are counted."""

    def __init__(self, sock: socket.socket, handler: BoundedRequestHandler) -> None:
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


class BoundedRequestHandler(http.server.BaseHTTPRequestHandler):
    """A request handler whose reads are bounded: the head by one deadline, the body by a
    size limit and the per-read ``timeout``. Subclasses answer through ``_send_json``."""

    # Seconds a silent client may hold a connection (a slow upload keeps sending, so it lives).
    timeout = 20
    # While a request's line and headers are read: when they must have arrived (monotonic).
    head_deadline: float | None = None
    head_bytes = 0
    head_timed_out = False

    def head_timeout(self) -> float:
        """Seconds a request's line and headers may take, in all."""
        return HEAD_TIMEOUT_S

    def _send_json(self, status: int, obj: dict) -> None:
        """Answer ``obj`` as JSON with ``status``."""
        raise NotImplementedError

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain reader gives way to one that keeps the head's deadline
        self.rfile = io.BufferedReader(_HeadReader(self.connection, self))

    def handle_one_request(self) -> None:
        """One request, whose line and headers must all arrive within ``head_timeout()``:
        a client that is still sending them then gets 408 and the connection closes; an idle
        kept-alive connection just closes."""
        limit = self.head_timeout()
        self.head_deadline = time.monotonic() + limit
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

    def _read_body(self, limit: int) -> bytearray | None:
        """The body, at most ``limit`` bytes; None when it was refused or did not all arrive
        (the client has then been answered)."""
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
