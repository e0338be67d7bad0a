"""The one long-lived worker thread that owns the model.

Jobs (load a pack, read an instruction's intent, restore an image) wait in a priority queue
and report back with ``core.restorer.JobEvent`` through the ``event`` signal, which belongs to
this QThread object (a GUI-thread QObject), so receivers get them queued on the GUI thread.
Cancellation is a flag checked between tiles. torch is imported here, inside the thread, so
the window shows before it is loaded.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from instructir_desktop.core.errors import ModelNotInstalledError

__all__ = ["ModelWorker", "Job", "PRIORITY", "NoModelError"]

log = logging.getLogger(__name__)

# Lower runs first: a new instruction's intent must not wait behind a background render.
PRIORITY = {"load": 0, "intent": 1, "preview": 2, "full": 3}


class NoModelError(ModelNotInstalledError):
    """No model pack is installed (or none is loaded yet)."""


@dataclass
class Job:
    """One unit of work for the model thread."""

    kind: str  # load | intent | restore
    priority: int
    payload: dict
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    cancelled: threading.Event = field(default_factory=threading.Event)


class ModelWorker(QThread):
    """Owns the Restorer; runs one job at a time while holding ``model_lock``."""

    event = Signal(object)  # core.restorer.JobEvent, with extra["kind"] = job kind

    def __init__(self, model_lock: threading.Lock | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("instructir-model")
        self.model_lock = model_lock or threading.Lock()
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self._jobs: dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        self._restorer = None  # core.restorer.Restorer, touched only under _state_lock
        self._state_lock = threading.Lock()
        self._device = "auto"
        self._others: dict[str, Any] = {}
        self._stopping = False

    # GUI-thread API

    def submit(self, kind: str, priority: int, **payload) -> str:
        """Queue a job; returns its id. Starts the thread on first use."""
        job = Job(kind, priority, payload)
        with self._jobs_lock:
            self._jobs[job.job_id] = job
        self._queue.put((priority, next(self._seq), job))
        if not self.isRunning() and not self._stopping:
            self.start()
        return job.job_id

    def load(
        self, pack_dir: Path | None, pack_id: str = "", device: str = "auto", backend: str = "auto"
    ) -> str:
        """Load a pack (``pack_dir`` wins; else ``pack_id``; else the default pack)."""
        return self.submit(
            "load",
            PRIORITY["load"],
            pack_dir=pack_dir,
            pack_id=pack_id,
            device=device,
            backend=backend,
        )

    def intent(self, text: str, split: bool = True) -> str:
        """The steps a message asks for (a list of Intents; one unless ``split`` finds more)."""
        return self.submit("intent", PRIORITY["intent"], text=text, split=split)

    def restore(
        self, image: np.ndarray, instruction: str, *, level: str, tile: int | None, tag: Any = None
    ) -> str:
        """Restore ``image``; ``level`` (preview/full) sets the priority, ``tag`` comes back."""
        return self.submit(
            "restore",
            PRIORITY[level],
            image=image,
            instruction=instruction,
            tile=tile,
            tag=tag,
            level=level,
        )

    def cancel(self, job_id: str) -> None:
        """Ask a job to stop: before it starts, or at its next tile boundary."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.cancelled.set()

    def stop(self, timeout_ms: int = 60000) -> None:
        """Cancel everything and end the thread (waits for the current tile)."""
        self._stopping = True
        with self._jobs_lock:
            for job in self._jobs.values():
                job.cancelled.set()
        if self.isRunning():
            self._queue.put((-1, next(self._seq), None))
            self.wait(timeout_ms)

    @property
    def loaded(self) -> bool:
        with self._state_lock:
            return self._restorer is not None

    # Any thread: used by the GIMP bridge, which takes model_lock around its own jobs.

    def restorer_for(self, pack_id: str | None = None):
        """The loaded Restorer, or one for another installed pack (loaded once, then kept)."""
        with self._state_lock:
            current = self._restorer
            if current is not None and pack_id in (None, current.pack_id):
                return current
            if pack_id in self._others:
                return self._others[pack_id]
        from instructir_desktop.core.restorer import Restorer
        from instructir_desktop.core.store import ModelStore

        if pack_id is None:
            raise NoModelError("InstructIR is still loading its model; try again in a moment.")
        restorer = Restorer(ModelStore().locate(pack_id), device=self._device)
        with self._state_lock:
            return self._others.setdefault(pack_id, restorer)

    # The thread

    def run(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None:
                break
            try:
                if job.cancelled.is_set():
                    self._emit(job, "cancelled")
                    continue
                self._run_job(job)
            finally:
                with self._jobs_lock:
                    self._jobs.pop(job.job_id, None)

    def _emit(self, job: Job, event: str, **kw) -> None:
        # Imported here, in the worker thread: core.restorer pulls in torch.
        from instructir_desktop.core.restorer import JobEvent

        extra = kw.pop("extra", {})
        extra.setdefault("kind", job.kind)
        extra.setdefault("tag", job.payload.get("tag"))
        self.event.emit(JobEvent(event, job.job_id, extra=extra, **kw))

    def _run_job(self, job: Job) -> None:
        from instructir_desktop.core.errors import CancelledError, InstructIRError

        handler = {"load": self._load, "intent": self._intent, "restore": self._restore}
        try:
            handler[job.kind](job)
        except CancelledError:
            self._emit(job, "cancelled")
        except (InstructIRError, NoModelError) as exc:
            self._emit(job, "error", error=str(exc), extra={"error_type": type(exc).__name__})
        except MemoryError:
            self._emit(job, "error", error=_OOM, extra={"error_type": "MemoryError"})
        except Exception as exc:  # noqa: BLE001 - the worker must survive anything a job does
            log.error("model job failed:\n%s", traceback.format_exc())
            message = _OOM if "out of memory" in str(exc).lower() else f"The model failed: {exc}"
            self._emit(job, "error", error=message, extra={"error_type": type(exc).__name__})

    def _load(self, job: Job) -> None:
        from instructir_desktop.core import packs

        info = {
            "tasks": list(packs.TASKS),
            "titles": dict(packs.TASK_TITLES),
            "prompts": dict(packs.TASK_PROMPTS),
            "official_id": packs.OFFICIAL_ID,
        }
        self._emit(job, "started", extra={"catalog": info})
        from instructir_desktop.core.restorer import Restorer, available_devices

        info["devices"] = available_devices()
        pack_dir = job.payload.get("pack_dir") or None
        try:
            pack_dir = Path(pack_dir) if pack_dir else _default_pack(job.payload.get("pack_id"))
            if not (pack_dir / "manifest.json").is_file():
                raise NoModelError(f"There is no model pack in {pack_dir} (no manifest.json).")
        except NoModelError as exc:
            self._emit(
                job, "error", error=str(exc), extra={"error_type": "NoModelError", "catalog": info}
            )
            return
        device = job.payload.get("device") or "auto"
        t0 = time.perf_counter()
        with self.model_lock:
            with self._state_lock:
                self._restorer = None
                self._others.clear()
            restorer = Restorer(pack_dir, device=device, backend=job.payload.get("backend", "auto"))
            restorer.intent("warm up")  # loads the sentence encoder now, not on the first message
        with self._state_lock:
            self._restorer, self._device = restorer, device
        description = restorer.describe()
        description["name"] = restorer.manifest.name
        description["seconds"] = round(time.perf_counter() - t0, 2)
        self._emit(job, "result", progress=1.0, result=description, extra={"catalog": info})

    def _require(self):
        with self._state_lock:
            restorer = self._restorer
        if restorer is None:
            raise NoModelError("No model is loaded. Open Models… to install one.")
        return restorer

    def _intent(self, job: Job) -> None:
        restorer = self._require()
        with self.model_lock:
            text = job.payload["text"]
            plan = (
                restorer.plan(text) if job.payload.get("split", True) else [restorer.intent(text)]
            )
        self._emit(job, "result", progress=1.0, result=plan)

    def _restore(self, job: Job) -> None:
        restorer = self._require()
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] > 0.05 or fraction >= 1.0:  # no more than ~20 events a second
                last[0] = now
                self._emit(job, "progress", progress=fraction, message=message)

        self._emit(job, "started")
        with self.model_lock:
            result = restorer.restore(
                job.payload["image"],
                job.payload["instruction"],
                progress=progress,
                cancel=lambda: job.cancelled.is_set() or self._stopping,
                tile=job.payload.get("tile") or None,
            )
        if job.cancelled.is_set():
            self._emit(job, "cancelled")
            return
        self._emit(job, "result", progress=1.0, result=result, extra={"pack": restorer.pack_id})


_OOM = (
    "There is not enough memory to run the model on this photo. Close other programs, choose "
    "a smaller tile size in Preferences, or switch the device to CPU in Models."
)


def _default_pack(pack_id: str | None) -> Path:
    """The chosen pack, else the official one if installed, else the bundled lite pack."""
    from instructir_desktop.core.errors import ModelError
    from instructir_desktop.core.packs import LITE_ID, OFFICIAL_ID
    from instructir_desktop.core.store import ModelStore

    store = ModelStore()
    if pack_id:
        try:
            return store.locate(pack_id)
        except ModelError as exc:
            raise NoModelError(str(exc)) from exc
    for candidate in (OFFICIAL_ID, LITE_ID):
        try:
            return store.locate(candidate)
        except ModelError:
            continue
    raise NoModelError(
        "No model is installed yet. Open Models… to download the official InstructIR model "
        "or import its files."
    )
