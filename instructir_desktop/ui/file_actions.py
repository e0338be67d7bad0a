"""The window's file actions: open, paste, save and export a photo or project, and Apply
Recipe to Photos. A mixin of ``ui/main_window.py``: it uses the window's session, settings
and banner, and asks before replacing unsaved changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from instructir_desktop.app.project import PROJECT_SUFFIX
from instructir_desktop.core.outputs import default_suffix
from instructir_desktop.core.rawfiles import RAW_EXTENSIONS

from . import dialogs
from .recipe_dialog import RecipeDialog

__all__ = ["OPEN_FILTER", "FileActionsMixin"]

_RAW_GLOBS = " ".join(f"*{e}" for e in RAW_EXTENSIONS)
OPEN_FILTER = (
    "Photos and projects (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp *.heic *.heif *.avif "
    f"{_RAW_GLOBS} *{PROJECT_SUFFIX});;Camera RAW files ({_RAW_GLOBS});;"
    f"InstructIR projects (*{PROJECT_SUFFIX});;All files (*)"
)


class FileActionsMixin:
    """``open_path``, ``open_dialog``, ``paste``, ``save``, ``save_as``, ``export_dialog`` and
    ``apply_recipe_dialog`` of the window."""

    def _may_replace(self, again: Callable[[], None]) -> bool:
        """Ask before replacing a document with unsaved changes; ``again`` runs once a
        save the user chose here has succeeded."""
        if not self.session.dirty:
            return True
        answer = dialogs.ask_unsaved_changes(
            self, self.session.document.title, "opening another photo"
        )
        if answer == "save":
            self._save_then(again)
            return False
        return answer == "discard"

    def _save_then(self, then: Callable[[], None]) -> None:
        """Save the project, then ``then()``; nothing follows a failed or abandoned save."""
        self._after_save = then
        if not self.save():
            self._after_save = None

    def open_path(self, path: Path) -> None:
        if self._may_replace(lambda: self.open_path(path)):
            self.settings.set("last_folder", str(Path(path).parent))
            self.session.open_path(path)

    def open_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open", self.settings.last_folder, OPEN_FILTER)
        if name:
            self.open_path(Path(name))

    def paste(self) -> None:
        """Paste a photo (image data or a copied file) from the clipboard."""
        data = QApplication.clipboard().mimeData()
        files = [u.toLocalFile() for u in data.urls() if u.isLocalFile()] if data else []
        if files:
            self.open_path(Path(files[0]))
            return
        image = QApplication.clipboard().image()
        if image.isNull():
            self.banner.show_message("The clipboard holds no photo.", "info", timeout_ms=5000)
            return
        if self._may_replace(self.paste):
            rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
            array = (
                np.frombuffer(rgba.constBits(), np.uint8)
                .reshape(rgba.height(), rgba.bytesPerLine() // 4, 4)[:, : rgba.width()]
                .copy()
            )
            self.session.open_pixels(array, "Pasted photo.png")

    def save(self) -> bool:
        """Save the project; asks for a name the first time. False when nothing is saved."""
        if not self.session.has_photo:
            return False
        if self.session.document.path is None:
            return self.save_as()
        self.session.save_project(self.session.document.path)
        return True

    def save_as(self) -> bool:
        if not self.session.has_photo:
            return False
        source = self.session.document.source
        suggested = Path(self.settings.last_folder or Path.home()) / (
            Path(source.name).stem + PROJECT_SUFFIX
        )
        name, _ = QFileDialog.getSaveFileName(
            self, "Save Project", str(suggested), f"InstructIR project (*{PROJECT_SUFFIX})"
        )
        if not name:
            return False
        self.session.save_project(Path(name))
        return True

    def _saved(self, _path: str) -> None:
        then, self._after_save = self._after_save, None
        if then is not None:
            then()

    def export_dialog(self) -> None:
        source = self.session.document.source
        if source is None:
            return
        folder = source.path.parent if source.path else Path(self.settings.last_folder or ".")
        suffix = default_suffix(source.name)  # a RAW file's is .tif: RAW is never written
        suggested = folder / f"{Path(source.name).stem}-restored{suffix}"
        dialog = dialogs.ExportDialog(suggested, source.photo.bit_depth, self.settings, self)
        if dialog.exec():
            options = dialog.options()
            self.settings.set("export_quality", options["quality"])
            self.session.export(**options)

    def apply_recipe_dialog(self, recipe: Path | None = None) -> RecipeDialog:
        """Open (non-modal) the Apply Recipe to Photos dialog, with ``recipe`` chosen."""
        dialog = RecipeDialog(self.session, self.settings, self)
        if recipe is not None:
            dialog.choose_recipe(recipe)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog
