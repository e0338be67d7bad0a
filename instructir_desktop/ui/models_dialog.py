"""The Models dialog: which packs exist and are installed, download/import/remove them, pick
the pack and the device the app uses.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from instructir_desktop.app.downloads import ModelManager, format_size
from instructir_desktop.app.session import EditorSession

__all__ = ["ModelsDialog", "DEVICE_LABELS"]

DEVICE_LABELS = {
    "auto": "Automatic (best available)",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (Metal)",
    "cpu": "CPU",
}
COLUMNS = ("Model", "Version", "Size", "Status")
LOOKING = "Looking for installed models…"
# The official pack's text encoder (TaylorAI/bge-micro-v2) comes from the Hub with sizes the
# catalog cannot pin; its weights are 17.4 M fp32 parameters, about 70 MB.
ENCODER_ESTIMATE = 70_000_000
_CLI_ADVICE = (
    (re.compile(r"`instructir models import [^`]*`"), "the Import files… button below"),
    (re.compile(r"`instructir models download [^`]*`"), "the Download button below"),
    (re.compile(r"`instructir models verify[^`]*`"), "Remove, then Download"),
    (re.compile(r"`instructir models list`"), "this list"),
)


def for_the_window(message: str) -> str:
    """A core message that names a command to type, with the button that does it instead."""
    for pattern, button in _CLI_ADVICE:
        message = pattern.sub(button, message)
    return message


def download_size(pack) -> tuple[str, str]:
    """The Size cell and its tooltip: everything a download brings, the encoder included."""
    from instructir_desktop.core.packs import catalog

    manifest = catalog().get(pack.id)
    unknown = [f for f in manifest.files if not f.size] if manifest is not None else []
    if pack.installed or not unknown:
        return (format_size(pack.size) if pack.size else "—"), ""
    total = pack.size + ENCODER_ESTIMATE
    return f"about {format_size(total)}", (
        f"{format_size(pack.size)} of model files, plus about {format_size(ENCODER_ESTIMATE)} "
        "for the text encoder that reads your instructions."
    )


class ModelsDialog(QDialog):
    """Non-blocking: downloads run on their own thread and report progress here."""

    def __init__(self, session: EditorSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("modelsDialog")
        self.resize(720, 420)
        self.session = session
        self.manager = ModelManager(session.background, self)
        self.packs: list = []
        layout = QVBoxLayout(self)
        self.current = QLabel(self)
        self.current.setObjectName("currentModel")
        self.current.setWordWrap(True)
        layout.addWidget(self.current)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):  # the status is read in full, never cut off
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._sync_buttons)
        layout.addWidget(self.table, 1)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        layout.addWidget(self.description)
        actions = QHBoxLayout()
        self.use_button = QPushButton("Use this model", self)
        self.download_button = QPushButton("Download", self)
        self.import_button = QPushButton("Import files…", self)
        self.remove_button = QPushButton("Remove", self)
        self.use_button.clicked.connect(self._use)
        self.download_button.clicked.connect(self._download)
        self.import_button.clicked.connect(self._import)
        self.remove_button.clicked.connect(self._remove)
        for b in (self.use_button, self.download_button, self.import_button, self.remove_button):
            actions.addWidget(b)
        actions.addStretch(1)
        layout.addLayout(actions)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.progress_label = QLabel(self)
        self.cancel_button = QPushButton("Cancel download", self)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.manager.cancel)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        device_row = QHBoxLayout()
        device_row.addWidget(QLabel("Run the model on:", self))
        self.device = QComboBox(self)
        self.device.setObjectName("deviceCombo")
        device_row.addWidget(self.device, 1)
        layout.addLayout(device_row)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setObjectName("modelsStatus")
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.manager.listed.connect(self._listed)
        self.manager.progress.connect(self._progress)
        self.manager.finished.connect(self._finished)
        self.manager.failed.connect(self._failed)
        self.manager.cancelled.connect(self._cancelled)
        session.modelChanged.connect(lambda _m: (self._show_current(), self._sync_buttons()))
        session.modelMissing.connect(lambda _m: self._show_current())
        session.catalogReady.connect(lambda _c: self._fill_devices())
        self._fill_devices()
        self.device.currentIndexChanged.connect(self._device_chosen)
        self._show_current()
        self.status.setText(LOOKING)
        self.manager.refresh()

    def _show_current(self) -> None:
        model = self.session.model
        if model:
            self.current.setText(
                f"In use: <b>{model.get('name', model['pack'])}</b> on "
                f"{model['device'].upper()} ({model['backend']}, {model['precision']})."
            )
        else:
            problem = self.session.model_problem or "Loading…"
            self.current.setText(f"No model in use. {problem}")

    def _fill_devices(self) -> None:
        available = self.session.catalog.get("devices")
        self.device.blockSignals(True)
        self.device.clear()
        model: QStandardItemModel = QStandardItemModel(self.device)
        for name in ("auto", "cuda", "mps", "cpu"):
            label = DEVICE_LABELS[name]
            item = QStandardItem(label)
            item.setData(name, Qt.ItemDataRole.UserRole)
            if available is not None and name != "auto" and name not in available:
                item.setText(f"{label} — not available on this computer")
                item.setEnabled(False)
            model.appendRow(item)
        self.device.setModel(model)
        names = ["auto", "cuda", "mps", "cpu"]
        self.device.setCurrentIndex(names.index(self.session.settings.device))
        self.device.blockSignals(False)

    def _device_chosen(self, index: int) -> None:
        name = self.device.itemData(index, Qt.ItemDataRole.UserRole)
        if name and name != self.session.settings.device:
            self.session.settings.set("device", name)  # the session reloads the model

    def _listed(self, packs: list) -> None:
        self.packs = list(packs)
        in_use = (self.session.model or {}).get("pack")
        self.table.setRowCount(len(self.packs))
        for row, p in enumerate(self.packs):
            if p.installed:
                status = "Included with the app" if p.bundled else "Installed"
            else:
                status = "Not installed"
            if p.id == in_use:
                status += " · in use"
            size, size_tip = download_size(p)
            cells = (p.name, p.version, size, status)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, p.id)
                if col == 2 and size_tip:
                    item.setToolTip(size_tip)
                self.table.setItem(row, col, item)
        if self.packs and not self.table.selectedItems():
            self.table.selectRow(0)
        if self.status.text() == LOOKING:  # keep the outcome of an import or download
            self.status.setText("" if self.packs else "No models are known.")
        self._sync_buttons()

    def selected_pack(self):
        rows = {i.row() for i in self.table.selectedItems()}
        return self.packs[rows.pop()] if len(rows) == 1 and self.packs else None

    def _sync_buttons(self) -> None:
        pack = self.selected_pack()
        busy = bool(self.manager.busy)
        self.description.setText(pack.description if pack else "")
        in_use = (self.session.model or {}).get("pack")
        self.use_button.setEnabled(bool(pack and pack.installed and pack.id != in_use))
        self.use_button.setToolTip(
            "This model is in use." if pack is not None and pack.id == in_use else ""
        )
        self.download_button.setEnabled(bool(pack and not pack.installed and not busy))
        self.import_button.setEnabled(bool(pack and not busy))
        self.remove_button.setEnabled(bool(pack and pack.installed and not pack.bundled))

    def _use(self) -> None:
        pack = self.selected_pack()
        if pack is not None:
            if self.session.settings.pack == pack.id:
                self.session.reload_model()
            else:
                self.session.settings.set("pack", pack.id)
            self.status.setText(f"Loading {pack.name}…")

    def _download(self) -> None:
        pack = self.selected_pack()
        if pack is None:
            return
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.status.setText(f"Downloading {pack.name}…")
        self.manager.download(pack.id)
        self._sync_buttons()

    def _progress(self, pack_id: str, done: int, total: int, name: str) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress_label.setText(f"{format_size(done)} of {format_size(total)}")
        else:
            self.progress_label.setText(format_size(done))

    def _import(self) -> None:
        pack = self.selected_pack()
        if pack is None:
            return
        files, _ = QFileDialog.getOpenFileNames(
            self, f"Import the files of {pack.name}", self.session.settings.last_folder
        )
        if files:
            self.import_paths(pack.id, [Path(f) for f in files])

    def import_paths(self, pack_id: str, paths: list[Path]) -> None:
        """Install a pack from files already on this computer."""
        self.status.setText("Importing…")
        self.manager.import_files(pack_id, paths)
        self._sync_buttons()

    def _remove(self) -> None:
        pack = self.selected_pack()
        if pack is not None:
            self.manager.remove(pack.id)

    def _end_progress(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.progress_label.clear()

    def _finished(self, pack_id: str, outcome: str) -> None:
        self._end_progress()
        self.status.setText(f"{pack_id}: {outcome}.")
        if outcome in ("downloaded", "imported") and self.session.model is None:
            self.session.reload_model()  # the first model on this computer: use it right away

    def _failed(self, pack_id: str, message: str) -> None:
        self._end_progress()
        self.status.setText(for_the_window(message))

    def _cancelled(self, pack_id: str) -> None:
        self._end_progress()
        self.status.setText("Download cancelled. It resumes where it stopped next time.")

    def done(self, result: int) -> None:
        self.manager.cancel()  # closing the dialog stops a download
        super().done(result)
