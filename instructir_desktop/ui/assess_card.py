"""The chat's first word on a photo: what the photo itself suggests fixing, with one button per
suggested fix in the order to apply them. Nothing is applied until a button is clicked."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout, QWidget

from instructir_desktop.app.assess import PhotoAdvice
from instructir_desktop.core.packs import TASK_PROMPTS, TASK_TITLES

from .flow_layout import FlowLayout

__all__ = ["AssessmentCard"]


class AssessmentCard(QFrame):
    """Shows a PhotoAdvice; ``picked(task)`` for one fix, ``pickedAll([tasks])`` for all."""

    picked = Signal(str)
    pickedAll = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("assessment")
        self.advice: PhotoAdvice | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        self.text = QLabel(self)
        self.text.setObjectName("assessmentText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fixes = QWidget(self)
        self.fixes.setObjectName("assessmentFixes")
        self._fix_layout = FlowLayout(self.fixes)
        self.buttons: dict[str, QPushButton] = {}
        self.all_button = QPushButton(self)
        self.all_button.setObjectName("assessmentAll")
        self.all_button.clicked.connect(self._pick_all)
        layout.addWidget(self.text)
        layout.addWidget(self.fixes)
        layout.addWidget(self.all_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.show_advice(None)

    def show_advice(self, advice: PhotoAdvice | None, titles: dict[str, str] | None = None):
        """Show what the photo suggests; None hides the card (a photo is opening)."""
        self.advice = advice
        self.setVisible(advice is not None)
        if advice is None:
            return
        self.text.setText(advice.text)
        names = {**TASK_TITLES, **(titles or {})}
        for button in self.buttons.values():
            button.deleteLater()
        self.buttons.clear()
        for n, task in enumerate(advice.suggested, 1):
            button = QPushButton(f"{n}. {names.get(task, task)}", self.fixes)
            button.setObjectName(f"assess-{task}")
            button.setProperty("suggestion", True)
            button.setToolTip(TASK_PROMPTS.get(task, ""))
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, t=task: self._pick(t))
            self._fix_layout.addWidget(button)
            self.buttons[task] = button
        self.fixes.setVisible(bool(advice.suggested))
        self.all_button.setText(f"Apply all {len(advice.suggested)} in this order")
        self.all_button.setEnabled(True)
        self.all_button.setVisible(len(advice.suggested) > 1)

    def sync(self, taken: set[str]) -> None:
        """A fix is offered again once no layer (and no instruction on its way) does it: an
        undone or deleted fix can be picked again."""
        for task, button in self.buttons.items():
            button.setEnabled(task not in taken)
        self.all_button.setEnabled(any(b.isEnabled() for b in self.buttons.values()))

    def _pick(self, task: str) -> None:
        self.buttons[task].setEnabled(False)  # asked for: it becomes a layer
        self.picked.emit(task)

    def _pick_all(self) -> None:
        tasks = [t for t, b in self.buttons.items() if b.isEnabled()]
        for task in tasks:
            self.buttons[task].setEnabled(False)
        self.all_button.setEnabled(False)
        self.pickedAll.emit(tasks)
