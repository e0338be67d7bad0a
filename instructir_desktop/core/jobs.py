"""The one job pipeline: every front end (app, CLI, bridge) runs the model through it.

A job is a kind (load a pack, read an instruction, restore a photo) plus one request object.
A :class:`JobQueue` keeps the jobs in priority order and runs them one at a time on the one
thread that owns the model (its :class:`ModelHost`); each job reports typed events
(:class:`Started`, :class:`Progress`, :class:`StepDone`, :class:`Finished`,
:class:`Cancelled`, :class:`Failed`) to its listener. Cancelling sets a flag that the
restorer checks between tiles; reading an instruction is cheap, so queued intent jobs run
between the tiles of a long restore instead of waiting for it.

Headless front ends start the queue's own thread (:meth:`JobQueue.start`) or run a job in
the calling thread (:meth:`JobQueue.run`); the desktop app runs :meth:`JobQueue.run_forever`
in its model QThread. No Qt here.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CancelledError, InstructIRError
from .jobtypes import (
    OUT_OF_MEMORY,
    PRIORITY,
    Cancelled,
    Failed,
    Finished,
    IntentRequest,
    Job,
    JobEvent,
    JobKind,
    JobSubmitter,
    Listener,
    LoadRequest,
    NoModelError,
    Notice,
    Progress,
    RestoreRequest,
    Started,
    Step,
    StepDone,
)

__all__ = [
    "JobKind",
    "PRIORITY",
    "Step",
    "LoadRequest",
    "IntentRequest",
    "RestoreRequest",
    "JobEvent",
    "Started",
    "Progress",
    "StepDone",
    "Notice",
    "Finished",
    "Cancelled",
    "Failed",
    "Job",
    "JobSubmitter",
    "ModelHost",
    "JobQueue",
    "NoModelError",
    "OUT_OF_MEMORY",
    "default_pack_dir",
]

log = logging.getLogger(__name__)

# Progress events per job and second, at most: more only costs the receivers.
_PROGRESS_HZ = 20

RestorerLoader = Callable[[LoadRequest], Any]


class ModelHost:
    """The loaded model (one pack at a time), touched only by the queue's worker thread.

    ``loader(LoadRequest)`` builds a restorer (default: ``core.restorer.Restorer`` from the
    model store); tests and tools pass their own. ``state`` and ``describe()`` may be read
    from any thread.
    """

    def __init__(
        self,
        loader: RestorerLoader | None = None,
        *,
        device: str = "auto",
        backend: str = "auto",
        precision: str = "auto",
        default_pack: str | None = None,
    ) -> None:
        self._loader = loader or _load_restorer
        self.defaults = LoadRequest(
            pack_id=default_pack, device=device, backend=backend, precision=precision
        )
        self.restorer: Any = None
        self.state = "not loaded"  # not loaded | loading | ready | error
        self.error: str | None = None
        self.load_seconds = 0.0

    def load(self, request: LoadRequest) -> Any:
        """Load a pack and make it the current one (the previous one is released first)."""
        self.state, self.error = "loading", None
        self.restorer = None
        t0 = time.perf_counter()
        try:
            restorer = self._loader(request)
        except Exception as exc:
            self.state, self.error = "error", str(exc)
            raise
        self.restorer, self.state = restorer, "ready"
        self.defaults = LoadRequest(
            pack_id=getattr(restorer, "pack_id", request.pack_id),
            device=request.device,
            backend=request.backend,
            precision=request.precision,
        )
        self.load_seconds = time.perf_counter() - t0
        return restorer

    def get(self, pack: str | None = None) -> Any:
        """The loaded restorer for ``pack`` (None: whatever is loaded), loading it if needed.

        A pack other than the default that fails to load fails the job that asked for it
        only: the host is then "not loaded" (the default loads again with the next job), not
        in "error", which says the default model itself is broken."""
        current = self.restorer
        if current is not None and pack in (None, getattr(current, "pack_id", None)):
            return current
        d = self.defaults
        request = LoadRequest(None, pack or d.pack_id, d.device, d.backend, d.precision)
        if pack is None or pack == d.pack_id:
            return self.load(request)
        try:
            return self.load(request)
        except Exception:
            self.state, self.error = "not loaded", None
            raise

    def describe(self) -> dict:
        """State, and pack/device/backend of the loaded model, for status displays."""
        d: dict = {"model": self.state, "model_error": self.error}
        describe = getattr(self.restorer, "describe", None)
        if describe is not None:
            d.update(describe())
        elif self.restorer is not None:
            d["pack"] = getattr(self.restorer, "pack_id", None)
        return d


class JobQueue:
    """Jobs in priority order, run one at a time by the thread that owns ``host``."""

    def __init__(self, host: ModelHost | None = None, listener: Listener | None = None) -> None:
        self.host = host or ModelHost()
        self._listener = listener
        self._jobs: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._running: Job | None = None
        self._thread: threading.Thread | None = None

    # Any thread

    def submit(
        self,
        kind: JobKind,
        request: Any,
        *,
        priority: int | None = None,
        tag: Any = None,
        listener: Listener | None = None,
    ) -> Job:
        """Queue a job; events go to ``listener`` (else the queue's listener)."""
        if priority is None:
            priority = PRIORITY["preview" if kind is JobKind.RESTORE else kind.value]
        job = Job(kind, request, priority, tag, listener)
        with self._cond:
            if self._stopping:
                raise InstructIRError("InstructIR is shutting down.")
            self._jobs.append((priority, next(self._seq), job))
            self._jobs.sort(key=lambda item: item[:2])
            self._cond.notify_all()
        return job

    def cancel(self, job_id: str) -> None:
        """Ask a job to stop: before it starts, or at its next tile boundary."""
        with self._cond:
            for _, _, job in self._jobs:
                if job.job_id == job_id:
                    job.cancelled.set()
            if self._running is not None and self._running.job_id == job_id:
                self._running.cancelled.set()

    def cancel_all(self) -> None:
        with self._cond:
            for _, _, job in self._jobs:
                job.cancelled.set()
            if self._running is not None:
                self._running.cancelled.set()

    def pending(self) -> list[Job]:
        """Queued jobs in the order they will run (the running one excluded)."""
        with self._cond:
            return [job for _, _, job in self._jobs]

    @property
    def running(self) -> Job | None:
        return self._running

    def start(self) -> JobQueue:
        """Run the queue on its own daemon thread (headless front ends)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run_forever, name="instructir-model", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        """Cancel everything; the worker loop ends after the current tile."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.cancel_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self, kind: JobKind, request: Any, listener: Listener | None = None) -> Any:
        """Run one job now, in the calling thread (the command line); its result or its
        error raised."""
        job = Job(kind, request, 0, None, listener)
        self.execute(job)
        return job.result(0)

    # The model thread

    def run_forever(self) -> None:
        """Take jobs until ``stop()``; the caller's thread becomes the model thread."""
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    leftover, self._jobs = self._jobs, []
                    job = None
                else:
                    _, _, job = self._jobs.pop(0)
                    self._running = job
            if job is None:
                for _, _, waiting in leftover:
                    ev = Cancelled(job_id=waiting.job_id, kind=waiting.kind, tag=waiting.tag)
                    self._finish(waiting, ev)
                return
            try:
                self.execute(job)
            finally:
                with self._cond:
                    self._running = None

    def execute(self, job: Job) -> None:
        """Run one job to its final event (never raises)."""
        ev = dict(job_id=job.job_id, kind=job.kind, tag=job.tag)
        if job.cancelled.is_set() or self._stopping:
            self._finish(job, Cancelled(**ev))
            return
        try:
            if job.kind is JobKind.LOAD:
                final = self._load(job)
            elif job.kind is JobKind.INTENT:
                final = self._intent(job)
            else:
                final = self._restore(job)
        except CancelledError:
            final = Cancelled(**ev)
        except InstructIRError as exc:
            final = Failed(**ev, error=str(exc), error_type=type(exc).__name__)
        except MemoryError:
            final = Failed(**ev, error=OUT_OF_MEMORY, error_type="MemoryError")
        except Exception as exc:  # noqa: BLE001 - the model thread must survive any job
            log.error("model job failed:\n%s", traceback.format_exc())
            oom = "out of memory" in str(exc).lower()
            message = OUT_OF_MEMORY if oom else f"Internal error: the model failed ({exc})."
            final = Failed(**ev, error=message, error_type="InternalError")
        self._finish(job, final)

    def _emit(self, job: Job, event: JobEvent) -> None:
        listener = job.listener or self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a broken receiver must not kill the model thread
            log.exception("a job listener failed")

    def _finish(self, job: Job, event: JobEvent) -> None:
        job.outcome = event
        job.done.set()
        self._emit(job, event)

    def _load(self, job: Job) -> JobEvent:
        from . import packs

        info = {
            "tasks": list(packs.TASKS),
            "titles": dict(packs.TASK_TITLES),
            "prompts": dict(packs.TASK_PROMPTS),
            "official_id": packs.OFFICIAL_ID,
        }
        try:
            from .restorer import available_devices

            info["devices"] = available_devices()
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        self._emit(job, Started(job_id=job.job_id, kind=job.kind, tag=job.tag, info=info))
        request: LoadRequest = job.request
        t0 = time.perf_counter()
        restorer = self.host.load(request)
        describe = getattr(restorer, "describe", None)
        description = describe() if describe else {"pack": restorer.pack_id}
        manifest = getattr(restorer, "manifest", None)
        description["name"] = getattr(manifest, "name", description.get("pack"))
        description["seconds"] = round(time.perf_counter() - t0, 2)
        return Finished(
            job_id=job.job_id, kind=job.kind, tag=job.tag, result=description, pack=restorer.pack_id
        )

    def _intent(self, job: Job) -> JobEvent:
        request: IntentRequest = job.request
        restorer = self.host.get(request.pack)
        if request.rows:
            plan = restorer.intent_row(request.text)
        elif request.split:
            plan = restorer.plan(request.text)
        else:
            plan = [restorer.intent(request.text)]
        return Finished(
            job_id=job.job_id, kind=job.kind, tag=job.tag, result=plan, pack=restorer.pack_id
        )

    def _run_waiting_intents(self) -> None:
        """Between two tiles: answer queued intent jobs for the loaded pack (milliseconds
        each) right away instead of after the restore."""
        current = getattr(self.host.restorer, "pack_id", None)
        with self._cond:
            intents = [
                item
                for item in self._jobs
                if item[2].kind is JobKind.INTENT and item[2].request.pack in (None, current)
            ]
            for item in intents:
                self._jobs.remove(item)
        for _, _, job in intents:
            self.execute(job)

    def _restore(self, job: Job) -> JobEvent:
        request: RestoreRequest = job.request
        ev = dict(job_id=job.job_id, kind=job.kind, tag=job.tag)
        if not request.steps:
            raise InstructIRError("Give at least one instruction.")
        restorer = self.host.get(request.pack)
        steps = _planned_steps(restorer, request)
        self._emit(job, Started(**ev))
        last = [0.0]

        def cancelled() -> bool:
            if job.cancelled.is_set() or self._stopping:
                return True
            self._run_waiting_intents()
            return job.cancelled.is_set() or self._stopping

        image = request.image
        for i, step in enumerate(steps):

            def progress(fraction: float, message: str, i: int = i) -> None:
                now = time.monotonic()
                if now - last[0] < 1 / _PROGRESS_HZ and fraction < 1.0:
                    return
                last[0] = now
                tile, tiles = _tile_counts(message)
                whole = (i + fraction) / len(steps)
                self._emit(
                    job,
                    Progress(
                        **ev,
                        fraction=min(1.0, whole),
                        message=message,
                        step=i,
                        steps=len(steps),
                        tile=tile,
                        tiles=tiles,
                    ),
                )

            # A fixed tile or a quick render only when asked: restorers without tiling take
            # no such arguments.
            tile = {"tile": request.tile} if request.tile else {}
            if request.quick:
                tile["quick"] = True
            if step.exposure is not None:
                image = _adjust_exposure(image, step)
            else:
                image = restorer.restore(
                    image,
                    step.instruction,
                    strength=step.strength,
                    progress=progress,
                    cancel=cancelled,
                    **tile,
                )
            for notice in getattr(restorer, "notices", ()):
                self._emit(job, Notice(**ev, message=notice))
            self._emit(
                job, StepDone(**ev, step=i + 1, steps=len(steps), instruction=step.instruction)
            )
        if cancelled():
            raise CancelledError("Cancelled.")
        return Finished(**ev, result=image, pack=restorer.pack_id)


def _adjust_exposure(image: np.ndarray, step: Step) -> np.ndarray:
    """An exposure step: no model, blended by its strength like a restore (alpha kept)."""
    from .adjust import darken_stops, exposure

    rgb = np.asarray(image[..., :3], np.float32)
    stops = darken_stops(rgb) if step.exposure == "auto" else float(step.exposure)
    adjusted = rgb + np.float32(step.strength) * (exposure(rgb, stops) - rgb)
    if image.shape[2] == 4:
        adjusted = np.concatenate([adjusted, image[..., 3:]], axis=2)
    return adjusted.astype(np.float32)


def _planned_steps(restorer: Any, request: RestoreRequest) -> list[Step]:
    """The steps to run: split into one per fix when asked, refused below the gate."""
    from .errors import UnclearInstructionError

    steps: list[Step] = []
    for step in request.steps:
        if step.exposure is not None or (not request.plan and request.min_confidence is None):
            steps.append(step)
            continue
        plan = (
            restorer.plan(step.instruction) if request.plan else [restorer.intent(step.instruction)]
        )
        gate = request.min_confidence
        if gate is not None and gate > 0:
            flagged = next((i for i in plan if getattr(i, "note", "")), None)
            if flagged is not None:
                raise UnclearInstructionError(f"Cannot apply {flagged.text!r}: {flagged.note}")
            unsure = next((i for i in plan if i.confidence < gate), None)
            if unsure is not None:
                raise UnclearInstructionError(
                    f"The instruction {unsure.text!r} is unclear: the model is only "
                    f"{unsure.confidence * 100:.0f}% sure it asks for {unsure.task}. Say what "
                    "is wrong with the photo, e.g. 'too dark', 'remove the noise', 'it is "
                    "blurry', or apply it as written."
                )
        if request.plan:
            steps.extend(Step(i.text, step.strength) for i in plan)
        else:
            steps.append(step)
    return steps


def _tile_counts(message: str) -> tuple[int, int]:
    """(done, total) from the restorer's "tile n/N" progress message."""
    head, _, rest = message.partition("tile ")
    done, _, total = rest.partition("/")
    try:
        return int(done), int(total.split()[0])
    except (ValueError, IndexError):
        return 0, 0


def _load_restorer(request: LoadRequest) -> Any:
    from .restorer import Restorer

    pack_dir = Path(request.pack_dir) if request.pack_dir else default_pack_dir(request.pack_id)
    if not (pack_dir / "manifest.json").is_file():
        raise NoModelError(f"There is no model pack in {pack_dir} (no manifest.json).")
    restorer = Restorer(
        pack_dir, device=request.device, backend=request.backend, precision=request.precision
    )
    restorer.intent("warm up")  # loads the sentence encoder now, not on the first message
    return restorer


def default_pack_dir(pack_id: str | None) -> Path:
    """The chosen pack, else the official one if installed, else the bundled lite pack."""
    from .errors import ModelError
    from .packs import LITE_ID, OFFICIAL_ID
    from .store import ModelStore

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
