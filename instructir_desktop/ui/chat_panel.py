"""The chat: type what is wrong with the photo; each message shows what the model understood
(an intent chip such as "Denoise · 96%") and a thumbnail of its result.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QKeyEvent, QMouseEvent, QPixmap, QTextCursor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from instructir_desktop.app.chatlog import ChatMessage
from instructir_desktop.app.session import EditorSession

from .assess_card import AssessmentCard
from .flow_layout import FlowLayout

__all__ = ["ChatPanel", "ChatInput", "SuggestionBar", "MessageWidget", "pixmap_from_array"]

LOADING_STATUS = "Waiting for the model to load (the first start can take a minute)…"
_STATUS = {
    "thinking": "Reading your instruction…",
    "queued": "Waiting…",
    "rendering": "Applying…",
    "undone": "Undone",
    "cancelled": "Cancelled",
}


def pixmap_from_array(array: np.ndarray) -> QPixmap:
    """A QPixmap of an 8-bit RGB array (copied, so the array may go)."""
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class ChatInput(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line; Up and Down on the box's first and last
    line bring back what was sent before (and the unsent draft), as in a shell."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatInput")
        self.setPlaceholderText("What is wrong with this photo? e.g. “it is too dark and grainy”")
        self.setTabChangesFocus(True)
        self.setFixedHeight(64)
        self.history: list[str] = []
        self._recalled = 0  # how far back Up has gone: 0 is the draft
        self._draft = ""

    def remember(self, text: str) -> None:
        """``text`` was sent: the newest entry of the history (a repeat is kept once)."""
        text = text.strip()
        if text:
            if text in self.history:
                self.history.remove(text)
            self.history.append(text)
        self._recalled, self._draft = 0, ""

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            event.accept()
            return
        if enter:  # Shift+Enter: a plain new line (not a paragraph separator)
            self.insertPlainText("\n")
            event.accept()
            return
        cursor = self.textCursor()
        plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if plain and event.key() == Qt.Key.Key_Up and cursor.blockNumber() == 0:
            if self._recall(self._recalled + 1):
                event.accept()
                return
        last = self.document().blockCount() - 1
        if plain and event.key() == Qt.Key.Key_Down and cursor.blockNumber() == last:
            if self._recall(self._recalled - 1):
                event.accept()
                return
        super().keyPressEvent(event)

    def _recall(self, back: int) -> bool:
        if not 0 <= back <= len(self.history) or back == self._recalled:
            return False
        if self._recalled == 0:
            self._draft = self.toPlainText()
        self._recalled = back
        self.setPlainText(self.history[-back] if back else self._draft)
        self.moveCursor(QTextCursor.MoveOperation.End)
        return True


class SuggestionBar(QWidget):
    """The seven tasks as one-click buttons."""

    picked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("suggestions")
        self._layout = FlowLayout(self)
        self.buttons: dict[str, QPushButton] = {}

    def set_tasks(self, tasks: list[str], titles: dict[str, str], prompts: dict[str, str]):
        for button in self.buttons.values():
            button.deleteLater()
        self.buttons.clear()
        for task in tasks:
            button = QPushButton(titles.get(task, task), self)
            button.setObjectName(f"suggest-{task}")
            button.setProperty("suggestion", True)
            button.setToolTip(prompts.get(task, ""))
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, t=task: self.picked.emit(t))
            self._layout.addWidget(button)
            self.buttons[task] = button
        self.updateGeometry()


class MessageWidget(QFrame):
    """One chat message; a click selects its layer."""

    clicked = Signal(int)
    applyAnyway = Signal(int)
    modelsRequested = Signal()

    def __init__(self, message: ChatMessage, catalog: dict, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("message")
        self.message_id = message.id
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 8)
        column = QVBoxLayout()
        column.setSpacing(4)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chip = QLabel(self)
        self.chip.setObjectName("chip")
        self.chip.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.status = QLabel(self)
        self.status.setObjectName("messageStatus")
        self.status.setWordWrap(True)
        self.advice = QLabel(self)
        self.advice.setObjectName("messageAdvice")
        self.advice.setWordWrap(True)
        self.models_button = QPushButton("Models…", self)
        self.models_button.setObjectName("adviceModels")
        self.models_button.clicked.connect(self.modelsRequested)
        self.offer_fixes = False  # the panel shows the seven fixes under one message at most
        self.suggestions = SuggestionBar(self)
        self.apply_button = QPushButton("Apply as written", self)
        self.apply_button.setObjectName("applyAnyway")
        self.apply_button.clicked.connect(lambda: self.applyAnyway.emit(self.message_id))
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        column.addWidget(self.text)
        column.addWidget(self.chip, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.status)
        column.addWidget(self.advice)
        column.addWidget(self.models_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.suggestions)
        column.addWidget(self.apply_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addStretch(1)
        outer.addLayout(column, 1)
        self.thumb = QLabel(self)
        self.thumb.setObjectName("thumbnail")
        self.thumb.setFixedSize(72, 72)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignTop)
        self._catalog = catalog
        self.message = message
        self.set_message(message)

    model_ready = True  # set by the panel: False while the model loads

    def set_model_ready(self, ready: bool) -> None:
        if ready != self.model_ready:
            self.model_ready = ready
            self.set_message(self.message)

    def set_catalog(self, catalog: dict) -> None:
        self._catalog = catalog
        self.set_message(self.message)

    def set_message(self, message: ChatMessage) -> None:
        self.message = message
        self.text.setText(message.text)
        self.chip.setText(message.chip)
        self.chip.setVisible(bool(message.chip))
        if self.chip.property("unsure") != message.unsure:
            self.chip.setProperty("unsure", message.unsure)
            self.chip.setToolTip(
                "A guess: pick the fix you meant, or apply it as written."
                if message.unsure
                else "What the model understood, and how sure it is."
            )
            self.chip.style().unpolish(self.chip)
            self.chip.style().polish(self.chip)
        status = message.note or _STATUS.get(message.state, "")
        if message.state in ("thinking", "queued", "rendering") and not self.model_ready:
            status = LOADING_STATUS  # the message waits in line; say what for
        if message.state == "failed" and not message.note:
            status = "Failed"
        self.status.setText(status)
        self.status.setVisible(bool(status))
        self.advice.setText(message.advice)
        self.advice.setVisible(bool(message.advice))
        self.models_button.setVisible(message.offer_models)
        self.setProperty("state", message.state)
        unclear = message.state == "unclear"
        self._sync_fixes()
        self.apply_button.setVisible(unclear)
        if message.thumbnail is not None:
            self.thumb.setPixmap(pixmap_from_array(message.thumbnail))
        self.thumb.setVisible(message.thumbnail is not None)
        self.style().unpolish(self)
        self.style().polish(self)

    def set_offer_fixes(self, offer: bool) -> None:
        """Show the seven fixes under this (unclear) message."""
        self.offer_fixes = offer
        self._sync_fixes()

    def _sync_fixes(self) -> None:
        show = self.offer_fixes and self.message.state == "unclear"
        if show and not self.suggestions.buttons and self._catalog.get("tasks"):
            self.suggestions.set_tasks(
                self._catalog["tasks"],
                self._catalog.get("titles", {}),
                self._catalog.get("prompts", {}),
            )
        self.suggestions.setVisible(show)

    def set_selected(self, selected: bool) -> None:
        if self.property("selected") != selected:
            self.setProperty("selected", selected)
            self.style().unpolish(self)
            self.style().polish(self)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.message_id)
        super().mouseReleaseEvent(event)


class ChatPanel(QWidget):
    """Messages, task suggestions and the instruction box.

    The seven fixes appear once at most: under the newest message when it is unclear,
    otherwise above the instruction box. The view follows new messages (and messages that
    grow, such as a thumbnail arriving) unless the user has scrolled up to read."""

    modelsRequested = Signal()

    def __init__(self, session: EditorSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatPanel")
        self.session = session
        self.widgets: dict[int, MessageWidget] = {}
        self._follow = True  # keep the newest message in view
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget(self.scroll)
        self.messages_layout = QVBoxLayout(body)
        self.messages_layout.setContentsMargins(0, 0, 4, 0)
        self.messages_layout.setSpacing(8)
        self.hint = QLabel(body)
        self.hint.setObjectName("chatHint")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.messages_layout.addStretch(1)
        self.messages_layout.addWidget(self.hint)
        self.scroll.setWidget(body)
        bar = self.scroll.verticalScrollBar()
        bar.rangeChanged.connect(self._range_changed)
        bar.valueChanged.connect(self._scrolled)
        layout.addWidget(self.scroll, 1)
        self.assessment = AssessmentCard(self)  # what the photo suggests, before any typing
        self.assessment.picked.connect(self._pick)
        self.assessment.pickedAll.connect(lambda tasks: [self._pick(t) for t in tasks])
        session.assessor.advice.connect(self._advice)
        layout.addWidget(self.assessment)
        self.suggestion_label = QLabel("Or pick what to fix:", self)
        self.suggestion_label.setObjectName("suggestionLabel")
        layout.addWidget(self.suggestion_label)
        self.suggestions = SuggestionBar(self)
        self.suggestions.picked.connect(self._pick)
        layout.addWidget(self.suggestions)
        row = QHBoxLayout()
        self.input = ChatInput(self)
        self.input.submitted.connect(self.send)
        self.session.heldSent.connect(self._held_sent)
        self.input.textChanged.connect(self._refresh)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("sendButton")
        self.send_button.setToolTip("Send (Enter). Shift+Enter starts a new line.")
        self.send_button.clicked.connect(self.send)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(row)
        session.chat.added.connect(self._added)
        session.chat.changed.connect(self._changed)
        session.chat.cleared.connect(self._cleared)
        session.chat.changed.connect(lambda _m: self._sync_assessment())
        session.document.layersChanged.connect(self._sync_assessment)
        session.catalogReady.connect(self._catalog)
        session.selectionChanged.connect(self._selected)
        session.documentOpened.connect(self._refresh)
        session.modelChanged.connect(lambda _m: self._model_changed())
        session.modelMissing.connect(lambda _m: self._refresh())
        session.suggestionsRequested.connect(self._flash_suggestions)
        self._refresh()

    def send(self) -> None:
        """Send the box's text (the Enter key and the Send button come here)."""
        text = self.input.toPlainText()
        if self.session.submit(text) is not None:
            self.input.remember(text)
            self.input.clear()

    def _held_sent(self, text: str) -> None:
        """What was typed while the photo opened went in: the box lets go of it (unless the
        user has typed something else since)."""
        self.input.remember(text)
        if " ".join(self.input.toPlainText().split()) == text:
            self.input.clear()

    def _pick(self, task: str) -> None:
        self.session.apply_task(task)

    def _advice(self, advice) -> None:
        self.assessment.show_advice(advice, self.session.catalog.get("titles"))
        self._sync_assessment()

    def _sync_assessment(self) -> None:
        busy = ("thinking", "queued", "rendering")
        taken = {layer.task for layer in self.session.document.layers}
        taken |= {m.task for m in self.session.chat.messages if m.state in busy and m.task}
        self.assessment.sync(taken)

    def _refresh(self) -> None:
        has_photo = self.session.has_photo
        ready = bool(self.session.catalog.get("tasks"))
        if not has_photo:
            hint = "Open a photo, then tell me what is wrong with it."
        elif self.session.model is None and self.session.model_problem:
            hint = self.session.model_problem
        elif self.session.model is None:
            hint = "Loading the model…"
        else:
            hint = "Describe what is wrong with the photo, or pick a fix below."
        self.hint.setText(hint)
        self.hint.setVisible(not self.widgets)
        empty = not self.input.toPlainText().strip()
        offered = self._offer_under_last()
        show = has_photo and ready and empty and self.session.model is not None and not offered
        self.suggestions.setVisible(show)
        self.suggestion_label.setVisible(show)

    def _offer_under_last(self) -> bool:
        """Offer the fixes under the newest message if it is unclear; True when it does."""
        last = next(reversed(self.widgets.values()), None) if self.widgets else None
        for widget in self.widgets.values():
            widget.set_offer_fixes(widget is last and widget.message.state == "unclear")
        return last is not None and last.message.state == "unclear"

    def _flash_suggestions(self) -> None:
        self._refresh()
        self.suggestion_label.setText("Nothing typed yet. Pick what to fix:")
        label = self.suggestion_label
        QTimer.singleShot(3000, label, lambda: label.setText("Or pick what to fix:"))

    def _catalog(self, catalog: dict) -> None:
        self.suggestions.set_tasks(catalog["tasks"], catalog["titles"], catalog["prompts"])
        for widget in self.widgets.values():
            widget.set_catalog(catalog)
        self._refresh()

    def _model_changed(self) -> None:
        for widget in self.widgets.values():
            widget.set_model_ready(self.session.model is not None)
        self._refresh()

    def _added(self, message: ChatMessage) -> None:
        widget = MessageWidget(message, self.session.catalog, self)
        widget.set_model_ready(self.session.model is not None)
        widget.clicked.connect(self._clicked)
        widget.applyAnyway.connect(self.session.apply_anyway)
        widget.suggestions.picked.connect(self._pick)
        widget.modelsRequested.connect(self.modelsRequested)
        self.messages_layout.insertWidget(self.messages_layout.count() - 1, widget)
        self.widgets[message.id] = widget
        self._follow = True  # a new message is always shown
        self._refresh()
        self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        bar = self.scroll.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.scroll.verticalScrollBar().setValue(maximum)

    def _scrolled(self, value: int) -> None:
        self._follow = value >= self.scroll.verticalScrollBar().maximum() - 4

    def _changed(self, message: ChatMessage) -> None:
        widget = self.widgets.get(message.id)
        if widget is not None:
            widget.set_message(message)
            widget.set_selected(
                bool(message.layer_id) and message.layer_id == self.session.selected
            )
            self._refresh()

    def _cleared(self) -> None:
        for widget in self.widgets.values():
            widget.deleteLater()
        self.widgets.clear()
        self._refresh()

    def _clicked(self, message_id: int) -> None:
        message = self.session.chat.get(message_id)
        if message.layer_id and self.session.document.has_layer(message.layer_id):
            self.session.select_layer(message.layer_id)

    def _selected(self, layer_id: str) -> None:
        for widget in self.widgets.values():
            widget.set_selected(bool(layer_id) and widget.message.layer_id == layer_id)
