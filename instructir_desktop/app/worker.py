"""The one long-lived worker thread that owns the model.

It runs core's job pipeline (``core.jobs.JobQueue``): loading a pack, reading an
instruction's intent and restoring an image wait in one priority queue, whether they come
from the chat, the render scheduler or the GIMP bridge the app hosts. Events of the app's own
jobs come back through the ``event`` signal, which belongs to this QThread object (a
GUI-thread QObject), so receivers get them queued on the GUI thread; a job submitted with its
own listener (a bridge job) reports to that listener instead. torch is imported here, inside
the thread, so the window shows before it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

if TYPE_CHECKING:
    from instructir_desktop.core.jobs import Job, JobKind, JobQueue, ModelHost

__all__ = ["ModelWorker"]


class ModelWorker(QThread):
    """Runs the one JobQueue; the thread starts on the first job."""

    event = Signal(object)  # a core.jobs.JobEvent of a job submitted without a listener

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("instructir-model")
        self._queue: JobQueue | None = None
        self._stopping = False

    @property
    def queue(self) -> JobQueue:
        """The pipeline; created on first use (core.jobs is light, the restorer loads torch
        only when a job needs it)."""
        if self._queue is None:
            from instructir_desktop.core.jobs import JobQueue

            self._queue = JobQueue(listener=self.event.emit)
        return self._queue

    @property
    def host(self) -> ModelHost:
        return self.queue.host

    # Any thread (the bridge submits from its HTTP threads)

    def submit(
        self,
        kind: JobKind,
        request: Any,
        *,
        priority: int | None = None,
        tag: Any = None,
        listener=None,
    ) -> Job:
        """Queue a job (``core.jobs.JobSubmitter``); starts the thread on first use."""
        job = self.queue.submit(kind, request, priority=priority, tag=tag, listener=listener)
        if not self.isRunning() and not self._stopping:
            self.start()
        return job

    def cancel(self, job_id: str) -> None:
        """Ask a job to stop: before it starts, or at its next tile boundary."""
        if self._queue is not None:
            self._queue.cancel(job_id)

    # GUI-thread API

    def load(
        self,
        pack_dir: Path | None,
        pack_id: str = "",
        device: str = "auto",
        backend: str = "auto",
        precision: str = "auto",
    ) -> str:
        """Load a pack (``pack_dir`` wins; else ``pack_id``; else the default pack)."""
        from instructir_desktop.core.jobs import JobKind, LoadRequest

        request = LoadRequest(pack_dir or None, pack_id or None, device, backend, precision)
        return self.submit(JobKind.LOAD, request).job_id

    def intent(self, text: str, split: bool = True) -> str:
        """The steps a message asks for (a list of Intents; one unless ``split`` finds more)."""
        from instructir_desktop.core.jobs import IntentRequest, JobKind

        return self.submit(JobKind.INTENT, IntentRequest(text, split)).job_id

    def restore(
        self,
        image: np.ndarray,
        instruction: str,
        *,
        level: str,
        tile: int | None,
        tag: Any = None,
        quick: bool = False,
    ) -> str:
        """Restore ``image``; ``level`` (preview/full) sets the priority, ``tag`` comes back;
        ``quick``: a first render, which may run in a standard tile shape."""
        from instructir_desktop.core.jobs import PRIORITY, JobKind, RestoreRequest, Step

        request = RestoreRequest(image, [Step(instruction)], tile=tile or None, quick=quick)
        return self.submit(JobKind.RESTORE, request, priority=PRIORITY[level], tag=tag).job_id

    def prepare(
        self, sizes: list[tuple[int, int]], tile: int | None, quick: list[tuple[int, int]]
    ) -> None:
        """Let the loaded model get ready for photos of these (height, width) sizes and for
        quick renders of the ``quick`` sizes (it compiles their shapes in the background);
        nothing when no model is loaded."""
        restorer = self._queue.host.restorer if self._queue is not None else None
        if restorer is not None and hasattr(restorer, "prepare"):
            restorer.prepare(sizes, tile, quick)

    def stop(self, timeout_ms: int = 60000) -> None:
        """Cancel everything and end the thread (waits for the current tile)."""
        self._stopping = True
        if self._queue is not None:
            self._queue.stop(timeout=0)
        if self.isRunning():
            self.wait(timeout_ms)

    @property
    def loaded(self) -> bool:
        return self._queue is not None and self._queue.host.restorer is not None

    def run(self) -> None:
        self.queue.run_forever()
