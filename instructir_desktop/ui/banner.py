"""A non-modal message strip above the canvas: errors and offers never block the window."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

__all__ = ["Banner"]

_RANK = {"info": 1, "warning": 2, "error": 3}


class Banner(QFrame):
    """Shows one message with optional action buttons; ``kind`` is error, warning or info."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(self)
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        self._layout = layout
        self.close_button = QPushButton("✕", self)
        self.close_button.setObjectName("bannerClose")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setFlat(True)
        self.close_button.setFixedWidth(28)
        self.close_button.clicked.connect(self.dismiss)
        layout.addWidget(self.close_button)
        self.kind = ""
        self._current = None
        self._queue: list = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    def text(self) -> str:
        return self.label.text()

    @property
    def buttons(self) -> list[QPushButton]:
        return list(self._buttons)

    def show_message(
        self,
        text: str,
        kind: str = "error",
        actions: list[tuple[str, Callable[[], None]]] = (),
        timeout_ms: int = 0,
        tag: str = "",
    ) -> None:
        """Show a message; actions are (label, callback), each also dismisses. ``tag`` names
        the message for ``withdraw``.

        A message never hides a more important one (error > warning > info): it waits until
        that one is dismissed. A displaced message that asks a question (has actions) waits
        too, so an offer such as crash recovery is not lost.
        """
        self.withdraw(tag) if tag else None
        message = (text, kind, list(actions), timeout_ms, tag)
        if self.isVisible() and self.kind:
            if _RANK.get(kind, 0) < _RANK.get(self.kind, 0):
                self._queue.append(message)
                return
            if self._current is not None and self._current[2]:
                self._queue.insert(0, self._current)
        self._show(message)

    def _show(self, message) -> None:
        text, kind, actions, timeout_ms, _tag = message
        self._current = message
        for button in self._buttons:
            button.deleteLater()
        self._buttons = []
        self.kind = kind
        self.setProperty("kind", kind)
        self.label.setText(text)
        for label, callback in actions:
            button = QPushButton(label, self)
            button.clicked.connect(lambda _=False, cb=callback: (self.dismiss(), cb()))
            self._layout.insertWidget(self._layout.count() - 1, button)
            self._buttons.append(button)
        self.style().unpolish(self)
        self.style().polish(self)
        self.show()
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()

    def dismiss(self) -> None:
        """Hide the current message; the next waiting one, if any, takes its place."""
        self._timer.stop()
        self._current = None
        if self._queue:
            self._show(self._queue.pop(0))
            return
        self.hide()
        self.kind = ""

    def withdraw(self, tag: str) -> None:
        """Remove the messages with this tag (shown or waiting); others stay."""
        self._queue = [m for m in self._queue if m[4] != tag]
        if self._current is not None and self._current[4] == tag:
            self.dismiss()

    @property
    def tag(self) -> str:
        return self._current[4] if self._current is not None else ""

    def clear(self) -> None:
        """Drop every message."""
        self._queue.clear()
        self.dismiss()
