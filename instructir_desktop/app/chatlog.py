"""The chat history: one message per instruction, with what the model understood and did."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from instructir_desktop.core.adjust import EXPOSURE_TASK

__all__ = ["ChatMessage", "ChatLog", "STATES"]

# thinking: reading the intent; unclear: low confidence, suggestions offered; queued/rendering:
# waiting for / running the model; applied: a layer exists; undone: its layer was removed;
# split: it asked for several fixes, which follow as messages of their own; done: a command
# about the last edit ("undo", "a bit less"), carried out at once (app.chat_commands).
STATES = (
    "thinking", "unclear", "queued", "rendering", "applied", "undone", "cancelled", "failed",
    "split", "done",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class ChatMessage:
    """One instruction typed (or picked) by the user."""

    id: int
    text: str
    state: str = "thinking"
    task: str = ""
    title: str = ""  # the task's display name, e.g. "Denoise"
    confidence: float = 0.0
    layer_id: str = ""
    thumbnail: np.ndarray | None = None
    note: str = ""  # error or explanation shown under the message
    advice: str = ""  # a hint that outlives the state, e.g. where the bundled model is weak
    picked: bool = False  # the user chose the task from the suggestions
    offer_models: bool = False  # the advice points at the Models dialog
    part_of: int = 0  # the message this one was split from ("too dark and grainy"), or 0

    @property
    def unsure(self) -> bool:
        """The model's reading is a guess the user has to confirm."""
        return self.state == "unclear"

    @property
    def chip(self) -> str:
        """The intent chip: "Denoise · 96% sure", "Dehaze? · only 21% sure" for a guess,
        "Deblur · your pick" for a suggestion clicked; empty until the intent is known.
        (Layers show strength, as "strength 100 %".)"""
        if not self.title:
            return ""
        if self.task == EXPOSURE_TASK:
            return f"{self.title} · adjustment, no model"
        if self.picked:
            return f"{self.title} · your pick"
        percent = round(self.confidence * 100)
        if self.unsure:
            return f"{self.title}? · only {percent}% sure"
        return f"{self.title} · {percent}% sure"


class ChatLog(QObject):
    """Ordered messages; widgets listen to ``added``/``changed``/``cleared``."""

    added = Signal(object)
    changed = Signal(object)
    cleared = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._messages: dict[int, ChatMessage] = {}
        self._ids = itertools.count(1)

    @property
    def messages(self) -> list[ChatMessage]:
        return list(self._messages.values())

    def get(self, message_id: int) -> ChatMessage:
        return self._messages[message_id]

    def add(self, text: str, **fields) -> ChatMessage:
        message = ChatMessage(next(self._ids), text, **fields)
        self._messages[message.id] = message
        self.added.emit(message)
        return message

    def update(self, message_id: int, **changes) -> ChatMessage | None:
        old = self._messages.get(message_id)
        if old is None:
            return None
        new = dataclasses.replace(old, **changes)
        self._messages[message_id] = new
        self.changed.emit(new)
        return new

    def for_layer(self, layer_id: str) -> ChatMessage | None:
        for message in self._messages.values():
            if message.layer_id == layer_id:
                return message
        return None

    def clear(self) -> None:
        self._messages.clear()
        self.cleared.emit()
