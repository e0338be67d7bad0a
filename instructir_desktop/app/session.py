"""The editing session: the one object the widgets talk to.

It owns the document, the undo stack, the model worker, the render scheduler, the chat log,
autosave and the GIMP bridge, and turns user intent (a typed instruction, a click on a
suggestion, a slider move) into jobs and undo commands.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from instructir_desktop.core.adjust import EXPOSURE_TASK, darken_stops
from instructir_desktop.core.degree import GENTLE_STRENGTH, gentle
from instructir_desktop.core.edit_commands import edit_command
from instructir_desktop.core.jobs import (
    Cancelled,
    Failed,
    Finished,
    JobEvent,
    JobKind,
    Started,
)
from instructir_desktop.core.packs import TASK_TITLES

from . import commands
from .advice import darkens, layer_advice, weak_spot
from .assess import PhotoAssessor
from .autosave import Autosaver, find_recoverable
from .bridge_host import BridgeHost
from .chat_commands import carry_out
from .chatlog import ChatLog
from .document import Document, Layer, new_layer_id
from .opening import OpeningMixin
from .render import RenderScheduler
from .saving import SavingMixin
from .settings import Settings
from .stack import RenderCache
from .threads import Background
from .worker import ModelWorker

__all__ = ["EditorSession", "PACK_DIR_ENV", "BACKEND_ENV"]

log = logging.getLogger(__name__)
PACK_DIR_ENV = "INSTRUCTIR_PACK_DIR"
BACKEND_ENV = "INSTRUCTIR_BACKEND"  # forces the inference backend (auto, torch, openvino)


class EditorSession(OpeningMixin, SavingMixin, QObject):
    """Application state and actions, without widgets."""

    error = Signal(str)  # something failed; show it, the app stays usable
    warning = Signal(str)  # worth the user's attention, nothing failed
    info = Signal(str)  # a short status message
    catalogReady = Signal(object)  # {"tasks", "titles", "prompts", "devices"}
    modelChanged = Signal(object)  # Restorer.describe() dict, or None while none is loaded
    modelMissing = Signal(str)
    documentOpened = Signal()
    openFailed = Signal(str)
    selectionChanged = Signal(str)
    dirtyChanged = Signal(bool)
    projectSaved = Signal(str)
    saveFailed = Signal(str)
    exported = Signal(str)
    exportFailed = Signal(str)
    thumbnailChanged = Signal(str)  # layer id
    editRefused = Signal(str, str, str)  # layer id, the new instruction, why it was not applied
    recoveryAvailable = Signal(object)  # list[Recoverable]
    suggestionsRequested = Signal()
    compareRequested = Signal(bool)  # the chat asked to compare with the original ("compare")
    heldSent = Signal(str)  # an instruction typed while the photo opened went in once it showed

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pack_dir: Path | None = None,
        bridge: bool | None = None,
        autosave: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or Settings(parent=self)
        env_pack = os.environ.get(PACK_DIR_ENV)
        self.pack_dir = Path(pack_dir) if pack_dir else (Path(env_pack) if env_pack else None)
        self.document = Document(self)
        self.undo_stack = QUndoStack(self)
        self.background = Background(self)
        self.cache = RenderCache(self.settings.cache_mb << 20)
        self.worker = ModelWorker(self)
        self.scheduler = RenderScheduler(
            self.document, self.worker, self.background, self.cache, self
        )
        self.chat = ChatLog(self)
        self.autosaver = Autosaver(self._autosave_snapshot, self.background, self)
        self.bridge = BridgeHost(self.worker)
        self._bridge_wanted = self.settings.bridge_enabled if bridge is None else bridge
        self._autosave_enabled = autosave
        self.catalog: dict = {}
        self.model: dict | None = None
        self.model_problem = ""
        self.thumbnails: dict[str, object] = {}
        self.selected = ""
        # the mask a layer made from the chat starts with (the UI's mask tools set it)
        self.new_layer_mask: Callable[[], np.ndarray | None] | None = None
        self._intent_jobs: dict[str, tuple[int, bool]] = {}
        self._edit_jobs: dict[str, tuple[str, str, bool]] = {}  # job → (layer, text, force)
        self._label_jobs: dict[str, commands.AddLayer] = {}  # job → a layer added unread
        self._load_job = ""
        self._queue: deque[tuple[int, Layer]] = deque()
        self._pending_message = 0
        self._force_dirty = False
        self._started = False
        self._opening = 0  # photos being decoded (``OpeningMixin``)
        self._held_text = ""  # an instruction typed while one opened
        self.worker.event.connect(self._on_worker_event)
        self.scheduler.pendingReady.connect(self._on_pending_ready)
        self.scheduler.pendingFailed.connect(self._on_pending_failed)
        self.scheduler.pendingCancelled.connect(self._on_pending_cancelled)
        self.scheduler.thumbnailReady.connect(self._on_thumbnail)
        self.scheduler.failed.connect(self.error)
        self._exports_waiting = 0  # exports waiting for the full-resolution render
        self._exports_writing = 0  # exports on the I/O thread
        self.scheduler.waitersDropped.connect(self._on_exports_dropped)
        self.document.layersChanged.connect(self._on_layers_changed)
        self.undo_stack.cleanChanged.connect(lambda _clean: self._emit_dirty())
        self.undo_stack.indexChanged.connect(lambda _i: self.autosaver.mark_dirty())
        self.autosaver.failed.connect(lambda msg: log.warning("autosave failed: %s", msg))
        self.settings.changed.connect(self._on_setting)
        self.assessor = PhotoAssessor(self)  # what the photo itself suggests, for the chat

    # Lifecycle

    def start(self) -> None:
        """Load the model, host the bridge, look for crashed sessions (after the window shows)."""
        if self._started:
            return
        self._started = True
        self.reload_model()
        if self._autosave_enabled:
            self.autosaver.set_interval(self.settings.autosave_seconds)
            self.background.run(self.background.io, find_recoverable, self._on_recoverable)
        if self._bridge_wanted:
            self._start_bridge()

    def shutdown(self) -> None:
        """Stop threads; called once when the window closes."""
        # Widgets and stacks are being torn down: no more state signals from here on.
        self.undo_stack.cleanChanged.disconnect()
        self.undo_stack.indexChanged.disconnect()
        self.document.layersChanged.disconnect()
        self.scheduler.cancel()
        self.worker.stop()
        self.bridge.stop()
        self.background.shutdown()
        self.autosaver.close()
        self.settings.sync()

    def reload_model(self) -> None:
        """(Re)load the pack named by settings or the override folder, on the chosen device."""
        self.model = None
        self.modelChanged.emit(None)
        backend = os.environ.get(BACKEND_ENV) or self.settings.backend
        self._load_job = self.worker.load(
            self.pack_dir, self.settings.pack, self.settings.device, backend
        )

    def _start_bridge(self) -> None:
        # bridge.py imports core modules that load torch: import it off the GUI thread.
        def started(ok: object) -> None:
            if ok:
                self.info.emit(f"GIMP can use InstructIR ({self.bridge.url}).")

        self.background.run(self.background.io, self.bridge.start, started)

    def _on_setting(self, name: str, value: object) -> None:
        if name in ("device", "pack", "backend"):
            self.reload_model()
        elif name == "tile":
            self.scheduler.configure(pack=self.scheduler.pack, tile=int(value))
        elif name == "cache_mb":
            self.cache.max_bytes = int(value) << 20
        elif name == "autosave_seconds" and self._autosave_enabled and self._started:
            self.autosaver.set_interval(int(value))
        elif name == "bridge_enabled" and self._started:
            if value:
                self._start_bridge()
            else:
                self.bridge.stop()

    # State

    @property
    def has_photo(self) -> bool:
        return self.document.source is not None

    @property
    def dirty(self) -> bool:
        return self.has_photo and (self._force_dirty or not self.undo_stack.isClean())

    def _emit_dirty(self) -> None:
        self.dirtyChanged.emit(self.dirty)

    def task_title(self, task: str) -> str:
        """The task's display name ("Brighten"), the same before and after the model loads."""
        if task == EXPOSURE_TASK:
            return "Exposure"
        return self.catalog.get("titles", {}).get(task) or TASK_TITLES.get(task, task.capitalize())

    # Chat → layers

    def submit(self, text: str, *, force: bool = False) -> int | None:
        """An instruction from the chat box. Returns the chat message id (None: nothing sent).

        The layer is only added once its preview is rendered, so a cancel (or a failure)
        leaves the document unchanged. While a photo opens, an instruction waits for it
        (None here; ``heldSent`` once it goes in).
        """
        cleaned = " ".join(text.split())
        if not cleaned:
            self.suggestionsRequested.emit()
            return None
        command = edit_command(cleaned)
        if self.opening and command is None:  # meant for the photo being opened
            self.hold_until_open(cleaned)
            return None
        if not self.has_photo:
            self.error.emit("Open a photo first (File → Open, drag and drop, or paste).")
            return None
        if command is not None:  # "undo", "a bit less": done here, at once, without the model
            message = self.chat.add(cleaned, state="done")
            self.chat.update(message.id, note=carry_out(self, command))
            return message.id
        message = self.chat.add(cleaned)
        job = self.worker.intent(cleaned, split=self.settings.split_messages)
        self._intent_jobs[job] = (message.id, force)
        return message.id

    def apply_task(self, task: str) -> int | None:
        """One-click suggestion: apply the task's standard instruction."""
        prompt = self.catalog.get("prompts", {}).get(task)
        if not prompt:
            return None
        if not self.has_photo:
            return self.submit(prompt)  # says what to do first
        # The user named the task: no reading to wait for, and the chip says what was picked
        # (the model's reading of the prompt could differ, and is not what was asked).
        message = self.chat.add(prompt, task=task, title=self.task_title(task), picked=True)
        self._enqueue(message.id, prompt, task, 1.0)
        return message.id

    def apply_anyway(self, message_id: int) -> None:
        """Apply an instruction whose intent was unclear, as written."""
        message = self.chat.get(message_id)
        if message.state == "unclear":
            self._enqueue(message.id, message.text, message.task, message.confidence)

    def again(self, text: str, task: str, confidence: float, strength: float | None = None) -> None:
        """An instruction once more, as a new message and layer ("again" in the chat); its
        strength, unless given, is what its words ask for."""
        message = self.chat.add(text, task=task, title=self.task_title(task), confidence=confidence)
        if task == EXPOSURE_TASK:
            self._enqueue(message.id, text, task, 1.0, self._darken_stops(), strength)
        else:
            self._enqueue(message.id, text, task, confidence, strength=strength)

    def waiting_instruction(self) -> str:
        """The newest instruction not applied yet (read, queued or rendering), or ""."""
        waiting = [m for m, _ in self._intent_jobs.values()] + [m for m, _ in self._queue]
        if self.scheduler.pending is not None:
            waiting.append(self._pending_message)
        return self.chat.get(max(waiting)).text if waiting else ""

    def _on_intent(self, ev) -> None:
        edit = self._edit_jobs.pop(ev.job_id, None)
        if edit is not None:
            self._on_edit_read(ev, *edit)
            return
        added = self._label_jobs.pop(ev.job_id, None)
        if added is not None:
            if isinstance(ev, Finished) and ev.result:
                added.set_reading(ev.result[0].task, float(ev.result[0].confidence))
            return
        message_id, force = self._intent_jobs.pop(ev.job_id, (0, False))
        if not message_id:
            return
        if isinstance(ev, Failed):
            self.chat.update(message_id, state="failed", note=ev.error)
            if ev.error_type == "NoModelError":
                self.modelMissing.emit(ev.error)
            return
        if not isinstance(ev, Finished):
            return
        plan = ev.result
        if len(plan) > 1:
            self._split(message_id, plan)
            return
        intent = plan[0]
        if darkens(intent):
            self._darken(message_id, intent.text)
            return
        self.chat.update(
            message_id,
            task=intent.task,
            title=self.task_title(intent.task),
            confidence=float(intent.confidence),
        )
        if force or (not intent.note and intent.confidence >= self.settings.min_confidence):
            self._enqueue(message_id, intent.text, intent.task, float(intent.confidence))
        else:
            self._unclear(message_id, intent)

    def _unclear(self, message_id: int, intent) -> None:
        if intent.note:  # "it's too bright": the model would brighten it further
            note = f"{intent.note} Pick another fix, or apply it as written."
            # No "Brighten · 100%" chip: that reading is the very thing being warned about.
            self.chat.update(message_id, state="unclear", note=note, title="")
        else:
            note = "I am not sure what to fix. Pick one, or apply it as written."
            self.chat.update(message_id, state="unclear", note=note)

    def _split(self, message_id: int, plan: list) -> None:
        """A message that asks for several fixes ("too dark and grainy"): one layer each, in
        the order written, each with its own message, chip, thumbnail and undo."""
        dark_steps = [darkens(step) for step in plan]
        titles = [
            self.task_title(EXPOSURE_TASK if dark else step.task)
            for step, dark in zip(plan, dark_steps)
        ]
        applied = [t for step, t, dark in zip(plan, titles, dark_steps) if dark or not step.note]
        held = [f"“{step.text}”" for step, dark in zip(plan, dark_steps) if step.note and not dark]
        if len(applied) > 1:
            note = f"{len(plan)} fixes, applied in this order: {', then '.join(applied)}."
        else:
            note = f"{len(plan)} fixes. Applied: {', '.join(applied) or 'none'}."
        if held:
            note += f" Not applied, see below: {', '.join(held)}."
        self.chat.update(message_id, state="split", note=note)
        for step, title, dark in zip(plan, titles, dark_steps):
            message = self.chat.add(
                step.text,
                task=step.task,
                title=title,
                confidence=float(step.confidence),
                part_of=message_id,
            )
            if dark:
                self._darken(message.id, step.text)
            elif step.note:
                self._unclear(message.id, step)
            else:
                self._enqueue(message.id, step.text, step.task, float(step.confidence))

    def _darken(self, message_id: int, text: str) -> None:
        """A request to darken: an exposure adjustment layer (no model), in the queue like any
        fix so that the order of a split message holds. The amount brings the photo's mean
        to middle grey, within 0.5..2 stops; the layer's strength weakens it."""
        title = self.task_title(EXPOSURE_TASK)
        self.chat.update(message_id, task=EXPOSURE_TASK, title=title, confidence=1.0)
        self._enqueue(message_id, text, EXPOSURE_TASK, 1.0, adjust=self._darken_stops())

    def _darken_stops(self) -> float:
        levels = self.scheduler.levels
        return darken_stops(levels[0].base if levels else self.document.source.photo.pixels)

    def _enqueue(
        self,
        message_id: int,
        text: str,
        task: str,
        confidence: float,
        adjust: float | None = None,
        strength: float | None = None,
    ) -> None:
        """Queue a new layer; its strength, unless given, is what the words ask for ("brighten
        it a little": GENTLE_STRENGTH, core.degree)."""
        if strength is None:
            strength = GENTLE_STRENGTH if gentle(text) else 1.0
        mask = self.new_layer_mask() if self.new_layer_mask is not None else None
        layer = Layer(new_layer_id(), text, strength, True, task, confidence, adjust, mask=mask)
        self.chat.update(message_id, state="queued", layer_id=layer.id, note="")
        self._queue.append((message_id, layer))
        self._next_pending()

    def _next_pending(self) -> None:
        if self.scheduler.pending is not None or not self._queue:
            return
        message_id, layer = self._queue.popleft()
        self._pending_message = message_id
        self.chat.update(message_id, state="rendering")
        self.scheduler.set_pending(layer)

    def _on_pending_ready(self, layer_id: str) -> None:
        layer = self.scheduler.pending
        if layer is None or layer.id != layer_id:
            return
        self.scheduler.clear_pending()
        self.undo_stack.push(commands.AddLayer(self.document, layer))
        self.chat.update(
            self._pending_message,
            state="applied",
            thumbnail=self.thumbnails.get(layer_id),
            advice=layer_advice(self.model_pack(), layer),
            offer_models=bool(weak_spot(self.model_pack(), layer.task)),
            **({"note": "Applied to the selected area."} if layer.mask is not None else {}),
        )
        self.select_layer(layer_id)
        self._next_pending()

    def _on_pending_failed(self, layer_id: str, message: str) -> None:
        self.chat.update(self._pending_message, state="failed", note=message)
        self.error.emit(message)
        self._next_pending()

    def _on_pending_cancelled(self, _layer_id: str) -> None:
        self.chat.update(self._pending_message, state="cancelled", note="Cancelled.")
        while self._queue:  # Cancel means stop: queued instructions go too
            message_id, _ = self._queue.popleft()
            self.chat.update(message_id, state="cancelled", note="Cancelled.")

    def cancel(self) -> None:
        """The Cancel button: stop the running job; a new instruction is dropped."""
        for job in list(self._intent_jobs):
            self.worker.cancel(job)
            self.chat.update(self._intent_jobs.pop(job)[0], state="cancelled", note="Cancelled.")
        self.scheduler.cancel()
        self.info.emit("Cancelled.")

    def _on_thumbnail(self, layer_id: str, image: object) -> None:
        if layer_id in self.thumbnails and self.document.has_layer(layer_id):
            layer = self.document.layer(layer_id)
            if not layer.visible or layer.strength <= 0.0:
                return  # a hidden layer's "result" is its input: keep showing what it does
        self.thumbnails[layer_id] = image
        message = self.chat.for_layer(layer_id)
        if message is not None and message.state in ("applied", "undone"):
            self.chat.update(message.id, thumbnail=image)
        self.thumbnailChanged.emit(layer_id)

    def _on_layers_changed(self) -> None:
        for message in self.chat.messages:
            if message.state in ("applied", "undone") and message.layer_id:
                has = self.document.has_layer(message.layer_id)
                changes: dict = {}
                if ("applied" if has else "undone") != message.state:
                    changes["state"] = "applied" if has else "undone"
                if has:  # an edit (or its undo) changes what the message asked for
                    layer = self.document.layer(message.layer_id)
                    if (layer.instruction, layer.task) != (message.text, message.task):
                        changes.update(
                            text=layer.instruction,
                            picked=False,
                            task=layer.task,
                            title=self.task_title(layer.task) if layer.task else "",
                            confidence=layer.confidence,
                        )
                if changes:
                    self.chat.update(message.id, **changes)
        if self.selected and not self.document.has_layer(self.selected):
            layers = self.document.layers
            self.select_layer(layers[-1].id if layers else "")

    # Layers (every change is an undo command)

    def select_layer(self, layer_id: str) -> None:
        if layer_id != self.selected:
            self.selected = layer_id
            self.selectionChanged.emit(layer_id)

    def set_visible(self, layer_id: str, visible: bool) -> None:
        if self.document.layer(layer_id).visible != visible:
            self.undo_stack.push(commands.SetVisible(self.document, layer_id, visible))

    def set_strength(self, layer_id: str, strength: float, gesture: object = None) -> None:
        if abs(self.document.layer(layer_id).strength - strength) > 1e-6:
            self.undo_stack.push(commands.SetStrength(self.document, layer_id, strength, gesture))

    def edit_instruction(self, layer_id: str, text: str, *, force: bool = False) -> None:
        """Replace a layer's instruction (one undo step) once the new text is read, with the
        chat's rules: a request to darken becomes an exposure adjustment; one no fix carries
        out, or one the model is unsure of, is not applied (``editRefused``) unless forced."""
        cleaned = " ".join(text.split())
        if not self.document.has_layer(layer_id):
            return
        if not cleaned or cleaned == self.document.layer(layer_id).instruction:
            return
        self._edit_jobs[self.worker.intent(cleaned, split=False)] = (layer_id, cleaned, force)

    def _on_edit_read(self, ev, layer_id: str, text: str, force: bool) -> None:
        if not self.document.has_layer(layer_id) or self.document.source is None:
            return  # the layer went (undo, delete, another photo) while the text was read
        if isinstance(ev, Failed):
            self.error.emit(f"“{text}” could not be read: {ev.error}")
            return
        if not isinstance(ev, Finished) or not ev.result:
            return
        intent = ev.result[0]
        if darkens(intent):
            task, confidence, adjust = EXPOSURE_TASK, 1.0, self._darken_stops()
        elif force or (not intent.note and intent.confidence >= self.settings.min_confidence):
            task, confidence, adjust = intent.task, float(intent.confidence), None
        else:
            why = intent.note or "I am not sure what to fix."
            self.editRefused.emit(layer_id, text, why)
            return
        self.undo_stack.push(
            commands.EditInstruction(self.document, layer_id, text, task, confidence, adjust)
        )

    def read_tasks(self, added: list[commands.AddLayer]) -> None:
        """Read the instructions of layers added without a reading (a recipe's), for their
        labels; the rendering does not wait for it."""
        for command in added:
            job = self.worker.intent(command.layer.instruction, split=False)
            self._label_jobs[job] = command

    def remove_layer(self, layer_id: str) -> None:
        self.undo_stack.push(commands.RemoveLayer(self.document, layer_id))

    def move_layer(self, layer_id: str, new_index: int) -> None:
        if self.document.index_of(layer_id) != new_index:
            self.undo_stack.push(commands.MoveLayer(self.document, layer_id, new_index))

    def model_pack(self) -> str:
        return (self.model or {}).get("pack", "") or self.scheduler.pack or ""

    # Worker events

    def _on_worker_event(self, ev: JobEvent) -> None:
        if ev.kind is JobKind.INTENT and isinstance(ev, (Finished, Failed)):
            self._on_intent(ev)
        elif ev.kind is JobKind.LOAD and ev.job_id == self._load_job:
            self._on_load(ev)

    def _on_load(self, ev: JobEvent) -> None:
        if isinstance(ev, Started):
            catalog = ev.info
            if catalog and catalog != self.catalog:
                self.catalog = dict(catalog)
                self.catalogReady.emit(self.catalog)
            return
        if isinstance(ev, Finished):
            self.model = dict(ev.result)
            self.model_problem = ""
            self.scheduler.configure(pack=self.model["pack"], tile=self.settings.tile)
            self.modelChanged.emit(self.model)
        elif isinstance(ev, (Failed, Cancelled)):
            self.model = None
            error = getattr(ev, "error", "") or "The model could not be loaded."
            self.model_problem = error
            self.scheduler.configure(pack=None, tile=self.settings.tile)
            self.modelMissing.emit(self.model_problem)
            if getattr(ev, "error_type", "") != "NoModelError":
                self.error.emit(self.model_problem)
