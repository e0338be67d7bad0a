"""The render scheduler: keeps the composite of the document up to date, smallest level first.

The levels of a photo run from small to large: ``first`` (a few hundred pixels, a result in
a fraction of a second), ``preview`` (display size) and ``full``; a photo has only those
smaller than itself. On every change the scheduler walks the stack on the compute thread
(blending only, from the cache) for each target in order: the smallest level of the
document, a pending new instruction at that level (the layer is added once it exists), then
each larger level of the document. The first restore the cache lacks becomes one job for the
model worker; when its result lands in the cache the walk starts again. A running job whose
key is no longer needed by the current stack is cancelled; a result that arrives late is
still cached (its key says exactly what it is), so undoing back to it is instant. What is
shown is always the largest frame of the current document: a smaller one never replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from instructir_desktop.core.jobs import (
    Cancelled,
    Failed,
    Finished,
    JobEvent,
    JobKind,
    Progress,
)
from instructir_desktop.core.tiling import QUICK_BOXES

from .document import Document, Layer
from .stack import (
    Missing,
    Pyramid,
    RenderCache,
    StepSpec,
    build_pyramid,
    chain,
    evaluate,
    thumbnail,
)
from .threads import Background
from .worker import ModelWorker

__all__ = ["Level", "Frame", "RenderScheduler"]


@dataclass(frozen=True)
class Level:
    """The source at one resolution: ``first`` (small), ``preview`` (display size), ``full``."""

    name: str
    base: np.ndarray
    fingerprint: str

    @property
    def size(self) -> tuple[int, int]:
        return int(self.base.shape[0]), int(self.base.shape[1])


@dataclass(frozen=True)
class Frame:
    """A finished composite of the document at one level, with its display pyramid."""

    level: str
    fingerprint: str
    image: np.ndarray
    pyramid: Pyramid


@dataclass
class _Job:
    job_id: str
    level: str
    key: tuple
    target: str  # "doc" or "pending"
    layer_id: str


class RenderScheduler(QObject):
    """Turns document changes into model jobs and frames; never blocks the GUI thread."""

    frameReady = Signal(object)  # Frame
    progress = Signal(float, str)
    activityChanged = Signal(str)  # idle | preview | pending | full | paused | waiting
    failed = Signal(str)
    pendingReady = Signal(str)  # layer id: its preview is rendered, the layer can be added
    pendingFailed = Signal(str, str)  # layer id, message
    pendingCancelled = Signal(str)
    thumbnailReady = Signal(str, object)  # layer id, uint8 RGB array
    waitersDropped = Signal(str)  # a full-resolution wait (export) ended without a frame

    def __init__(
        self,
        document: Document,
        worker: ModelWorker,
        background: Background,
        cache: RenderCache,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.doc, self.worker, self.bg, self.cache = document, worker, background, cache
        self.pack: str | None = None
        self.tile: int | None = None
        self._levels: list[Level] = []
        self._source_pyramid: Pyramid | None = None
        self._pending: Layer | None = None
        self._job: _Job | None = None
        self._submitted: dict[str, tuple] = {}
        self._failed: set[tuple] = set()
        self._frames: dict[str, Frame] = {}
        self._shown: Frame | None = None  # the frame last given to frameReady
        self._waiters: list[Callable[[Frame], None]] = []
        self._gen = 0
        self._evaluating = False
        self._dirty = False
        self._waiting = False  # the last walk needs the model, which is not loaded yet
        self._paused = False
        self._activity = "idle"
        # Built and read only on the compute thread.
        self._pyramids: dict[str, Pyramid] = {}
        self._thumb_fps: dict[str, str] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)  # coalesce bursts of changes (slider drags) into one walk
        self._timer.timeout.connect(self._replan)
        document.layersChanged.connect(self._on_document_changed)
        worker.event.connect(self._on_worker_event)

    # Configuration

    def configure(self, *, pack: str | None = None, tile: int | None = None) -> None:
        """Set the loaded pack id (part of every cache key) and the tile size."""
        self.pack = pack
        self.tile = tile or None
        self._failed.clear()
        self._prepare()
        self.invalidate()

    def _prepare(self) -> None:
        """Have the model get ready for this photo's levels while the user types; with no
        photo open, for the first render of any photo (``QUICK_BOXES``)."""
        if self.pack is None:
            return
        quick = [lv.size for lv in self._levels if lv.name == "first"]
        if not self._levels:
            quick = list(QUICK_BOXES)
        sizes = [lv.size for lv in self._levels if lv.name != "first"]
        self.worker.prepare(sizes, self.tile, quick)

    def set_levels(self, levels: list[Level], source_pyramid: Pyramid) -> None:
        """A new source photo: ``levels`` ordered preview first, full last."""
        self._drop_waiters("another photo was opened.")
        if self._job is not None:
            self.worker.cancel(self._job.job_id)
            self._job = None
        self._levels = list(levels)
        self._source_pyramid = source_pyramid
        # The bare photo's frame reuses the source pyramid (built while opening), in order
        # with the walks on the compute thread that owns _pyramids.
        self.bg.run(
            self.bg.compute,
            lambda: self._pyramids.__setitem__(source_pyramid.fingerprint, source_pyramid),
        )
        self._frames.clear()
        self._shown = None
        self._failed.clear()
        self._pending = None
        self._paused = False
        self._prepare()
        self.invalidate()

    @property
    def source_pyramid(self) -> Pyramid | None:
        return self._source_pyramid

    @property
    def levels(self) -> list[Level]:
        return list(self._levels)

    # State for the UI and tests

    def current_fp(self, level: str = "full") -> str | None:
        """Fingerprint the composite of the current document has at ``level`` (no pixels)."""
        for lv in self._levels:
            if lv.name == level:
                links = chain(lv.fingerprint, self.doc.steps(), self.pack or "", lv.size)
                return links[-1].output_fp if links else lv.fingerprint
        return None

    def frame(self, level: str = "full") -> Frame | None:
        """The frame of ``level`` if it shows the current document, else None."""
        frame = self._frames.get(level)
        if frame is not None and frame.fingerprint == self.current_fp(level):
            return frame
        return None

    def best_frame(self) -> Frame | None:
        """The largest level whose frame shows the current document."""
        for level in reversed(self._levels):
            frame = self.frame(level.name)
            if frame is not None:
                return frame
        return None

    @property
    def activity(self) -> str:
        return self._activity

    @property
    def idle(self) -> bool:
        """Nothing running and every level current."""
        return (
            self._job is None
            and not self._evaluating
            and not self._timer.isActive()
            and self._pending is None
            and all(self.frame(lv.name) is not None for lv in self._levels)
        )

    def when_full(self, callback: Callable[[Frame], None]) -> None:
        """Call back with the full-resolution frame of the current document (now or later)."""
        frame = self.frame("full")
        if frame is not None:
            callback(frame)
            return
        self._waiters.append(callback)
        if self._paused:
            self.resume()

    # Pending instruction (a new layer that is only added once its preview exists)

    def set_pending(self, layer: Layer) -> None:
        self._pending = layer
        self._paused = False
        self._failed.clear()  # the user asks again: a failed render deserves another try
        self.invalidate()

    def clear_pending(self) -> None:
        self._pending = None
        self.invalidate()

    @property
    def pending(self) -> Layer | None:
        return self._pending

    # User control

    def cancel(self) -> None:
        """Stop the running job; a pending instruction is dropped, the document is unchanged."""
        if self._pending is not None:
            layer_id = self._pending.id
            self._pending = None
            self.pendingCancelled.emit(layer_id)
        if self._job is not None:
            self.worker.cancel(self._job.job_id)
            self._job = None
        self._paused = True
        self._drop_waiters("Cancelled.")
        self._set_activity("paused" if not self.idle else "idle")

    def _drop_waiters(self, reason: str) -> None:
        if self._waiters:
            self._waiters = []
            self.waitersDropped.emit(reason)

    def resume(self) -> None:
        self._paused = False
        self.invalidate()

    def invalidate(self) -> None:
        """Schedule a walk of the stack (coalesced)."""
        self._timer.start()

    # Internals

    def _on_document_changed(self) -> None:
        self._paused = False  # a new edit restarts rendering after a Cancel
        self._failed.clear()
        self.invalidate()

    def _set_activity(self, activity: str) -> None:
        if activity != self._activity:
            self._activity = activity
            self.activityChanged.emit(activity)

    def _targets(self) -> list[tuple[Level, str, list[StepSpec]]]:
        steps = self.doc.steps()
        targets = [(self._levels[0], "doc", steps)]
        if self._pending is not None:
            targets.append((self._levels[0], "pending", [*steps, self._pending.step()]))
        targets.extend((level, "doc", steps) for level in self._levels[1:])
        return targets

    def _replan(self) -> None:
        if not self._levels:
            return
        if self._evaluating:
            self._dirty = True
            return
        self._gen += 1
        targets = self._targets()
        pack = self.pack or ""
        if self._job is not None:
            needed = {
                link.key
                for level, _, steps in targets
                for link in chain(level.fingerprint, steps, pack, level.size)
            }
            if self._job.key not in needed:
                self.worker.cancel(self._job.job_id)
                self._job = None
        self._evaluating = True
        self._dirty = False
        self._waiting = False
        gen = self._gen
        pending_id = self._pending.id if self._pending is not None else None
        width = self._levels[-1].base.shape[1]
        source = self._source_pyramid
        screen = source.to_screen if source is not None else None  # the photo's, for the screen
        self.bg.run(
            self.bg.compute,
            lambda: self._walk(gen, targets, pack, pending_id, width, screen),
            self._walk_done,
            self._walk_failed,
        )

    def _walk(
        self, gen: int, targets, pack: str, pending_id: str | None, width: int, screen
    ) -> None:
        """Compute thread: composite each target as far as the cache allows; pyramids and
        thumbnails go through ``screen`` (the photo's profile to sRGB, or None)."""
        post = self.bg.dispatcher.post
        for n, (level, target, steps) in enumerate(targets):
            result = evaluate(level.base, level.fingerprint, steps, pack, self.cache)
            if n == 0 or target == "pending":
                for layer_id, (fp, image) in result.outputs.items():
                    if self._thumb_fps.get(layer_id) != fp:
                        self._thumb_fps[layer_id] = fp
                        small = thumbnail(image, to_screen=screen)
                        post(self.thumbnailReady.emit, layer_id, small)
            if result.missing is not None:
                post(self._on_missing, gen, level.name, target, result.missing)
                return
            if target == "pending":
                post(self._on_pending_done, gen, pending_id)
                continue
            pyramid = self._pyramids.get(result.fingerprint)
            if pyramid is None:
                pyramid = build_pyramid(result.image, width, result.fingerprint, to_screen=screen)
                self._pyramids = {
                    **dict(list(self._pyramids.items())[-3:]),
                    result.fingerprint: pyramid,
                }
            post(self._on_frame, Frame(level.name, result.fingerprint, result.image, pyramid))

    def _walk_done(self, _result: Any) -> None:
        self._evaluating = False
        if self._dirty:
            self._replan()
        elif self._job is None and self._waiting:
            self._set_activity("waiting")  # layers to render once the model has loaded
        elif self._job is None:
            self._set_activity("paused" if self._paused and not self.idle else "idle")

    def _walk_failed(self, exc: BaseException) -> None:
        self._evaluating = False
        self.failed.emit(f"The preview could not be composed: {exc}")

    def _on_frame(self, frame: Frame) -> None:
        if frame.fingerprint != self.current_fp(frame.level):
            return  # the document moved on while this was composed
        known = self._frames.get(frame.level)
        if known is None or known.fingerprint != frame.fingerprint:
            self._frames[frame.level] = frame
        # What is shown is the largest level of this document there is: the new frame, or a
        # larger one kept from before (an undo back to a state rendered in full).
        best = self.best_frame()
        if best is None or best is self._shown:
            return
        self._shown = best
        self.frameReady.emit(best)
        if best.level == "full" and self._waiters:
            waiters, self._waiters = self._waiters, []
            for callback in waiters:
                callback(best)

    def _on_pending_done(self, gen: int, layer_id: str | None) -> None:
        if gen == self._gen and self._pending is not None and self._pending.id == layer_id:
            self.pendingReady.emit(layer_id)

    def _on_missing(self, gen: int, level: str, target: str, missing: Missing) -> None:
        if gen != self._gen or self._paused or missing.key in self._failed:
            return
        if self.pack is None:
            self._waiting = True
            self._set_activity("waiting")  # the model is still loading; configure() resumes
            return
        if self._job is not None:
            if self._job.key == missing.key:
                return
            self.worker.cancel(self._job.job_id)  # something more urgent comes first
        priority = "full" if level == "full" and len(self._levels) > 1 else "preview"
        job_id = self.worker.restore(
            missing.image,
            missing.instruction,
            level=priority,
            tile=self.tile,
            quick=level == "first",
        )
        self._submitted[job_id] = missing.key
        self._job = _Job(job_id, level, missing.key, target, missing.layer_id)
        self._set_activity("pending" if target == "pending" else priority)
        self.progress.emit(0.0, self._describe(self._job, ""))

    def _describe(self, job: _Job, message: str) -> str:
        what = {
            "pending": "Applying the instruction",
            "preview": "Updating the preview",
            "full": "Rendering full resolution",
        }[self._activity if self._activity in ("pending", "preview", "full") else "preview"]
        return f"{what}… {message}".strip()

    def _on_worker_event(self, ev: JobEvent) -> None:
        if ev.kind is not JobKind.RESTORE:
            return
        key = self._submitted.get(ev.job_id)
        if isinstance(ev, Finished) and key is not None:
            self.cache.put_restored(key, ev.result)  # valid even if no longer current
        final = isinstance(ev, (Finished, Failed, Cancelled))
        if final:
            self._submitted.pop(ev.job_id, None)
        job = self._job
        if job is None or job.job_id != ev.job_id:
            return
        if isinstance(ev, Progress):
            self.progress.emit(ev.fraction, self._describe(job, ev.message))
        elif isinstance(ev, (Finished, Cancelled)):
            self._job = None
            self.progress.emit(1.0, "")
            if not self._paused:
                self.invalidate()
        elif isinstance(ev, Failed):
            self._job = None
            self._failed.add(job.key)
            self.progress.emit(1.0, "")
            self._set_activity("idle")
            if job.target == "pending" and self._pending is not None:
                self._pending = None
                self.pendingFailed.emit(job.layer_id, ev.error)
            else:
                self.failed.emit(ev.error)
                self._drop_waiters(ev.error)
