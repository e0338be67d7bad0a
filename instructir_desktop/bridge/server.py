"""The bridge's jobs: an HTTP JSON service on 127.0.0.1 that restores photos for the GIMP
plug-in (and any other program of this user that holds the token).

Hosted by the desktop app while it runs and by ``instructir serve`` headless. No Qt here: the
server is stdlib ``http.server`` with one handler thread per connection (``handler.py``); the
model work goes through core's job pipeline (``core.jobs``), the same queue and model thread
the app's chat uses when the app hosts the bridge. The token, port and the command that starts
a bridge live in ``config_dir()/bridge.json`` (mode 0600, ``info.py``), which the plug-in
reads.

Endpoints (token in ``X-InstructIR-Token`` or ``Authorization: Bearer``; every answer is JSON
except a result, which is PNG):

- ``GET /health``: no token needed (states the upload limit, ``max_body_bytes``); adds pack,
  device and queue when the token is right.
- ``POST /jobs``: JSON ``{"image": base64, "instructions": [...], "strength", "pack",
  "lease_s", "as_written"}`` or multipart (an ``image`` file part plus the same fields) → 202
  ``{"id"}``. A ``pack`` that is not installed is refused (400, naming the installed ones).
  An unclear instruction fails the job (``UnclearInstructionError``) unless ``as_written`` is
  true.
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
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructir_desktop import __version__
from instructir_desktop.bridge.errors import HTTPError
from instructir_desktop.bridge.handler import BridgeHTTPServer, BridgeRequestHandler, suggestions
from instructir_desktop.bridge.info import (
    API_VERSION,
    DEFAULT_PORT,
    bridge_command,
    bridge_file,
    read_bridge_info,
    token_from,
    write_bridge_info,
)
from instructir_desktop.bridge.reading import HEAD_TIMEOUT_S
from instructir_desktop.core.images import Photo, encode_image, to_uint8, to_uint16
from instructir_desktop.core.jobs import (
    PRIORITY,
    Cancelled,
    Failed,
    Finished,
    IntentRequest,
    JobEvent,
    JobKind,
    JobQueue,
    JobSubmitter,
    LoadRequest,
    ModelHost,
    Progress,
    RestoreRequest,
    Started,
    Step,
    StepDone,
)
from instructir_desktop.core.png16 import png_file

__all__ = [
    "API_VERSION",
    "DEFAULT_PORT",
    "DEFAULT_MAX_BODY",
    "BridgeServer",
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
_NO_RESULT = {
    "queued": "The job is waiting its turn; its result is not ready yet.",
    "running": "The job is running; its result is not ready yet.",
    "cancelled": "The job was cancelled, so it has no result.",
    "failed": "The job failed, so it has no result.",
}
# How long POST /intent waits for the model (it runs between the tiles of a restore).
INTENT_WAIT_S = 20.0
# How often a bridge that bridge.json does not name checks whether it may take the file over.
FILE_CHECK_S = 2.0


@dataclass
class _Job:
    id: str
    steps: list[tuple[str, float]]
    pack: str | None
    lease_s: float | None
    size: tuple[int, int, int]  # width, height, bit depth of the result
    metadata: tuple[bytes | None, bytes | None]  # ICC, EXIF of the input
    alpha: bool
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting"
    error: str | None = None
    error_type: str | None = None
    result: np.ndarray | None = None  # H x W x 3|4 uint8/uint16 samples
    created: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    finished: float | None = None
    abandoned_by_client: bool = False

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

    Jobs go to ``jobs`` (the host app's model worker, or any ``core.jobs.JobSubmitter``).
    Without it the bridge runs its own ``JobQueue``, whose model comes from
    ``get_restorer(pack_id or None)`` (default: the model store). A job or reading that names
    a pack must name one of ``installed_packs()`` (default: the model store's) or the loaded
    one.

    bridge.json names one bridge, the one the plug-in uses. A bridge on the well-known port
    always writes itself into it; one on any other port (the app, when ``instructir serve``
    holds the well-known one) leaves a live bridge's record alone and takes the file over
    only once that bridge has stopped, so the plug-in never starts a second bridge beside a
    live one.
    """

    def __init__(
        self,
        get_restorer: Callable[[str | None], Any] | None = None,
        *,
        jobs: JobSubmitter | None = None,
        port: int = 0,
        token_file: Path | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        installed_packs: Callable[[], list[str]] | None = None,
    ) -> None:
        self._own_queue: JobQueue | None = None
        if jobs is None:
            loader = None
            if get_restorer is not None:
                loader = lambda request: get_restorer(request.pack_id)  # noqa: E731
            self._own_queue = JobQueue(ModelHost(loader))
            jobs = self._own_queue
        self.jobs = jobs
        self.requested_port = port
        self.token_file = Path(token_file) if token_file else bridge_file()
        self.max_body_bytes = max_body_bytes
        self.installed_packs = installed_packs or _installed_packs
        # Seconds a client has to send a request's line and headers (then 408).
        self.head_timeout_s = HEAD_TIMEOUT_S
        # The port the plug-in knows without bridge.json, and how often a bridge that the
        # file does not name looks whether it may take it over.
        self.well_known_port = DEFAULT_PORT
        self.file_check_s = FILE_CHECK_S
        self.token = token_from(read_bridge_info(self.token_file)) or secrets.token_urlsafe(32)
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._core_ids: dict[str, str] = {}  # bridge job id → pipeline job id
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: BridgeHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        return self._httpd.server_address[1] if self._httpd else self.requested_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def recorded(self) -> bool:
        """True while bridge.json names this bridge as running (the plug-in uses it)."""
        info = read_bridge_info(self.token_file)
        return bool(info and info.get("running") and self._names_me(info, self.port))

    def start(self) -> None:
        """Bind 127.0.0.1, start serving and write bridge.json (see the class); raises
        OSError if the port is taken."""
        if self._httpd is not None:
            return
        self._httpd = BridgeHTTPServer(
            ("127.0.0.1", self.requested_port), BridgeRequestHandler, self
        )
        self._stopping.clear()
        if self._own_queue is not None:
            self._own_queue.start()
        serve = threading.Thread(target=self._httpd.serve_forever, name="bridge-http", daemon=True)
        lease = threading.Thread(target=self._watch_leases, name="bridge-lease", daemon=True)
        self._threads = [serve, lease]
        for t in self._threads:
            t.start()
        if self._record(force=self.port == self.well_known_port):
            log.info("bridge listening on %s", self.url)
        else:
            log.info("bridge listening on %s; bridge.json names another live bridge", self.url)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel queued and running jobs, stop serving and mark bridge.json as not running."""
        if self._httpd is None:
            return
        port = self.port
        self._stopping.set()
        with self._lock:
            pending = list(self._core_ids.values())
        for core_id in pending:
            self.jobs.cancel(core_id)
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._own_queue is not None:
            self._own_queue.stop(timeout)
        for t in self._threads:
            t.join(timeout)
        self._httpd = None
        info = read_bridge_info(self.token_file)
        if info and self._names_me(info, port):
            info.update(running=False, pid=None)
            write_bridge_info(info, self.token_file)

    @staticmethod
    def _names_me(info: dict, port: int) -> bool:
        return info.get("pid") == os.getpid() and info.get("port") == port

    def _record(self, force: bool) -> bool:
        """Write this bridge into bridge.json, unless (without ``force``) the file names
        another live bridge, or a token this bridge does not hold (``gimp install
        --new-token``: the next bridge to start takes it up). Returns whether the file names
        this bridge."""
        info = read_bridge_info(self.token_file) or {}
        if info.get("running") and self._names_me(info, self.port):
            return True
        if not force and (info.get("running") or token_from(info) not in (None, self.token)):
            return False
        info.update(
            api=API_VERSION,
            version=__version__,
            url=self.url,
            port=self.port,
            token=self.token,
            pid=os.getpid(),
            running=True,
        )
        if not info.get("command"):
            info["command"] = bridge_command()
        write_bridge_info(info, self.token_file)
        return True

    def preload(self, pack: str | None = None) -> None:
        """Load the model now, so the first job does not wait for it."""
        d = self.jobs.host.defaults
        request = LoadRequest(None, pack or d.pack_id, d.device, d.backend, d.precision)
        self.jobs.submit(JobKind.LOAD, request, listener=_log_load_failure)

    def check_pack(self, pack: str | None) -> None:
        """Refuse (400) a pack that is neither loaded nor installed, naming the installed
        ones: a job for it would only fail on the model thread."""
        loaded = getattr(self.jobs.host.restorer, "pack_id", None)
        if pack is None or pack == loaded:
            return
        installed = sorted(set(self.installed_packs()) | ({loaded} if loaded else set()))
        if pack in installed:
            return
        names = ", ".join(installed) if installed else "none"
        message = f"The model pack '{pack}' is not installed on this computer."
        raise HTTPError(
            400,
            f"{message} Installed packs: {names}.",
            error_type="ModelNotInstalledError",
            pack=pack,
            installed=installed,
        )

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
            # Public so a client can refuse an upload that is too large before sending it.
            "max_body_bytes": self.max_body_bytes,
        }
        if authorized:
            with self._lock:
                queued = sum(j.state == "queued" for j in self._jobs.values())
                running = [j.id for j in self._jobs.values() if j.state == "running"]
            d.update(self.jobs.host.describe())
            d.update(
                queued=queued,
                running=running[0] if running else None,
            )
        return d

    def submit(
        self,
        photo: Photo,
        steps: list[tuple[str, float]],
        pack: str | None,
        lease_s: float | None,
        *,
        as_written: bool = False,
    ) -> dict:
        """Queue a job; 400 for a pack that is not installed, 503 when the queue is full.
        Unless ``as_written``, the job fails with ``UnclearInstructionError`` when an
        instruction is unclear (the app's threshold)."""
        from instructir_desktop.core.packs import DEFAULT_MIN_CONFIDENCE

        self.check_pack(pack)
        depth = 16 if photo.bit_depth > 8 else 8
        job = _Job(
            uuid.uuid4().hex,
            steps,
            pack,
            lease_s,
            size=(photo.width, photo.height, depth),
            metadata=(photo.icc_profile, photo.exif),
            alpha=photo.alpha is not None,
        )
        image = photo.pixels
        if photo.alpha is not None:
            image = np.dstack([photo.pixels, photo.alpha])
        request = RestoreRequest(
            image,
            [Step(text, strength) for text, strength in steps],
            pack=pack,
            plan=True,  # "too dark and grainy": brightened, then denoised (one GIMP layer)
            min_confidence=None if as_written else DEFAULT_MIN_CONFIDENCE,
        )
        with self._lock:
            if self._stopping.is_set():
                raise HTTPError(503, "The bridge is shutting down.")
            if sum(j.state == "queued" for j in self._jobs.values()) >= MAX_QUEUED:
                raise HTTPError(503, "Too many photos are waiting; try again in a moment.")
            self._prune()
            self._jobs[job.id] = job
            core = self.jobs.submit(
                JobKind.RESTORE,
                request,
                priority=PRIORITY["preview"],
                listener=lambda ev, job=job: self._on_event(job, ev),
            )
            if job.state not in FINAL_STATES:
                self._core_ids[job.id] = core.job_id
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
                msg = job.error or _NO_RESULT.get(job.state, "The job has no result.")
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
            core_id = self._core_ids.get(job_id)
            if job.state == "queued":
                self._finish(job, "cancelled", message="cancelled")
            elif job.state == "running":
                job.message = "cancelling"
        if core_id is not None:
            self.jobs.cancel(core_id)
        with self._lock:
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
        """What the instruction head understands. Runs on the model thread between the tiles
        of a running restore, so it does not wait for the photo."""
        self.check_pack(pack)
        submitted = [
            self.jobs.submit(JobKind.INTENT, IntentRequest(text, rows=True, pack=pack))
            for text in texts
        ]
        deadline = time.monotonic() + INTENT_WAIT_S
        results = []
        try:
            for job in submitted:
                results.append(job.result(max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            for job in submitted:
                self.jobs.cancel(job.job_id)
            raise HTTPError(503, "The model is still loading; try again in a moment.") from None
        return {"results": results, **suggestions()}

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise HTTPError(404, f"There is no job '{job_id}' (finished jobs expire).")
        return job

    def _position(self, job_id: str) -> int | None:
        queued = [j.id for j in self._jobs.values() if j.state == "queued"]
        return queued.index(job_id) if job_id in queued else None

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
        self._core_ids.pop(job.id, None)
        for key, value in values.items():
            setattr(job, key, value)

    def _watch_leases(self) -> None:
        """Cancel jobs whose client stopped polling (GIMP killed the plug-in); now and then,
        take bridge.json over when the bridge it names has stopped."""
        next_check = time.monotonic() + self.file_check_s
        while not self._stopping.wait(min(0.25, self.file_check_s)):
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + self.file_check_s
                try:
                    self._record(force=False)
                except OSError as exc:
                    log.warning("could not write %s: %s", self.token_file, exc)
            with self._lock:
                gone = [
                    (job, self._core_ids.get(job.id))
                    for job in self._jobs.values()
                    if job.state not in FINAL_STATES and job.abandoned()
                ]
                for job, _ in gone:
                    job.abandoned_by_client = True
                    if job.state == "queued":
                        self._finish(job, "cancelled", message="abandoned by its client")
            for _, core_id in gone:
                if core_id is not None:
                    self.jobs.cancel(core_id)

    def _on_event(self, job: _Job, ev: JobEvent) -> None:
        """Pipeline events of one bridge job (called on the model thread)."""
        if isinstance(ev, Finished):
            image = ev.result if job.alpha else ev.result[..., :3]
            data = to_uint16(image) if job.size[2] == 16 else to_uint8(image)
        with self._lock:
            if job.state in FINAL_STATES:
                return
            if isinstance(ev, Started):
                job.state, job.message = "running", "restoring"
            elif isinstance(ev, Progress):
                job.progress, job.message = min(1.0, ev.fraction), ev.message
            elif isinstance(ev, StepDone):
                job.message = f"done: {ev.instruction}"
            elif isinstance(ev, Finished):
                self._finish(job, "done", progress=1.0, message="done", result=data)
            elif isinstance(ev, Cancelled):
                reason = "abandoned by its client" if job.abandoned_by_client else "cancelled"
                self._finish(job, "cancelled", message=reason)
            elif isinstance(ev, Failed):
                self._finish(
                    job, "failed", message="failed", error=ev.error, error_type=ev.error_type
                )


def _installed_packs() -> list[str]:
    """The ids of the packs installed (or bundled) on this computer."""
    from instructir_desktop.core.store import ModelStore

    return [status.id for status in ModelStore().list() if status.installed]


def _log_load_failure(ev: JobEvent) -> None:
    if isinstance(ev, Failed):
        log.warning("could not load the model: %s", ev.error)


def plain_png(samples: np.ndarray) -> bytes:
    """PNG of H x W x 1..4 uint8/uint16 samples: filter 0 on every row, deflate level 1."""
    h, w, c = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    data = samples.astype(">u2") if depth == 16 else samples.astype(np.uint8)
    rows = np.zeros((h, 1 + w * c * depth // 8), np.uint8)
    rows[:, 1:] = np.ascontiguousarray(data).view(np.uint8).reshape(h, -1)
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return png_file(w, h, depth, colour, zlib.compress(rows.tobytes(), 1))
