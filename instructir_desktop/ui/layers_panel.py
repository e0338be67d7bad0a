"""The layers panel: one row per instruction (top row = applied last), with visibility,
strength, inline editing of the instruction, delete, and reordering by drag.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from instructir_desktop.app.session import EditorSession
from instructir_desktop.core.adjust import describe_stops

from .chat_panel import pixmap_from_array
from .mask_tools import with_mask_thumbnail

__all__ = ["LayersPanel", "LayerList"]

ID_ROLE = Qt.ItemDataRole.UserRole
INSTRUCTION_ROLE = Qt.ItemDataRole.UserRole + 1  # what the editor shows: the bare instruction
KEY_GESTURE_S = 0.8  # key/wheel steps closer than this merge into one undo step


class InstructionDelegate(QStyledItemDelegate):
    """Edits a row's instruction alone (the row also shows the task and the strength) and
    reports the new text instead of writing it into the row: the document is the truth."""

    edited = Signal(str, str)  # layer id, new instruction

    def createEditor(self, parent, option, index):  # noqa: N802 - Qt API
        editor = QLineEdit(parent)
        editor.setObjectName("instructionEditor")
        return editor

    def setEditorData(self, editor, index) -> None:  # noqa: N802 - Qt API
        editor.setText(index.data(INSTRUCTION_ROLE) or "")
        editor.selectAll()

    def setModelData(self, editor, model, index) -> None:  # noqa: N802 - Qt API
        layer_id, text = index.data(ID_ROLE), editor.text()
        if text.strip() and text.strip() != (index.data(INSTRUCTION_ROLE) or ""):
            # After the editor has closed: the edit rebuilds the rows.
            QTimer.singleShot(0, self, lambda: self.edited.emit(layer_id, text))


class LayerList(QListWidget):
    """A list whose rows can be dragged; reports the new order once a drop is done."""

    reordered = Signal(list)  # layer ids, top row first
    deleteRequested = Signal()  # Delete or Backspace on a row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerList")
        self.delegate = InstructionDelegate(self)
        self.setItemDelegate(self.delegate)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIconSize(QSize(84, 40))  # the result, and the mask beside it when there is one
        self.setMinimumHeight(112)  # two whole rows however small the window
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if (
            event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and self.state() != QAbstractItemView.State.EditingState
            and self.currentItem() is not None
        ):
            self.deleteRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().dropEvent(event)
        # Report after the drag has fully ended: the panel rebuilds the rows in response.
        QTimer.singleShot(0, self, lambda: self.reordered.emit(self.ids()))

    def ids(self) -> list[str]:
        return [self.item(row).data(ID_ROLE) for row in range(self.count())]


class LayersPanel(QWidget):
    """Reads the document; every change goes through the session as an undo command."""

    def __init__(self, session: EditorSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layersPanel")
        self.session = session
        self._updating = False
        self._gesture: object = None
        self._last_key_step = 0.0
        self._key_gesture: object = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.list = LayerList(self)
        self.list.itemChanged.connect(self._item_changed)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.reordered.connect(self._reordered)
        self.list.delegate.edited.connect(self._edited)
        self.list.deleteRequested.connect(self.delete_current)
        layout.addWidget(self.list, 1)
        self.empty = QLabel("No layers yet. Each instruction you send becomes a layer.", self)
        self.empty.setWordWrap(True)
        self.empty.setObjectName("layersHint")
        layout.addWidget(self.empty)
        row = QHBoxLayout()
        row.addWidget(QLabel("Strength", self))
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("strengthSlider")
        self.slider.setRange(0, 100)
        self.slider.setPageStep(10)
        self.slider.sliderPressed.connect(self._drag_started)
        self.slider.sliderReleased.connect(self._drag_ended)
        self.slider.valueChanged.connect(self._strength_moved)
        self.spin = QSpinBox(self)
        self.spin.setObjectName("strengthBox")
        self.spin.setRange(0, 100)
        self.spin.setSuffix(" %")
        self.spin.valueChanged.connect(self._spin_changed)
        self.slider.valueChanged.connect(self.spin.setValue)
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        layout.addLayout(row)
        buttons = QHBoxLayout()
        self.edit_button = QPushButton("Edit…", self)
        self.edit_button.setToolTip("Change the instruction (double-click the row); it re-runs.")
        self.edit_button.clicked.connect(self.edit_current)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setObjectName("deleteLayer")
        self.delete_button.setToolTip("Delete the layer (or press Delete on its row).")
        self.delete_button.clicked.connect(self.delete_current)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        session.document.layersChanged.connect(self.rebuild)
        session.selectionChanged.connect(self._select)
        session.thumbnailChanged.connect(self._thumbnail)
        self.rebuild()

    # Document → widgets

    def rebuild(self) -> None:
        self._updating = True
        try:
            doc = self.session.document
            self.list.clear()
            for layer in reversed(doc.layers):
                item = QListWidgetItem(self._label(layer))
                item.setData(ID_ROLE, layer.id)
                item.setData(INSTRUCTION_ROLE, layer.instruction)
                flags = (
                    Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsUserCheckable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
                if not layer.is_adjustment:  # an adjustment has an amount, not a text to edit
                    flags |= Qt.ItemFlag.ItemIsEditable
                item.setFlags(flags)
                item.setCheckState(
                    Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked
                )
                item.setToolTip(
                    "Tick to show, untick to hide. Double-click to edit. Drag to reorder."
                )
                thumb = with_mask_thumbnail(self.session.thumbnails.get(layer.id), layer.mask)
                if thumb is not None:
                    item.setIcon(QIcon(pixmap_from_array(thumb)))
                self.list.addItem(item)
            self.empty.setVisible(not doc.layers)
            self._select(self.session.selected)
        finally:
            self._updating = False
        self._sync_controls()

    def _label(self, layer) -> str:
        """Two lines: the instruction, then what it does and how strongly."""
        if layer.is_adjustment:
            title = f"Adjustment: exposure {describe_stops(layer.adjust)}"
        else:
            title = self.session.task_title(layer.task) if layer.task else "Instruction"
        return f"{layer.instruction}\n{title} · strength {round(layer.strength * 100)} %"

    def _item(self, layer_id: str) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            if self.list.item(row).data(ID_ROLE) == layer_id:
                return self.list.item(row)
        return None

    def _select(self, layer_id: str) -> None:
        item = self._item(layer_id) if layer_id else None
        was = self._updating
        self._updating = True
        try:
            self.list.setCurrentItem(item)
        finally:
            self._updating = was
        self._sync_controls()

    def _thumbnail(self, layer_id: str) -> None:
        item = self._item(layer_id)
        thumb = self.session.thumbnails.get(layer_id)
        if thumb is not None and self.session.document.has_layer(layer_id):
            thumb = with_mask_thumbnail(thumb, self.session.document.layer(layer_id).mask)
        if item is not None and thumb is not None:
            item.setIcon(QIcon(pixmap_from_array(thumb)))

    def current_id(self) -> str:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else ""

    def _spin_changed(self, value: int) -> None:
        if value >= 0:  # -1 is the blank shown while no layer is selected
            self.slider.setValue(value)

    def _sync_controls(self) -> None:
        layer_id = self.current_id()
        enabled = bool(layer_id) and self.session.document.has_layer(layer_id)
        for w in (self.slider, self.spin, self.edit_button, self.delete_button):
            w.setEnabled(enabled)
        if enabled and self.session.document.layer(layer_id).is_adjustment:
            self.edit_button.setEnabled(False)
        # No layer, no strength: the box is blank rather than a misleading "0 %".
        self.spin.blockSignals(True)
        self.spin.setRange(0 if enabled else -1, 100)
        self.spin.setSpecialValueText("" if enabled else " ")
        if not enabled:
            self.spin.setValue(-1)
        elif self.spin.value() != self.slider.value():
            self.spin.setValue(self.slider.value())
        self.spin.blockSignals(False)
        if enabled and not self.slider.isSliderDown():
            value = round(self.session.document.layer(layer_id).strength * 100)
            was = self._updating
            self._updating = True
            try:
                self.slider.setValue(value)
            finally:
                self._updating = was

    # Widgets → session

    def _current_changed(self, current, _previous) -> None:
        if self._updating:
            return
        if current is not None:
            self.session.select_layer(current.data(ID_ROLE))
        self._sync_controls()

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        layer_id = item.data(ID_ROLE)
        if not self.session.document.has_layer(layer_id):
            return
        layer = self.session.document.layer(layer_id)
        visible = item.checkState() == Qt.CheckState.Checked
        if visible != layer.visible:
            self.session.set_visible(layer_id, visible)

    def _edited(self, layer_id: str, text: str) -> None:
        if self.session.document.has_layer(layer_id):
            self.session.edit_instruction(layer_id, text)

    def _drag_started(self) -> None:
        self._gesture = ("drag", time.monotonic())

    def _drag_ended(self) -> None:
        self._gesture = None

    def _strength_moved(self, value: int) -> None:
        if self._updating:
            return
        layer_id = self.current_id()
        if not layer_id or not self.session.document.has_layer(layer_id):
            return
        gesture = self._gesture
        if gesture is None:
            now = time.monotonic()
            if now - self._last_key_step > KEY_GESTURE_S:
                self._key_gesture = ("keys", now)
            self._last_key_step = now
            gesture = self._key_gesture
        self.session.set_strength(layer_id, value / 100.0, gesture)

    def _reordered(self, ids_top_first: list[str]) -> None:
        order = list(reversed(ids_top_first))  # the bottom row is applied first
        current = [layer.id for layer in self.session.document.layers]
        if order == current or sorted(order) != sorted(current):
            self.rebuild()
            return
        # A drag moves one row: find the layer whose move alone gives the new order.
        for layer_id in current:
            trial = [x for x in current if x != layer_id]
            trial.insert(order.index(layer_id), layer_id)
            if trial == order:
                self.session.move_layer(layer_id, order.index(layer_id))
                return
        self.rebuild()

    def edit_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def delete_current(self) -> None:
        layer_id = self.current_id()
        if layer_id:
            self.session.remove_layer(layer_id)
