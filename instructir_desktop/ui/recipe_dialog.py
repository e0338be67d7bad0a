"""Recipes in the window: File → Save Recipe… and the Apply Recipe to Photos dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from instructir_desktop.app.batch import (
    FORMATS,
    BatchItem,
    RecipeBatch,
    add_recipe_layers,
    recipe_from_layers,
)
from instructir_desktop.core.errors import InstructIRError
from instructir_desktop.core.images import READABLE_EXTENSIONS
from instructir_desktop.core.recipe import Recipe, load_recipe, save_recipe

__all__ = ["RecipeDialog", "RecipeOffer", "save_recipe_dialog", "remember_recipe"]

MAX_RECENT_RECIPES = 8
RECIPE_FILTER = "InstructIR recipe (*.json);;InstructIR project (*.instructir)"


def remember_recipe(settings, path: Path) -> None:
    """Put a recipe at the top of the recent recipes (offered in the chat and the dialog)."""
    entry = str(Path(path).absolute())
    recent = [p for p in settings.get("recent_recipes") if p != entry]
    settings.set("recent_recipes", [entry, *recent][:MAX_RECENT_RECIPES])


def save_recipe_dialog(window) -> Path | None:
    """Ask for a name and save the current layer stack as a recipe (masks beside it)."""
    session = window.session
    layers = session.document.layers
    if not layers:
        QMessageBox.information(window, "Save Recipe", "Add a fix to the photo first.")
        return None
    folder = Path(window.settings.last_folder or Path.home())
    name, _ = QFileDialog.getSaveFileName(
        window, "Save Recipe", str(folder / "recipe.json"), "InstructIR recipe (*.json)"
    )
    if not name:
        return None
    recipe, _masks = recipe_from_layers(layers, session.model_pack(), Path(name).stem)
    try:
        path = save_recipe(recipe, name)
    except InstructIRError as exc:
        QMessageBox.warning(window, "Save Recipe", str(exc))
        return None
    remember_recipe(window.settings, path)
    session.info.emit(f"Saved the recipe {path.name}.")
    return path


class RecipeOffer(QWidget):
    """Recent recipes offered in the chat: "Apply 'concert fix' to this photo" adds the
    recipe's steps as layers of the open photo (one undo step)."""

    SHOWN = 3

    def __init__(self, session, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recipeOffer")
        self.session, self.settings = session, settings
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.buttons: list[QPushButton] = []
        session.documentOpened.connect(self.refresh)
        session.document.layersChanged.connect(self.refresh)
        settings.changed.connect(lambda name, _v: name == "recent_recipes" and self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Offer the recent recipes that still exist while a photo without layers is open."""
        for button in self.buttons:
            button.deleteLater()
        self.buttons = []
        entries = [e for e in self.settings.get("recent_recipes") if Path(e).is_file()]
        show = self.session.has_photo and not self.session.document.layers
        for entry in entries[: self.SHOWN] if show else []:
            button = QPushButton(f"Apply '{Path(entry).stem}' to this photo", self)
            button.setProperty("suggestion", True)
            button.setToolTip(entry)
            button.clicked.connect(lambda _=False, e=entry: self.apply(Path(e)))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self.setVisible(bool(self.buttons))

    def apply(self, path: Path) -> None:
        try:
            recipe = load_recipe(path)
        except InstructIRError as exc:
            self.session.error.emit(str(exc))
            return
        if add_recipe_layers(self.session, recipe):
            remember_recipe(self.settings, path)
            self.session.info.emit(f"Applying the recipe '{recipe.name}'…")


def _state_text(item: BatchItem) -> str:
    if item.state == "running":
        return f"running {item.progress * 100:.0f} %"
    if item.state == "failed":
        return f"failed: {item.error}"
    if item.state == "done" and item.warning:
        return f"done ({item.warning})"
    return item.state


def _eta_text(seconds: float) -> str:
    if seconds < 0:
        return "estimating time left…"
    if seconds < 60:
        return f"about {seconds:.0f} s left"
    return f"about {seconds / 60:.0f} min left"


class RecipeDialog(QDialog):
    """Choose a recipe, photos (buttons or drag and drop), an output folder and a format;
    run in the background with each photo's state, overall progress and ETA."""

    def __init__(self, session, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Apply Recipe to Photos")
        self.setAcceptDrops(True)
        self.resize(720, 520)
        self.session, self.settings = session, settings
        self.batch = RecipeBatch(session.worker, self)
        self.inputs: list[Path] = []

        self.recipe_box = QComboBox()
        self.recipe_box.setObjectName("recipeChoice")
        if session.document.layers:
            self.recipe_box.addItem("The current layers", None)
        for entry in settings.get("recent_recipes"):
            if Path(entry).exists():
                self.recipe_box.addItem(Path(entry).stem, entry)
        browse_recipe = QPushButton("Choose…")
        browse_recipe.clicked.connect(self._choose_recipe)
        self.steps_label = QLabel()
        self.steps_label.setWordWrap(True)
        self.recipe_box.currentIndexChanged.connect(self._show_steps)

        self.list = QTreeWidget()
        self.list.setObjectName("batchList")
        self.list.setHeaderLabels(["Photo", "State"])
        self.list.setIconSize(QSize(48, 48))
        self.list.setRootIsDecorated(False)
        self.list.itemDoubleClicked.connect(lambda *_: self.open_result())
        add_photos = QPushButton("Add Photos…")
        add_photos.clicked.connect(self._choose_photos)
        add_folder = QPushButton("Add Folder…")
        add_folder.clicked.connect(self._choose_folder)
        clear = QPushButton("Clear")
        clear.clicked.connect(lambda: (self.inputs.clear(), self._fill_list()))

        self.output = QLineEdit(settings.last_folder or str(Path.home()))
        self.output.setObjectName("outputFolder")
        browse_out = QPushButton("Choose…")
        browse_out.clicked.connect(self._choose_output)
        self.format = QComboBox()
        for key, (label, _fmt, _bits) in FORMATS.items():
            self.format.addItem(label, key)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(settings.get("export_quality") or 95)
        self.quality.setSuffix(" quality")
        self.format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.eta = QLabel("")
        self.run_button = QPushButton("Apply")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.batch.cancel)
        self.open_button = QPushButton("Open Result")
        self.open_button.clicked.connect(self.open_result)
        close = QPushButton("Close")
        close.clicked.connect(self.close)

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.recipe_box, 1)
        row.addWidget(browse_recipe)
        form.addRow("Recipe:", row)
        form.addRow("", self.steps_label)
        row = QHBoxLayout()
        row.addWidget(self.output, 1)
        row.addWidget(browse_out)
        form.addRow("Save into:", row)
        row = QHBoxLayout()
        row.addWidget(self.format)
        row.addWidget(self.quality)
        row.addStretch(1)
        form.addRow("Format:", row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        hint = QLabel("Photos (add them with the buttons or drop files and folders here):")
        layout.addWidget(hint)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        for b in (add_photos, add_folder, clear):
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta)
        layout.addLayout(row)
        row = QHBoxLayout()
        for b in (self.run_button, self.pause_button, self.cancel_button, self.open_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)

        self.batch.itemChanged.connect(self._item_changed)
        self.batch.progressChanged.connect(self._progress)
        self.batch.finished.connect(self._finished)
        self._show_steps()
        self._update_buttons()

    # Choosing

    def recipe(self) -> Recipe:
        """The chosen recipe (raises a core error for a bad file)."""
        entry = self.recipe_box.currentData()
        if entry is None and self.session.document.layers:
            recipe, _masks = recipe_from_layers(
                self.session.document.layers, self.session.model_pack(), "current layers"
            )
            return recipe
        if not entry:
            raise InstructIRError("Choose a recipe first.")
        return load_recipe(entry)

    def _show_steps(self) -> None:
        try:
            recipe = self.recipe()
        except InstructIRError as exc:
            self.steps_label.setText(str(exc))
            return
        shown = [s.instruction for s in recipe.active_steps]
        self.steps_label.setText("Applies: " + (", then ".join(shown) or "nothing"))

    def choose_recipe(self, path: Path) -> None:
        """Use the recipe in ``path`` (added to the list and to the recent recipes)."""
        self.recipe_box.addItem(Path(path).stem, str(Path(path).absolute()))
        self.recipe_box.setCurrentIndex(self.recipe_box.count() - 1)
        remember_recipe(self.settings, Path(path))

    def _choose_recipe(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Choose a Recipe", "", RECIPE_FILTER)
        if name:
            self.choose_recipe(Path(name))

    def add_paths(self, paths: list[Path]) -> None:
        """Add photos; a folder adds the photos directly inside it."""
        for p in paths:
            p = Path(p)
            found = (
                sorted(q for q in p.iterdir() if q.suffix.lower() in READABLE_EXTENSIONS)
                if p.is_dir()
                else [p]
            )
            self.inputs.extend(q for q in found if q not in self.inputs)
        self._fill_list()

    def _choose_photos(self) -> None:
        exts = " ".join(f"*{e}" for e in sorted(READABLE_EXTENSIONS))
        names, _ = QFileDialog.getOpenFileNames(self, "Add Photos", "", f"Photos ({exts})")
        self.add_paths([Path(n) for n in names])

    def _choose_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Add a Folder of Photos")
        if name:
            self.add_paths([Path(name)])

    def _choose_output(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Save Results Into", self.output.text())
        if name:
            self.output.setText(name)

    def _format_changed(self) -> None:
        self.quality.setVisible(self.format.currentData() == "jpeg")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and not self.batch.running:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        self.add_paths(paths)
        event.acceptProposedAction()

    # Running

    def run(self) -> None:
        """Check everything (recipe, photos, output names), then start the batch."""
        if self.batch.running:
            return
        try:
            recipe = self.recipe()
            if not self.inputs:
                raise InstructIRError("Add photos or a folder first.")
            if not recipe.active_steps:
                raise InstructIRError(f"The recipe '{recipe.name}' has no step to apply.")
            self.batch.start(
                recipe,
                self.inputs,
                Path(self.output.text()),
                fmt=self.format.currentData(),
                quality=self.quality.value(),
                tile=self.settings.tile or None,
            )
        except InstructIRError as exc:
            QMessageBox.warning(self, "Apply Recipe", str(exc))
            return
        pack = self.session.model_pack()
        if recipe.pack and pack and recipe.pack != pack:
            self.eta.setText(f"made with {recipe.pack}; applying with {pack}")
        self._fill_list(self.batch.items)
        self._update_buttons()

    def toggle_pause(self) -> None:
        if self.batch.paused:
            self.batch.resume()
        else:
            self.batch.pause()
        self._update_buttons()

    def open_result(self) -> None:
        """Open the selected (else the last) finished photo in the system's viewer."""
        rows = [self.list.indexOfTopLevelItem(i) for i in self.list.selectedItems()]
        done = [i for i, item in enumerate(self.batch.items) if item.output is not None]
        index = next((r for r in rows if r in done), done[-1] if done else None)
        if index is not None:
            path = self.batch.items[index].output
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _fill_list(self, items: list[BatchItem] | None = None) -> None:
        self.list.clear()
        for item in items or [BatchItem(p, p) for p in self.inputs]:
            row = QTreeWidgetItem([item.source.name, item.state])
            row.setToolTip(0, str(item.source))
            self.list.addTopLevelItem(row)
        self._update_buttons()

    def _item_changed(self, index: int) -> None:
        item = self.batch.items[index]
        row = self.list.topLevelItem(index)
        if row is None:
            return
        row.setText(1, _state_text(item))
        row.setToolTip(1, _state_text(item))
        if item.thumbnail is not None and row.icon(0).isNull():
            t = item.thumbnail
            image = QImage(t.data, t.shape[1], t.shape[0], t.strides[0], QImage.Format_RGB888)
            row.setIcon(0, QIcon(QPixmap.fromImage(image.copy())))
        self._update_buttons()

    def _progress(self, fraction: float, eta: float) -> None:
        self.progress.setValue(round(fraction * 1000))
        if self.batch.running:
            self.eta.setText("paused" if self.batch.paused else _eta_text(eta))

    def _finished(self, done: int, failed: int) -> None:
        text = f"{done} done"
        if failed:
            text += f", {failed} failed"
        self.eta.setText(text)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.batch.running
        self.run_button.setEnabled(not running and bool(self.inputs))
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Resume" if self.batch.paused else "Pause")
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(any(i.output for i in self.batch.items))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.batch.running:
            answer = QMessageBox.question(
                self, "Apply Recipe", "Stop applying the recipe? Photos already saved stay."
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.batch.cancel()
        super().closeEvent(event)
