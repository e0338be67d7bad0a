"""Small dialogs: export options, preferences (generated from the declared settings), and the
unsaved-changes question.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from instructir_desktop.app.settings import SETTINGS, Settings

__all__ = [
    "ExportDialog",
    "PreferencesDialog",
    "ask_unsaved_changes",
    "ask_export_running",
    "EXPORT_FORMATS",
]

# format → (label, extension, bit depths it can hold, has quality)
EXPORT_FORMATS = {
    "PNG": ("PNG (lossless)", ".png", (8, 16), False),
    "JPEG": ("JPEG", ".jpg", (8,), True),
    "TIFF": ("TIFF", ".tif", (8, 16), False),
    "WEBP": ("WebP", ".webp", (8,), True),
}
_EXTENSIONS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


def ask_unsaved_changes(parent: QWidget, title: str, doing: str = "closing") -> str:
    """Ask what to do with unsaved changes before ``doing`` ("closing", "opening another
    photo"): returns "save", "discard" or "cancel"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved changes")
    box.setText(f"Save the changes to “{title}” before {doing}?")
    box.setInformativeText("Your layers are lost if you don't save them as a project.")
    box.setStandardButtons(
        QMessageBox.StandardButton.Save
        | QMessageBox.StandardButton.Discard
        | QMessageBox.StandardButton.Cancel
    )
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return "save"
    if answer == QMessageBox.StandardButton.Discard:
        return "discard"
    return "cancel"


def ask_export_running(parent: QWidget) -> str:
    """Closing while an export is unwritten: returns "wait", "stop" or "cancel"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Export not written yet")
    box.setText("An export is still being rendered or written.")
    box.setInformativeText(
        "Close when it is written, or stop it and close now (no file is written)?"
    )
    wait = box.addButton("Close When Written", QMessageBox.ButtonRole.AcceptRole)
    stop = box.addButton("Stop and Close", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(wait)
    box.exec()
    clicked = box.clickedButton()
    if clicked is wait:
        return "wait"
    if clicked is stop:
        return "stop"
    return "cancel"


class ExportDialog(QDialog):
    """Where and how to export: format, JPEG/WebP quality, 8 or 16 bits."""

    def __init__(
        self, suggested: Path, source_depth: int, settings: Settings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.settings = settings
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.path = QLineEdit(str(suggested), self)
        self.path.setObjectName("exportPath")
        # Wide enough for a typical folder and file name; the dialog grows with the window.
        self.path.setMinimumWidth(self.fontMetrics().horizontalAdvance("x" * 64))
        self.path.textEdited.connect(self._path_edited)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File:", row)
        self.format = QComboBox(self)
        for key, (label, *_rest) in EXPORT_FORMATS.items():
            self.format.addItem(label, key)
        form.addRow("Format:", self.format)
        self.quality = QSpinBox(self)
        self.quality.setRange(1, 100)
        self.quality.setValue(settings.export_quality)
        form.addRow("Quality:", self.quality)
        self.depth = QComboBox(self)
        form.addRow("Bits per channel:", self.depth)
        self._source_depth = source_depth
        note = QLabel("Full resolution. EXIF and colour profile are kept.", self)
        form.addRow(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.format.currentIndexChanged.connect(self._format_changed)
        self.format.setCurrentIndex(list(EXPORT_FORMATS).index(self._guess(suggested)))
        self._format_changed()

    @staticmethod
    def _guess(path: Path) -> str:
        return _EXTENSIONS.get(path.suffix.lower(), "PNG")

    def _path_edited(self, text: str) -> None:
        """A typed extension picks the format (``out.jpg`` is a JPEG, whatever the box said)."""
        key = _EXTENSIONS.get(Path(text).suffix.lower())
        if key is not None and key != self.format.currentData():
            self.format.setCurrentIndex(list(EXPORT_FORMATS).index(key))

    def _format_changed(self) -> None:
        key = self.format.currentData()
        _label, ext, depths, has_quality = EXPORT_FORMATS[key]
        self.quality.setEnabled(has_quality)
        self.depth.clear()
        for d in depths:
            self.depth.addItem(f"{d}-bit", d)
        wanted = self.settings.export_bit_depth or self._source_depth
        self.depth.setCurrentIndex(max(0, self.depth.findData(wanted)))
        path = Path(self.path.text())
        if path.suffix.lower() not in [e for e, k in _EXTENSIONS.items() if k == key]:
            self.path.setText(str(path.with_suffix(ext)))

    def _browse(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export as", self.path.text(), "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp)"
        )
        if name:
            self.path.setText(name)
            self.format.setCurrentIndex(list(EXPORT_FORMATS).index(self._guess(Path(name))))

    def options(self) -> dict:
        """Arguments for ``EditorSession.export``."""
        path = Path(self.path.text().strip()).expanduser()
        return {
            "path": path,
            "format": _EXTENSIONS.get(path.suffix.lower(), self.format.currentData()),
            "quality": self.quality.value(),
            "bit_depth": self.depth.currentData(),
        }


class PreferencesDialog(QDialog):
    """One field per user-visible declared setting; the description is the help text."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.fields: dict[str, QWidget] = {}
        layout = QVBoxLayout(self)
        form = QFormLayout()
        for s in SETTINGS.values():
            if not s.user_visible:
                continue
            value = settings.get(s.name)
            if s.type is bool:
                field = QCheckBox(s.description, self)
                field.setChecked(bool(value))
                form.addRow(field)
            else:
                field = _field(s, value, self)
                field.setToolTip(s.description)
                form.addRow(s.title + ":", field)
            self.fields[s.name] = field
        layout.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self._apply)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _apply(self) -> None:
        for name, field in self.fields.items():
            if isinstance(field, QCheckBox):
                value = field.isChecked()
            elif isinstance(field, QComboBox):
                value = field.currentData()
            elif SETTINGS[name].percent:
                value = field.value() / 100.0
            elif isinstance(field, (QSpinBox, QDoubleSpinBox)):
                value = field.value()
            else:
                value = field.text()
            self.settings.set(name, value)
        self.accept()


def _field(s, value, parent: QWidget) -> QWidget:
    """The editor of one declared setting, in its plain label's units."""
    if s.choices:
        field = QComboBox(parent)
        for choice, label in zip(s.choices, s.choice_labels or s.choices):
            field.addItem(label, choice)
        field.setCurrentIndex(max(0, field.findData(str(value))))
        return field
    if s.percent:  # a 0..1 fraction, shown as the chat shows confidence
        field = QSpinBox(parent)
        field.setRange(round((s.minimum or 0) * 100), round((s.maximum or 1) * 100))
        field.setSuffix(" %")
        field.setValue(round(float(value) * 100))
        return field
    if s.type is int:
        field = QSpinBox(parent)
        field.setRange(int(s.minimum or 0), int(s.maximum or 1_000_000))
        field.setSuffix(s.unit)
        field.setSpecialValueText(s.special)
        field.setValue(int(value))
        return field
    if s.type is float:
        field = QDoubleSpinBox(parent)
        field.setDecimals(2)
        field.setSingleStep(0.05)
        field.setRange(float(s.minimum or 0), float(s.maximum or 1e6))
        field.setSuffix(s.unit)
        field.setValue(float(value))
        return field
    return QLineEdit(str(value), parent)
