"""The local bridge: an HTTP JSON service on 127.0.0.1 that restores photos for the GIMP
plug-in (and any other program of this user that holds the token).

Hosted by the desktop app while it runs and by ``instructir serve`` headless. No Qt here: the
server is stdlib ``http.server`` with one handler thread per connection, and one worker thread
that runs the model jobs one at a time (holding ``model_lock`` so a host app can share its
loaded model). The token, port and the command that starts a bridge live in
``config_dir()/bridge.json`` (mode 0600), which the plug-in reads.

Endpoints (token in ``X-InstructIR-Token`` or ``Authorization: Bearer``; every answer is JSON
except a result, which is PNG):

- ``GET /health``: no token needed; adds pack, device and queue when the token is right.
- ``POST /jobs``: JSON ``{"image": base64, "instructions": [...], "strength", "pack",
  "lease_s"}`` or multipart (an ``image`` file part plus the same fields) → 202 ``{"id"}``.
- ``GET /jobs/<id>``: state (queued, running, done, failed, cancelled), progress, error.
- ``GET /jobs/<id>/result``: the PNG (16-bit when the input was), 409 until it is done.
- ``POST /jobs/<id>/cancel``, ``DELETE /jobs/<id>``.
- ``GET /intent`` (the seven tasks and their suggested prompts), ``POST /intent``
  ``{"text"}`` or ``{"texts"}`` → what the model understood.

A job with ``lease_s`` is cancelled when nobody polls it for that long: GIMP kills a plug-in
whose progress bar is cancelled, so the plug-in cannot always say "cancel" itself.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import struct
import sys
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from instructir_desktop import __version__
from instructir_desktop.bridge.handler import (
    API_VERSION,
    BridgeHTTPServer,
    BridgeRequestHandler,
    HTTPError,
    suggestions,
)
from instructir_desktop.bridge.info import (
    DEFAULT_PORT,
    bridge_command,
    bridge_file,
    read_bridge_info,
    token_from,
    write_bridge_info,
)
from instructir_desktop.core.errors import CancelledError, InstructIRError
from instructir_desktop.core.images import Photo, encode_image, to_uint8, to_uint16

if TYPE_CHECKING:
    from instructir_desktop.core.restorer import Restorer

__all__ = [
    "API_VERSION",
    "DEFAULT_PORT",
    "DEFAULT_MAX_BODY",
    "BridgeServer",
    "serve_forever",
    "default_pack_id",
    "bridge_file",
    "read_bridge_info",
    "write_bridge_info",
    "bridge_command",
    "plain_png",
]

log = logging.getLogger("instructir.bridge")

DEFAULT_MAX_BODY = 512 << 20
MAX_QUEUED = 8
KEEP_FINISHED = 16
FINISHED_TTL_S = 30 * 60
FINAL_STATES = ("done", "failed", "cancelled")
_PRELOAD = "preload:"  # queue items are job ids, or this prefix + a pack id to load


@dataclass
class _Job:
    id: str
    photo: Photo | None  # dropped once the job has finished
    steps: list[tuple[str, float]]
    pack: str | None
    lease_s: float | None
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting"
    error: str | None = None
    error_type: str | None = None
    result: np.ndarray | None = None  # H x W x 3|4 uint8/uint16 samples
    metadata: tuple[bytes | None, bytes | None] = (None, None)  # ICC, EXIF of the input
    created: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    size: tuple[int, int, int] = (0, 0, 8)  # width, height, bit depth of the result

    def __post_init__(self) -> None:
        if self.photo is not None:
            depth = 16 if self.photo.bit_depth > 8 else 8
            self.size = (self.photo.width, self.photo.height, depth)
            self.metadata = (self.photo.icc_profile, self.photo.exif)

    def abandoned(self) -> bool:
        return self.lease_s is not None and time.monotonic() - self.last_seen > self.lease_s

    def to_dict(self, position: int | None) -> dict:
        d = {
            "id": self.id,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "error_type": self.error_type,
            "width": self.size[0],
            "height": self.size[1],
            "bit_depth": self.size[2],
            "instructions": [text for text, _ in self.steps],
            "pack": self.pack,
        }
        if position is not None:
            d["position"] = position
        if self.state == "done":
            d["result_url"] = f"/jobs/{self.id}/result"
        return d


class BridgeServer:
    """The bridge: ``start()`` serves in background threads until ``stop()``.

    ``get_restorer(pack_id or None)`` returns the loaded Restorer for a pack (None: the host's
    default); it is always called by the worker thread with ``model_lock`` held.
    """

    def __init__(
        self,
        get_restorer: Callable[[str | None], Restorer],
        *,
        model_lock: threading.Lock | None = None,
        port: int = 0,
        token_file: Path | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._get_restorer = get_restorer
        self.model_lock = model_lock or threading.Lock()
        self.requested_port = port
        self.token_file = Path(token_file) if token_file else bridge_file()
        self.max_body_bytes = max_body_bytes
        self.token = token_from(read_bridge_info(self.token_file)) or secrets.token_urlsafe(32)
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: list[str] = []
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._model_state = "not loaded"
        self._model_info: dict = {}
        self._model_error: str | None = None
        self._last_restorer: Restorer | None = None
        self._httpd: BridgeHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        return self._httpd.server_address[1] if self._httpd else self.requested_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind 127.0.0.1, write bridge.json and start serving; raises OSError if the port is
        taken."""
        if self._httpd is not None:
            return
        self._httpd = BridgeHTTPServer(
            ("127.0.0.1", self.requested_port), BridgeRequestHandler, self
        )
        self._stopping = False
        serve = threading.Thread(target=self._httpd.serve_forever, name="bridge-http", daemon=True)
        work = threading.Thread(target=self._work, name="bridge-worker", daemon=True)
        self._threads = [serve, work]
        for t in self._threads:
            t.start()
        info = read_bridge_info(self.token_file) or {}
        info.update(
            api=API_VERSION,
            version=__version__,
            url=self.url,
            port=self.port,
            token=self.token,
            pid=_pid(),
            running=True,
        )
        if not info.get("command"):
            info["command"] = bridge_command()
        write_bridge_info(info, self.token_file)
        log.info("bridge listening on %s", self.url)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel queued and running jobs, stop serving and mark bridge.json as not running."""
        if self._httpd is None:
            return
        with self._lock:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel.set()
            self._wake.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout)
        self._httpd = None
        info = read_bridge_info(self.token_file)
        if info and info.get("pid") == _pid():
            info.update(running=False, pid=None)
            write_bridge_info(info, self.token_file)

    def preload(self, pack: str | None = None) -> None:
        """Load the model in the worker now, so the first job does not wait for it."""
        with self._lock:
            self._queue.append(f"{_PRELOAD}{pack or ''}")
            self._wake.notify()

    def check_token(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def health(self, authorized: bool) -> dict:
        """What GET /health answers; pack, device and queue only for the token holder."""
        d = {
            "ok": True,
            "service": "instructir-bridge",
            "version": __version__,
            "api": API_VERSION,
            "authorized": authorized,
        }
        if authorized:
            with self._lock:
                queued = len([j for j in self._queue if not j.startswith(_PRELOAD)])
                running = [j.id for j in self._jobs.values() if j.state == "running"]
            d.update(self._model_info)
            d.update(
                model=self._model_state,
                model_error=self._model_error,
                queued=queued,
                running=running[0] if running else None,
                max_body_bytes=self.max_body_bytes,
            )
        return d

    def submit(
        self, photo: Photo, steps: list[tuple[str, float]], pack: str | None, lease_s: float | None
    ) -> dict:
        """Queue a job; 503 when the queue is full."""
        job = _Job(uuid.uuid4().hex, photo, steps, pack, lease_s)
        with self._lock:
            if self._stopping:
                raise HTTPError(503, "The bridge is shutting down.")
            if len(self._queue) >= MAX_QUEUED:
                raise HTTPError(503, "Too many photos are waiting; try again in a moment.")
            self._prune()
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._wake.notify()
            return job.to_dict(self._position(job.id))

    def job_status(self, job_id: str) -> dict:
        with self._lock:
            job = self._job(job_id)
            job.last_seen = time.monotonic()
            return job.to_dict(self._position(job_id))

    def job_result(self, job_id: str, plain: bool = False) -> bytes:
        """The result as PNG: with the input's ICC/EXIF (default) or ``plain``: unfiltered
        rows and fast deflate, which the GIMP plug-in decodes without numpy."""
        with self._lock:
            job = self._job(job_id)
            job.last_seen = time.monotonic()
            if job.state != "done" or job.result is None:
                msg = job.error or f"The job is {job.state}; its result is not ready."
                raise HTTPError(409, msg, state=job.state)
            samples, (icc, exif) = job.result, job.metadata
        if plain:
            return plain_png(samples)
        scale = np.float32(65535.0 if samples.dtype == np.uint16 else 255.0)
        alpha = samples[..., 3] / scale if samples.shape[2] == 4 else None
        photo = Photo(samples[..., :3] / scale, alpha, job.size[2], exif, icc, "PNG")
        return encode_image(photo, "PNG", bit_depth=job.size[2])

    def cancel_job(self, job_id: str) -> dict:
        with self._lock:
            job = self._job(job_id)
            if job.state == "queued":
                self._queue.remove(job.id)
                self._finish(job, "cancelled", message="cancelled")
            elif job.state == "running":
                job.cancel.set()
                job.message = "cancelling"
            return job.to_dict(None)

    def delete_job(self, job_id: str) -> dict:
        with self._lock:
            job = self._job(job_id)
            if job.state not in FINAL_STATES:
                raise HTTPError(409, "Cancel the job before deleting it.", state=job.state)
            del self._jobs[job_id]
            return {"id": job_id, "deleted": True}

    def list_jobs(self) -> dict:
        with self._lock:
            return {"jobs": [j.to_dict(self._position(j.id)) for j in self._jobs.values()]}

    def intent(self, texts: list[str], pack: str | None) -> dict:
        """What the instruction head understands; does not wait for a running job."""
        restorer = self._last_restorer
        if restorer is None or (pack is not None and restorer.pack_id != pack):
            if not self.model_lock.acquire(timeout=0.5):
                raise HTTPError(503, "The model is busy; try again when the photo is done.")
            try:
                restorer = self._get_restorer(pack)
            finally:
                self.model_lock.release()
        results = [restorer.intent_row(t) for t in texts]
        return {"results": results, **suggestions()}

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise HTTPError(404, f"There is no job '{job_id}' (finished jobs expire).")
        return job

    def _position(self, job_id: str) -> int | None:
        ids = [j for j in self._queue if not j.startswith(_PRELOAD)]
        return ids.index(job_id) if job_id in ids else None

    def _prune(self) -> None:
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.state in FINAL_STATES]
        for n, job in enumerate(finished):
            too_many = len(finished) - n > KEEP_FINISHED
            if too_many or now - (job.finished or now) > FINISHED_TTL_S:
                del self._jobs[job.id]

    def _finish(self, job: _Job, state: str, **values: Any) -> None:
        job.state = state
        job.finished = time.monotonic()
        for key, value in values.items():
            setattr(job, key, value)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                item = self._queue.pop(0)
                preload = item.startswith(_PRELOAD)
                job = None if preload else self._jobs.get(item)
                if not preload:
                    if job is None or job.state != "queued":
                        continue
                    if job.abandoned():
                        self._finish(job, "cancelled", message="abandoned by its client")
                        continue
                    job.state, job.message = "running", "loading the model"
            try:
                if job is None:
                    self._preload(item.removeprefix(_PRELOAD) or None)
                else:
                    self._run(job)
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("bridge worker failed")

    def _load(self, pack: str | None) -> Restorer:
        if self._model_state != "ready":
            self._model_state = "loading"
        try:
            restorer = self._get_restorer(pack)
        except Exception as exc:
            self._model_state, self._model_error = "error", str(exc)
            raise
        self._last_restorer = restorer
        self._model_state, self._model_error = "ready", None
        describe = getattr(restorer, "describe", None)
        self._model_info = describe() if describe else {"pack": restorer.pack_id}
        return restorer

    def _preload(self, pack: str | None) -> None:
        with self.model_lock:
            try:
                self._load(pack)
            except InstructIRError as exc:
                log.warning("could not load the model: %s", exc)

    def _run(self, job: _Job) -> None:
        steps = job.steps

        def progress(frac: float, msg: str, i: int = 0) -> None:
            job.progress = min(1.0, (i + frac) / len(steps))
            job.message = msg

        def cancelled() -> bool:
            if job.abandoned():
                job.message = "abandoned by its client"
                return True
            return job.cancel.is_set() or self._stopping

        photo = job.photo
        assert photo is not None
        try:
            image = photo.pixels
            if photo.alpha is not None:
                image = np.dstack([photo.pixels, photo.alpha])
            with self.model_lock:
                if cancelled():
                    raise CancelledError("Cancelled.")
                restorer = self._load(job.pack)
                # "too dark and grainy": brightened, then denoised (one layer in GIMP)
                steps = [(i.text, s) for text, s in job.steps for i in restorer.plan(text)]
                for i, (text, strength) in enumerate(steps):
                    job.message = f"restoring: {text}"
                    image = restorer.restore(
                        image,
                        text,
                        strength=strength,
                        progress=lambda f, m, i=i: progress(f, m, i),
                        cancel=cancelled,
                    )
            if photo.alpha is None:
                image = image[..., :3]
            data = to_uint16(image) if job.size[2] == 16 else to_uint8(image)
        except CancelledError:
            with self._lock:
                msg = job.message if job.message.startswith("abandoned") else "cancelled"
                self._finish(job, "cancelled", message=msg)
        except (InstructIRError, ValueError) as exc:
            with self._lock:
                error = {"error": str(exc), "error_type": type(exc).__name__}
                self._finish(job, "failed", message="failed", **error)
        except Exception as exc:  # noqa: BLE001 - reported to the client, the worker goes on
            log.exception("job %s failed", job.id)
            with self._lock:
                error = {"error": f"Internal error: {exc}", "error_type": "InternalError"}
                self._finish(job, "failed", message="failed", **error)
        else:
            with self._lock:
                self._finish(job, "done", progress=1.0, message="done", result=data)
        finally:
            job.photo = None


def plain_png(samples: np.ndarray) -> bytes:
    """PNG of H x W x 1..4 uint8/uint16 samples: filter 0 on every row, deflate level 1."""
    h, w, c = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    data = samples.astype(">u2") if depth == 16 else samples.astype(np.uint8)
    rows = np.zeros((h, 1 + w * c * depth // 8), np.uint8)
    rows[:, 1:] = np.ascontiguousarray(data).view(np.uint8).reshape(h, -1)
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    idat = zlib.compress(rows.tobytes(), 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _pid() -> int:
    return os.getpid()


def default_pack_id() -> str:
    """The official pack when it is installed, otherwise the bundled lite pack."""
    from instructir_desktop.core.packs import LITE_ID, OFFICIAL_ID
    from instructir_desktop.core.store import ModelStore

    return OFFICIAL_ID if ModelStore().is_installed(OFFICIAL_ID) else LITE_ID


def serve_forever(pack_id: str | None, device: str = "auto", port: int = DEFAULT_PORT) -> int:
    """``instructir serve``: run the bridge until SIGINT/SIGTERM; returns the exit status."""
    import signal

    from instructir_desktop.core.store import ModelStore

    pack = pack_id or default_pack_id()
    try:
        ModelStore().locate(pack)
    except InstructIRError as exc:
        print(f"instructir serve: {exc}", file=sys.stderr)
        return 2
    loaded: dict[str, Restorer] = {}

    def get_restorer(wanted: str | None) -> Restorer:
        from instructir_desktop.core.restorer import Restorer

        key = wanted or pack
        if key not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[key] = Restorer(ModelStore().locate(key), device=device)
        return loaded[key]

    server = BridgeServer(get_restorer, port=port)
    try:
        server.start()
    except OSError as exc:
        reason = exc.strerror or exc
        print(
            f"instructir serve: cannot listen on 127.0.0.1:{port} ({reason}); is another "
            "bridge or InstructIR Desktop already running? Choose another --port.",
            file=sys.stderr,
        )
        return 1
    server.preload()
    print(f"InstructIR bridge on {server.url} (model {pack}, device {device}); Ctrl+C stops it.")
    sys.stdout.flush()
    done = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0
