"""Applying a recipe to many photos in the background (Qt state, no widgets).

The photos go through ``core.batch`` (the next photo decoded and the previous one written
while the model works) on a driver thread; every model step is a job on the app's one
``ModelWorker`` queue, below the interactive renders, so editing stays responsive. Outputs are
planned up front with the command line's rules (``core.outputs``): originals are never
overwritten and two photos never share a name. A photo that fails is marked failed with its
reason and the batch goes on. State changes reach the GUI thread through a ``Dispatcher``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from instructir_desktop.core.adjust import EXPOSURE_TASK
from instructir_desktop.core.errors import CancelledError
from instructir_desktop.core.images import Photo, save_image
from instructir_desktop.core.outputs import plan_outputs
from instructir_desktop.core.recipe import (
    Recipe,
    RecipeStep,
    apply_recipe,
    load_mask,
    mask_png,
)

from .display import screen_transform
from .stack import thumbnail
from .threads import Dispatcher

__all__ = ["FORMATS", "BatchItem", "RecipeBatch", "add_recipe_layers", "recipe_from_layers"]

# Output format choices: (label, core.outputs format or None to keep the input's, bit depth)
FORMATS = {
    "keep": ("Same as each photo", None, None),
    "jpeg": ("JPEG", "jpeg", 8),
    "png": ("PNG", "png", None),
    "tiff16": ("TIFF 16-bit", "tiff", 16),
}
# Below the interactive renders (preview 2, full 3): the open photo keeps priority.
BATCH_PRIORITY = 4


@dataclass
class BatchItem:
    """One photo of the batch, as the dialog lists it."""

    source: Path
    target: Path
    state: str = "waiting"  # waiting | running | done | failed | cancelled
    progress: float = 0.0
    error: str = ""
    output: Path | None = None
    thumbnail: np.ndarray | None = None
    warning: str = ""


def recipe_from_layers(layers: Sequence, pack: str, name: str = "") -> tuple[Recipe, dict]:
    """The document's layer stack as a recipe (hidden layers are disabled steps). A layer's
    mask (float H x W) travels inside the recipe as PNG bytes, so applying the recipe uses
    it and ``save_recipe`` writes it beside the file; the second value maps step index to
    mask for callers that want the arrays."""
    steps, masks, data = [], {}, {}
    for i, layer in enumerate(layers):
        mask = getattr(layer, "mask", None)
        mask_name = None
        if mask is not None:
            masks[i] = mask
            mask_name = f"layer-{i + 1}.png"
            data[mask_name] = mask_png(mask)
        steps.append(
            RecipeStep(layer.instruction, float(layer.strength), bool(layer.visible), mask_name,
                       getattr(layer, "adjust", None))
        )  # fmt: skip
    return Recipe(steps, pack, name, mask_data=data), masks


def add_recipe_layers(session, recipe: Recipe) -> int:
    """Put the recipe's steps on top of the open photo's layers as one undoable step (the
    render scheduler restores them like any new layer). Returns how many layers were added."""
    from . import commands
    from .document import Layer, new_layer_id

    source = session.document.source
    if source is None or not recipe.steps:
        return 0
    takes_mask = "mask" in {f.name for f in dataclasses.fields(Layer)}
    layers = []
    for step in recipe.steps:
        task, confidence = (EXPOSURE_TASK, 1.0) if step.adjust is not None else ("", 0.0)
        layer = Layer(
            new_layer_id(),
            step.instruction,
            step.strength,
            step.enabled,
            task=task,
            confidence=confidence,
            adjust=step.adjust,
        )
        if step.mask is not None and takes_mask:
            size = (source.photo.width, source.photo.height)
            mask, warning = load_mask(recipe, step, size)
            layer = dataclasses.replace(layer, mask=mask[..., 0])
            if warning:
                session.warning.emit(warning)
        layers.append(layer)
    stack = session.undo_stack
    added = []
    stack.beginMacro(f"Apply recipe “{recipe.name}”")
    for layer in layers:  # each command takes its index from the stack as it is
        added.append(commands.AddLayer(session.document, layer))
        stack.push(added[-1])
    stack.endMacro()
    session.read_tasks([c for c in added if not c.layer.task])  # for the layers' labels
    return len(layers)


class RecipeBatch(QObject):
    """One batch at a time: ``start``, ``pause``/``resume`` (between photos), ``cancel``."""

    itemChanged = Signal(int)  # index into ``items``
    progressChanged = Signal(float, float)  # fraction of the batch, seconds left (-1: unknown)
    warning = Signal(str)
    finished = Signal(int, int)  # photos done, photos failed

    def __init__(self, worker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.items: list[BatchItem] = []
        self._dispatch = Dispatcher(self)
        self._thread: threading.Thread | None = None
        self._paused = threading.Event()
        self._cancelled = threading.Event()
        self._job_id = ""
        self._started = 0.0
        self._finished = True
        self.paused = False

    @property
    def running(self) -> bool:
        """From ``start`` until ``finished`` is emitted."""
        return not self._finished

    def plan(self, inputs: Sequence[Path], output: Path, fmt: str = "keep") -> list[BatchItem]:
        """The items the batch would write (raises OutputPathError / UnsupportedImageError)."""
        pairs = plan_outputs(list(inputs), Path(output), FORMATS[fmt][1])
        return [BatchItem(src, dst) for src, dst in pairs]

    def start(
        self,
        recipe: Recipe,
        inputs: Sequence[Path],
        output: Path,
        *,
        fmt: str = "keep",
        quality: int = 95,
        tile: int | None = None,
    ) -> None:
        """Plan the outputs (errors raised here, before anything runs), then run in the
        background."""
        if self.running:
            raise RuntimeError("a batch is already running")
        self.items = self.plan(inputs, output, fmt)
        self._paused.clear()
        self._cancelled.clear()
        self.paused = False
        self._finished = False
        self._started = time.monotonic()
        depth = FORMATS[fmt][2]
        fmt_name = FORMATS[fmt][1]
        self._thread = threading.Thread(
            target=self._run,
            args=(recipe, quality, tile, depth, fmt_name),
            name="instructir-recipe-batch",
            daemon=True,
        )
        self._thread.start()

    def pause(self) -> None:
        """Stop after the current photo until ``resume``."""
        self._paused.set()
        self.paused = True

    def resume(self) -> None:
        self._paused.clear()
        self.paused = False

    def cancel(self) -> None:
        """Stop now: the running photo is dropped at its next tile; written ones stay."""
        self._cancelled.set()
        self._paused.clear()
        if self._job_id:
            self.worker.cancel(self._job_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Join the driver thread (tests, closing the app)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    # The driver thread

    def _set(self, index: int, **fields) -> None:
        def apply() -> None:
            item = self.items[index]
            for key, value in fields.items():
                setattr(item, key, value)
            self.itemChanged.emit(index)
            self._report_progress()

        self._dispatch.post(apply)

    def _report_progress(self) -> None:
        n = len(self.items) or 1
        finished = sum(i.state in ("done", "failed") for i in self.items)
        running = sum(i.progress for i in self.items if i.state == "running")
        fraction = min(1.0, (finished + running) / n)
        elapsed = time.monotonic() - self._started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else -1.0
        self.progressChanged.emit(fraction, eta)

    def _run(self, recipe: Recipe, quality: int, tile, depth, fmt_name) -> None:
        from instructir_desktop.core.batch import run_batch
        from instructir_desktop.core.jobs import JobKind

        def run(request, listener):
            job = self.worker.submit(
                JobKind.RESTORE, request, priority=BATCH_PRIORITY, listener=listener
            )
            self._job_id = job.job_id
            if self._cancelled.is_set():
                self.worker.cancel(job.job_id)
            try:
                return job.result()
            finally:
                self._job_id = ""

        def process(index: int, _src: Path, photo: Photo) -> np.ndarray:
            while self._paused.is_set() and not self._cancelled.is_set():
                time.sleep(0.05)
            if self._cancelled.is_set():
                raise CancelledError("Cancelled.")
            self._set(index, state="running", progress=0.0)
            last = [0.0]

            def progress(fraction: float, _ev) -> None:
                if fraction - last[0] >= 0.02 or fraction >= 1.0:
                    last[0] = fraction
                    self._set(index, progress=fraction)

            def warn(text: str) -> None:
                self._set(index, warning=text)
                self._dispatch.post(self.warning.emit, text)

            return apply_recipe(photo.pixels, recipe, run, tile=tile, progress=progress, warn=warn)

        def save(photo: Photo, pixels: np.ndarray, dst: Path) -> Path:
            result = photo.with_pixels(pixels)
            fmt = fmt_name.upper() if fmt_name else None
            bits = depth if fmt not in (None, "PNG") else None
            written = save_image(result, dst, format=fmt, quality=quality, bit_depth=bits)
            small = thumbnail(pixels, to_screen=screen_transform(photo.icc_profile, photo.grey))
            self._set(self._index_of(dst), thumbnail=small)
            return written

        def report(result) -> None:
            if result.ok:
                self._set(result.index, state="done", progress=1.0, output=result.output)
            else:
                self._set(result.index, state="failed", error=result.error)

        plans = [(item.source, item.target) for item in self.items]
        try:
            run_batch(plans, process, save, report, cancelled=self._cancelled.is_set)
        except CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - reported on every photo left, not raised
            for i, item in enumerate(self.items):
                self._set(i, state="failed", error=str(exc)) if item.state == "waiting" else None
        self._dispatch.post(self._finish)

    def _index_of(self, target: Path) -> int:
        return next(i for i, item in enumerate(self.items) if item.target == target)

    def _finish(self) -> None:
        self._finished = True
        for i, item in enumerate(self.items):
            if item.state in ("waiting", "running"):
                item.state = "cancelled"
                self.itemChanged.emit(i)
        done = sum(i.state == "done" for i in self.items)
        failed = sum(i.state == "failed" for i in self.items)
        self._report_progress()
        self.finished.emit(done, failed)
