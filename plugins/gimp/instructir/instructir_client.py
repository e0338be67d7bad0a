"""The GIMP-independent half of the InstructIR plug-in: finding and starting the bridge,
talking to it (the bridge must prove it holds the token before it gets it), and running jobs.

Runs inside GIMP's own Python (3.10+, stdlib only, no Pillow or numpy) and in the test suite,
which drives it against a real bridge and a fake ``gi.repository.Gimp``. Pixels (the PNG codec
and layer arithmetic) live in ``instructir_png.py``; the words put to the user (the fixes, the
reading of an instruction, layer names) in ``instructir_words.py``; finding the bridge's
address and token in ``instructir_bridge_info.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:  # GIMP runs the entry file only
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import instructir_png as _png  # noqa: E402
from instructir_bridge_info import (  # noqa: E402
    DEFAULT_PORT,
    BridgeInfo,
    default_config_dir,
    find_bridge_info,
    port_of,
)
from instructir_png import (  # noqa: E402
    babl_format,
    encode_png,
    gegl_to_png_samples,
    intersect_rect,
    is_high_bit_depth,
    png_samples_to_gegl,
)
from instructir_words import (  # noqa: E402
    MIN_CONFIDENCE,
    TASK_LABELS,
    TASK_PROMPTS,
    TASKS,
    Reading,
    layer_name,
    read_intent,
    unclear_message,
    undo_name,
)

__all__ = [
    "PROCEDURE",
    "TASKS",
    "TASK_PROMPTS",
    "TASK_LABELS",
    "MIN_CONFIDENCE",
    "BridgeError",
    "BridgeNotRunning",
    "NotTheBridge",
    "UnclearInstruction",
    "JobCancelled",
    "JobStopped",
    "DEFAULT_PORT",
    "BridgeInfo",
    "BridgeClient",
    "Reading",
    "find_bridge_info",
    "default_config_dir",
    "connect",
    "run_job",
    "read_intent",
    "not_running_message",
    "response_proof",
    "layer_name",
    "undo_name",
    "clean_instruction",
    "intersect_rect",
    "is_high_bit_depth",
    "babl_format",
    "encode_png",
    "decode_png",
    "gegl_to_png_samples",
    "png_samples_to_gegl",
]

PROCEDURE = "python-fu-instructir"
LEASE_S = 20.0
TOKEN_HEADER = "X-InstructIR-Token"
NONCE_HEADER = "X-InstructIR-Nonce"
PROOF_HEADER = "X-InstructIR-Proof"
PARASITE = "instructir-instruction"

INSTALL_HINT = (
    "Run `instructir gimp install` (or Help → Install GIMP plug-in in InstructIR Desktop) once, "
    "then restart GIMP."
)


class BridgeError(Exception):
    """A problem the photographer must read: the message says what happened and what to do.
    ``status`` is the bridge's HTTP status when it answered with an error, else None."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BridgeNotRunning(BridgeError):
    """Nothing answers on the bridge's address."""


class NotTheBridge(BridgeError):
    """Something answers on the bridge's port but cannot prove it holds the token."""


class UnclearInstruction(BridgeError):
    """The bridge refused an instruction it is not sure about (nothing was changed)."""


class JobCancelled(BridgeError):
    """The user cancelled the job."""


class JobStopped(BridgeError):
    """The bridge stopped the job without being asked by this plug-in: it shut down, lost the
    job, or cancelled it. Nothing was changed in the image."""


class BridgeClient:
    """A tiny HTTP client for the bridge (urllib; loopback only) that trusts only a server
    proving it holds the token: the token is sent after ``verify()`` succeeds, and every
    answer must carry a valid proof over the request's nonce."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.verified = False
        self.max_body_bytes: int | None = None  # the bridge's upload limit, from /health

    @property
    def port(self) -> int:
        return port_of(self.url)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
        send_token: bool = True,
    ) -> tuple[int, bytes, str]:
        if send_token and not self.verified:
            self.verify(timeout)
        nonce = secrets.token_urlsafe(24)
        headers = {NONCE_HEADER: nonce, "Accept": "application/json"}
        if send_token:
            headers[TOKEN_HEADER] = self.token
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        # No proxy: a proxy would see the token and cannot reach this computer's loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout or self.timeout) as resp:
                status, data, answer_headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, data, answer_headers = exc.code, exc.read(), exc.headers
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            raise _unreachable(exc, self.port) from None
        if status == 503 and not answer_headers.get(PROOF_HEADER):
            # Too many connections: refused before the request was read, so unsigned. Only
            # "try later" is taken from it.
            raise BridgeError("The InstructIR bridge is busy; try again in a moment.")
        self._check_proof(nonce, status, data, answer_headers)
        if status >= 400:
            raise BridgeError(_error_message(status, data), status)
        return status, data, answer_headers.get("Content-Type", "")

    def _check_proof(self, nonce: str, status: int, data: bytes, headers: Any) -> None:
        given = (headers.get(PROOF_HEADER) if headers is not None else None) or ""
        want = response_proof(self.token, nonce, self.port, status, data)
        if not hmac.compare_digest(given.encode(), want.encode()):
            self.verified = False
            raise NotTheBridge(
                f"The program answering on port {self.port} is not the InstructIR bridge this "
                "plug-in was set up for, so the plug-in sent it nothing. Close that program "
                "and open InstructIR Desktop; if the bridge's token was replaced, restart the "
                f"bridge. {INSTALL_HINT}"
            )

    def _json(self, method: str, path: str, body: bytes | None = None, **kw: Any) -> dict:
        ctype = kw.pop("content_type", "application/json" if body is not None else None)
        _, data, _ = self._request(method, path, body, ctype, **kw)
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise BridgeError("The InstructIR bridge sent an unreadable answer.")
        return answer

    def verify(self, timeout: float | None = None) -> dict:
        """Ask, without the token, for proof that the server holds it; the public health."""
        health = self._json("GET", "/health", timeout=timeout, send_token=False)
        self.verified = True
        self._note_limit(health)
        return health

    def _note_limit(self, health: dict) -> None:
        limit = health.get("max_body_bytes")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            self.max_body_bytes = limit

    def health(self, timeout: float | None = None) -> dict:
        """The bridge's state with pack and device (after it proved itself)."""
        health = self._json("GET", "/health", timeout=timeout)
        self._note_limit(health)
        return health

    def submit(
        self,
        png: bytes,
        instruction: str,
        strength: float,
        lease_s: float | None = LEASE_S,
        as_written: bool = False,
    ) -> dict:
        """Send the pixels (multipart upload, no base64) and queue a job."""
        fields = {"instruction": instruction, "strength": repr(float(strength))}
        if lease_s:
            fields["lease_s"] = repr(float(lease_s))
        if as_written:
            fields["as_written"] = "true"
        body, ctype = _multipart(fields, ("image", "layer.png", "image/png", png))
        self._check_size(len(body))
        return self._json("POST", "/jobs", body, content_type=ctype, timeout=max(self.timeout, 120))

    def _check_size(self, size: int) -> None:
        """Refuse, before sending, a layer larger than the bridge takes: the bridge answers 413
        without reading it, and the upload would end in a reset connection."""
        if not self.verified:
            self.verify()
        limit = self.max_body_bytes
        if limit is not None and size > limit:
            raise BridgeError(
                f"The layer is too large for the InstructIR bridge: its pixels take "
                f"{_mib(size)} and the bridge accepts up to {_mib(limit)}. Select a smaller area, "
                "or scale the image down (Image → Scale Image), and run the filter again.",
                413,
            )

    def status(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{job_id}")

    def result(self, job_id: str) -> bytes:
        _, data, _ = self._request("GET", f"/jobs/{job_id}/result?filter=none", timeout=300)
        return data

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/jobs/{job_id}/cancel", b"{}")

    def delete(self, job_id: str) -> None:
        try:
            self._request("DELETE", f"/jobs/{job_id}", timeout=5.0)
        except BridgeError:
            pass  # it expires on its own

    def intent(self, text: str, timeout: float = 3.0) -> dict:
        body = json.dumps({"text": text}).encode()
        return self._json("POST", "/intent", body, timeout=timeout)

    def assess(self, png: bytes, timeout: float = 30.0) -> dict:
        """What the layer's pixels suggest fixing (POST /assess): summary and steps in order."""
        body, ctype = _multipart({}, ("image", "layer.png", "image/png", png))
        self._check_size(len(body))
        return self._json("POST", "/assess", body, content_type=ctype, timeout=timeout)


def response_proof(token: str, nonce: str, port: int, status: int, body: bytes) -> str:
    """The HMAC the bridge sends with each answer (same as the bridge's ``response_proof``)."""
    digest = hashlib.sha256(body).hexdigest()
    message = f"instructir-bridge-proof-v1\n{nonce}\n{port}\n{status}\n{digest}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def not_running_message(port: int) -> str:
    """What to do when no bridge answers on ``port``."""
    return (
        "The InstructIR bridge is not running. Open InstructIR Desktop, or run "
        f"`instructir serve --port {port}` in a terminal, then run the filter again."
    )


def _unreachable(exc: BaseException, port: int) -> BridgeError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return BridgeNotRunning(
            "The InstructIR bridge did not answer in time; it may be busy loading the model. "
            "Try again in a moment."
        )
    return BridgeNotRunning(not_running_message(port))


def _error_message(status: int, data: bytes) -> str:
    try:
        message = json.loads(data).get("error") or ""
    except (ValueError, AttributeError):
        message = ""
    if status == 401:
        return f"The InstructIR bridge refused the plug-in (its token changed). {INSTALL_HINT}"
    if status == 413:
        return f"The layer is too large for the InstructIR bridge. {message}".strip()
    if status == 503:
        return message or "The InstructIR bridge is busy; try again in a moment."
    return message or f"The InstructIR bridge could not do this (error {status})."


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


def _multipart(fields: dict, file: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    boundary = "instructir-" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode()
            + value.encode("utf-8")
            + b"\r\n"
        )
    name, filename, ctype, data = file
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
    )
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _popen_detached(argv: list[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    kwargs: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log}
    if os.name == "nt":
        flags = 0x00000008 | 0x00000200 | 0x08000000  # DETACHED, NEW_PROCESS_GROUP, NO_WINDOW
        kwargs["creationflags"] = flags
    else:
        kwargs["start_new_session"] = True  # GIMP kills the plug-in's process group on cancel
    try:
        return subprocess.Popen(argv, **kwargs)
    finally:
        log.close()


def connect(
    info: BridgeInfo | None,
    *,
    start: bool = True,
    wait_s: float = 180.0,
    on_wait: Callable[[str], None] | None = None,
    popen: Callable[[list[str], Path], Any] = _popen_detached,
    sleep: Callable[[float], None] = time.sleep,
    log_dir: Path | None = None,
) -> BridgeClient:
    """A client for a bridge that proved it holds our token; starts ``instructir serve`` when
    nothing answers and the install recorded how."""
    if info is None:
        raise BridgeError(f"The plug-in cannot find the InstructIR bridge settings. {INSTALL_HINT}")
    client = BridgeClient(info.url, info.token)
    try:
        client.verify(timeout=3.0)
    except BridgeNotRunning:
        if not start or not info.command:
            raise
        _start_bridge(client, info, wait_s, on_wait, popen, sleep, log_dir)
    return client


def _start_bridge(client, info, wait_s, on_wait, popen, sleep, log_dir) -> dict:
    argv = list(info.command) + ["serve", "--port", str(info.port)]
    log_path = (log_dir or info.source.parent) / "bridge-gimp.log"
    if on_wait:
        on_wait("Starting the InstructIR bridge…")
    try:
        proc = popen(argv, log_path)
    except OSError as exc:
        why = "was not found" if isinstance(exc, FileNotFoundError) else "could not be run"
        raise BridgeNotRunning(
            f"GIMP could not start the InstructIR bridge: the program “{Path(argv[0]).name}” "
            f"{why}. {not_running_message(info.port)}"
        ) from None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        sleep(0.5)
        try:
            return client.verify(timeout=2.0)
        except BridgeNotRunning:
            pass
        if proc is not None and proc.poll() is not None:
            raise BridgeNotRunning(
                f"The InstructIR bridge stopped while starting{_log_tail(log_path)}. "
                f"{not_running_message(info.port)}"
            )
    raise BridgeNotRunning(
        f"The InstructIR bridge did not start in {wait_s:.0f} s. {not_running_message(info.port)}"
    )


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1]}" if lines else ""


def run_job(
    client: BridgeClient,
    png: bytes,
    instruction: str,
    strength: float,
    *,
    as_written: bool = False,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    poll_s: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """Submit, poll until done (reporting progress), fetch the PNG and delete the job.
    ``as_written`` only when the user confirmed an instruction the bridge is unsure of."""
    job = client.submit(png, instruction, strength, as_written=as_written)
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise BridgeError("The InstructIR bridge accepted the layer but sent no job id.")
    try:
        while True:
            if should_cancel is not None and should_cancel():
                _cancel_and_wait(client, job_id, sleep)
                raise JobCancelled("Cancelled.")
            state = job.get("state")
            if on_progress is not None:
                on_progress(float(job.get("progress") or 0.0), _describe(job))
            if state == "done":
                return _while_running(client.result, job_id, client.port)
            if state == "failed":
                if job.get("error_type") == "UnclearInstructionError":
                    raise UnclearInstruction(unclear_message(instruction, job.get("error")))
                raise BridgeError(job.get("error") or "InstructIR could not restore the layer.")
            if state == "cancelled":
                raise JobStopped(_stopped_message(job.get("message")))
            sleep(poll_s)
            job = _while_running(client.status, job_id, client.port)
    finally:
        client.delete(job_id)


def _while_running(call: Callable[[str], Any], job_id: str, port: int) -> Any:
    """``call(job_id)``, with the bridge going away or forgetting the job put as what it
    means for the image: nothing was changed."""
    try:
        return call(job_id)
    except BridgeNotRunning as exc:
        raise JobStopped(
            "The InstructIR bridge stopped answering while it was restoring the layer, so "
            "nothing was changed. If it is no longer running, open InstructIR Desktop or run "
            f"`instructir serve --port {port}` in a terminal, then run the filter again."
        ) from exc
    except BridgeError as exc:
        if exc.status == 404:
            raise JobStopped(
                "The InstructIR bridge restarted and no longer knows this job, so nothing was "
                "changed. Run the filter again."
            ) from exc
        raise


def _stopped_message(reason: Any) -> str:
    if reason == "abandoned by its client":
        return (
            f"The InstructIR bridge gave up on the job because it heard nothing from GIMP for "
            f"{LEASE_S:.0f} s (GIMP or the computer was busy), so nothing was changed. Run the "
            "filter again."
        )
    return (
        "The InstructIR job was cancelled in the bridge (InstructIR Desktop closed or the "
        "bridge stopped), so nothing was changed. Run the filter again."
    )


def _cancel_and_wait(client: BridgeClient, job_id: str, sleep: Callable[[float], None]) -> None:
    """Ask the bridge to cancel; wait briefly for it to stop (it does between tiles)."""
    job = client.cancel(job_id)
    deadline = time.monotonic() + 5.0
    while job.get("state") not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
        sleep(0.1)
        job = client.status(job_id)


def _describe(job: dict) -> str:
    if job.get("state") == "queued":
        ahead = job.get("position") or 0
        return f"InstructIR: waiting ({ahead} photo(s) ahead)" if ahead else "InstructIR: waiting"
    return f"InstructIR: {job.get('message') or job.get('state')}"


def clean_instruction(text: str | None) -> str:
    """Collapse whitespace; an empty instruction is an error the user can fix."""
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise BridgeError(
            "Type what is wrong with the photo, for example 'it is too dark' or "
            "'remove the noise', or pick one of the suggestions."
        )
    return cleaned


def decode_png(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(width, height, bit depth, channels, big-endian samples) of the bridge's PNG."""
    try:
        return _png.decode_png(data)
    except _png.PNGError as exc:
        raise BridgeError(str(exc)) from None
