"""The bridge's HTTP error: an answer other than 200, with its status and extra JSON fields.

Raised by routing, request parsing and the jobs (``server.py``); the handler turns it into
the JSON answer ``{"error": message, **extra}``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HTTPError"]


class HTTPError(Exception):
    """An answer other than 200, raised inside a handler."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra
