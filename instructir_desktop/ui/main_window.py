"""The main window: canvas in the middle, chat and layers on the right, history, status bar."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDockWidget,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from instructir_desktop import __version__
from instructir_desktop.app.session import EditorSession
from instructir_desktop.app.settings import Settings

from . import dialogs
from .banner import Banner
from .canvas import Canvas
from .chat_panel import ChatPanel
from .file_actions import FileActionsMixin
from .job_status import JobStatus, count
from .layers_panel import LayersPanel
from .mask_tools import MaskTools
from .menus import build_menus, build_toolbar
from .models_dialog import ModelsDialog
from .recipe_dialog import RecipeOffer, save_recipe_dialog
from .startup import process_seconds
from .theme import apply_theme, icon

__all__ = ["MainWindow", "hub_reachable"]

DONE_SHOWN_MS = 4000  # how long "Done in 3.2 s" stays in the status bar
ETA_AFTER_S = 1.5  # no estimate before this much of a job has run (the first tile is slow)


class MainWindow(FileActionsMixin, QMainWindow):
    """The editor window. ``pack_dir`` overrides the model pack (tests, portable installs)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pack_dir: Path | None = None,
        open_path: Path | None = None,
        bridge: bool | None = None,
        autosave: bool = True,
        startup_probe: bool = False,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings or Settings()
        self.session = EditorSession(
            self.settings, pack_dir=pack_dir, bridge=bridge, autosave=autosave, parent=self
        )
        self._initial_path = Path(open_path) if open_path else None
        self.shown_at: float | None = None
        self.torch_at_show: bool | None = None
        self.ask_before_close = True  # the self-test closes without asking
        self._startup_probe = startup_probe
        self._closing = False  # the user has answered for the unsaved changes
        self._shut_down = False
        self._after_save: Callable[[], None] | None = None  # what a save was asked before
        self._close_when_exported = False
        self._offered_official = False
        self._icons: list[tuple[object, str]] = []
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_status()
        self._connect()
        self._restore_layout()
        self._update_title()
        self._update_actions()

    # Construction

    def _build_central(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        self.banner = Banner(central)
        self.canvas = Canvas(central)
        self.mask_tools = MaskTools(self.session, self.canvas, central)
        layout.addWidget(self.banner)
        layout.addWidget(self.mask_tools)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.chat = ChatPanel(self.session, self)
        # Recent recipes, offered above the chat's fixes while the photo has no layers.
        self.recipe_offer = RecipeOffer(self.session, self.settings, self.chat)
        chat_layout = self.chat.layout()
        chat_layout.insertWidget(chat_layout.indexOf(self.chat.suggestion_label), self.recipe_offer)
        self.layers = LayersPanel(self.session, self)
        self.history = QUndoView(self.session.undo_stack, self)
        self.history.setEmptyLabel("Original photo")
        self.history.setObjectName("history")
        self.chat_dock = self._dock("Chat", "chatDock", self.chat, right)
        self.layers_dock = self._dock("Layers", "layersDock", self.layers, right)
        self.history_dock = self._dock("History", "historyDock", self.history, right)
        self.tabifyDockWidget(self.layers_dock, self.history_dock)
        self.layers_dock.raise_()

    def _action(
        self, text: str, slot, shortcut=None, icon_name: str = "", tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        if icon_name:
            self._icons.append((action, icon_name))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        stack = self.session.undo_stack
        self.open_action = self._action(
            "&Open…", self.open_dialog, S.Open, "open", "Open a photo or a project"
        )
        self.save_action = self._action(
            "&Save Project", self.save, S.Save, "save", "Save the photo and its layers as a project"
        )
        self.save_as_action = self._action("Save Project &As…", self.save_as, S.SaveAs)
        self.export_action = self._action(
            "&Export…",
            self.export_dialog,
            "Ctrl+E",
            "export",
            "Export the result at full resolution",
        )
        self.save_recipe_action = self._action(
            "Save &Recipe…", lambda: save_recipe_dialog(self), tip="Save the layers as a recipe"
        )
        self.apply_recipe_action = self._action(
            "&Apply Recipe to Photos…",
            self.apply_recipe_dialog,
            tip="Apply a recipe to many photos at once",
        )
        self.quit_action = self._action("&Quit", self.close, S.Quit)
        self.undo_action = stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(S.Undo)
        self._icons.append((self.undo_action, "undo"))
        self.redo_action = stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self._icons.append((self.redo_action, "redo"))
        self.paste_action = self._action("&Paste Photo", self.paste, S.Paste)
        self.delete_action = self._action("&Delete Layer", self.layers.delete_current)
        self.prefs_action = self._action("Pr&eferences…", self.preferences, S.Preferences)
        self.fit_action = self._action("&Fit to Window", self.canvas.fit, "Ctrl+0", "fit")
        self.zoom100_action = self._action("&100 %", self.canvas.actual_size, "Ctrl+1", "zoom100")
        self.zoom_in_action = self._action("Zoom &In", lambda: self.canvas.zoom_by(1.25), S.ZoomIn)
        self.zoom_out_action = self._action(
            "Zoom &Out", lambda: self.canvas.zoom_by(0.8), S.ZoomOut
        )
        self.compare_action = self._action(
            "&Before/After Split",
            self.canvas.set_compare,
            "Ctrl+D",
            "compare",
            "Drag the line to compare with the original",
        )
        self.compare_action.setCheckable(True)
        self.models_action = self._action(
            "&Models…", self.show_models, "Ctrl+M", "models", "Install models and choose the device"
        )
        self.cancel_action = self._action("&Cancel Job", self.session.cancel, "Esc")
        self.about_action = self._action("&About InstructIR", self.about)
        self.recent_menu, self.theme_actions = build_menus(self)
        self.hold_button = build_toolbar(self)
        self._icons.append((self.hold_button, "original"))
        self._refresh_icons()

    def _refresh_icons(self) -> None:
        """(Re)draw the line icons in the palette's text colour (after a theme change too)."""
        for target, name in self._icons:
            target.setIcon(icon(name))

    def _build_status(self) -> None:
        status = self.statusBar()
        self.job_status = JobStatus(self.session, self)
        # Names the tests and the self-test use.
        self.progress = self.job_status.progress
        self.progress_label = self.job_status.label
        self.cancel_button = self.job_status.cancel_button
        self.zoom_label = QLabel(self)
        self.model_label = QLabel("Model: loading…", self)
        self.model_label.setObjectName("modelLabel")
        self.official_button = QPushButton("Better results: the official model…", self)
        self.official_button.setObjectName("officialOffer")
        self.official_button.setFlat(True)
        self.official_button.setToolTip(
            "The official InstructIR model restores photos better (a one-time download)."
        )
        self.official_button.clicked.connect(self.show_models)
        self.official_button.hide()
        status.addWidget(self.job_status, 1)
        status.addPermanentWidget(self.zoom_label)
        status.addPermanentWidget(self.official_button)
        status.addPermanentWidget(self.model_label)

    def _connect(self) -> None:
        s = self.session
        s.error.connect(lambda text: self.banner.show_message(text, "error", tag="error"))
        s.warning.connect(lambda text: self.banner.show_message(text, "warning", tag="notice"))
        s.info.connect(lambda text: self.statusBar().showMessage(text, 6000))
        s.modelChanged.connect(self._model_changed)
        s.modelMissing.connect(self._model_missing)
        s.documentOpened.connect(self._document_opened)
        s.dirtyChanged.connect(lambda _d: self._update_title())
        s.document.pathChanged.connect(self._update_title)
        s.recoveryAvailable.connect(self._offer_recovery)
        s.projectSaved.connect(self._saved)
        s.saveFailed.connect(lambda _e: setattr(self, "_after_save", None))
        s.editRefused.connect(self._edit_refused)
        s.exported.connect(lambda _p: self._export_settled(False))
        s.exportFailed.connect(lambda _e: self._export_settled(True))
        s.scheduler.frameReady.connect(self._frame_ready)
        s.scheduler.activityChanged.connect(lambda _a: self._update_notice())
        self.chat.modelsRequested.connect(self.show_models)
        s.scheduler.frameReady.connect(lambda _f: self._update_notice())
        s.document.layersChanged.connect(self._update_notice)
        QApplication.instance().installEventFilter(self)
        self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.canvas.compareChanged.connect(self.compare_action.setChecked)
        s.compareRequested.connect(self.canvas.set_compare)
        self.settings.changed.connect(self._setting_changed)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_geometry, self.settings.window_state
        if not geometry or not self.restoreGeometry(QByteArray(geometry)):
            self.resize(1280, 800)
        if not state or not self.restoreState(QByteArray(state)):
            # First start: the chat gets most of the right column, the layers the rest.
            self.resizeDocks([self.chat_dock], [380], Qt.Orientation.Horizontal)
            self.resizeDocks(
                [self.chat_dock, self.layers_dock], [560, 220], Qt.Orientation.Vertical
            )

    # Window events

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.shown_at is None:
            self.shown_at = time.perf_counter()
            self.torch_at_show = "torch" in sys.modules
            if self._startup_probe:
                QTimer.singleShot(0, self, self._report_startup)
                return
            # Start the model (and torch) only once the window is on screen.
            QTimer.singleShot(0, self, self._after_first_show)

    def _report_startup(self) -> None:
        """Benchmark/test hook: print how long the window took to show, then quit."""
        seconds = round(process_seconds(self.shown_at), 4)
        report = {"time_to_window_s": seconds, "torch_imported": self.torch_at_show}
        print(json.dumps(report), flush=True)
        self.close()
        QApplication.instance().quit()

    def _after_first_show(self) -> None:
        self.session.start()
        if self._initial_path is not None:
            self.open_path(self._initial_path)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self._shut_down:
            event.accept()
            return
        if self.ask_before_close and self.session.dirty and not self._closing:
            answer = dialogs.ask_unsaved_changes(self, self.session.document.title)
            if answer == "cancel":
                event.ignore()
                return
            if answer == "save":
                event.ignore()
                self._save_then(self._close_confirmed)
                return
            self._closing = True
        if self.ask_before_close and self.session.exporting:
            answer = dialogs.ask_export_running(self)
            if answer != "stop":
                event.ignore()
                self._closing = False
                if answer == "wait":
                    self._close_when_exported = True
                    self.statusBar().showMessage("Closing once the export is written…")
                return
        self.settings.set("window_geometry", bytes(self.saveGeometry().data()))
        self.settings.set("window_state", bytes(self.saveState().data()))
        self._shut_down = True
        QApplication.instance().removeEventFilter(self)
        self.session.shutdown()
        event.accept()

    def _close_confirmed(self) -> None:
        self._closing = True
        self.close()

    def _export_settled(self, failed: bool) -> None:
        """An export ended: close now if the user asked to once it is written."""
        if not self._close_when_exported:
            return
        if failed:  # the error is on screen: stay open
            self._close_when_exported = False
        elif not self.session.exporting:
            self._close_when_exported = False
            self.close()  # asks again if the photo was changed while waiting

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        """Hold \\ for the original wherever the focus is, unless it is typed into text."""
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and (
            event.key() == Qt.Key.Key_Backslash
            and self.isActiveWindow()
            and self.session.has_photo
            and watched is QApplication.focusWidget()
            and watched is not self.canvas  # the canvas handles it itself
            and not self._typing_in(watched)
        ):
            if not event.isAutoRepeat():
                self.canvas.hold_original(kind == QEvent.Type.KeyPress)
            return True
        return super().eventFilter(watched, event)

    def _typing_in(self, widget: QObject) -> bool:
        """A backslash is text there (the chat box counts only once something is typed)."""
        if widget is self.chat.input:
            return bool(self.chat.input.toPlainText())
        return isinstance(widget, (QLineEdit, QPlainTextEdit, QTextEdit, QAbstractSpinBox))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_path(Path(files[0]))

    # Other actions

    def show_models(self) -> None:
        dialog = ModelsDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.models_dialog = dialog

    def preferences(self) -> None:
        dialogs.PreferencesDialog(self.settings, self).exec()

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About InstructIR",
            f"<b>InstructIR Desktop {__version__}</b><p>Restore photos by telling "
            "the computer what is wrong with them. Runs on your own computer; "
            "your photos never leave it.</p><p>Model: InstructIR (Conde et al., "
            "ECCV 2024).</p>",
        )

    # Session → widgets

    def _document_opened(self) -> None:
        doc = self.session.document
        source = doc.source
        self.canvas.set_before(
            self.session.scheduler.source_pyramid, (source.photo.width, source.photo.height)
        )
        self.banner.withdraw("error")  # an older failure to open is no longer news
        self._update_title()
        self._update_actions()
        self.chat.input.setFocus()

    def _frame_ready(self, _frame) -> None:
        best = self.session.scheduler.best_frame()
        if best is not None:
            self.canvas.set_after(best.pyramid)

    def _update_notice(self) -> None:
        """Say on the photo when it is not yet what the layers make of it (a reopened
        project before the model has loaded, or while the layers are rendered)."""
        session = self.session
        layers = [x for x in session.document.layers if x.visible and x.strength > 0]
        stale = session.has_photo and layers and session.scheduler.best_frame() is None
        if not stale:
            self.canvas.set_notice("")
        elif session.model is None:
            self.canvas.set_notice(
                f"Original shown: loading the model to render {count(len(layers), 'layer')}…"
            )
        else:
            self.canvas.set_notice(f"Rendering {count(len(layers), 'layer')}…")

    def _model_changed(self, model: dict | None) -> None:
        if model is None:
            self.model_label.setText("Model: loading…")
            return
        self.model_label.setText(
            f"{model.get('name', model['pack'])} · {model['device'].upper()} "
            f"({model['backend']} {model['precision']})"
        )
        self.model_label.setToolTip(f"Loaded in {model.get('seconds', 0)} s")
        self.banner.withdraw("model")
        self._update_notice()
        official = self.session.catalog.get("official_id")
        self.official_button.hide()
        if official and model["pack"] != official and not self._offered_official:
            # A quiet offer in the status bar (the photo does not move), and only when the
            # download could start: offline it would only lead to an error.
            self._offered_official = True
            self.session.background.run(
                self.session.background.io,
                hub_reachable,
                lambda ok: self.official_button.setVisible(
                    bool(ok) and (self.session.model or {}).get("pack") != official
                ),
            )

    def _model_missing(self, message: str) -> None:
        self.model_label.setText("No model")
        self.banner.show_message(
            message, "warning", [("Open Models…", self.show_models)], tag="model"
        )
        self.chat._refresh()

    def _offer_recovery(self, items: list) -> None:
        item = items[0]
        when = time.strftime("%H:%M on %d %b", time.localtime(item.saved))
        self.banner.show_message(
            f"InstructIR did not close properly. Recover your unsaved work on “{item.title}” "
            f"(autosaved at {when})?",
            "warning",
            [
                ("Recover", lambda: self._recover(item)),
                ("Discard", lambda: [i.discard() for i in items]),
            ],
            tag="recovery",
        )

    def _edit_refused(self, layer_id: str, text: str, why: str) -> None:
        """An edited instruction that the chat would not apply either: say so, offer it."""

        def apply() -> None:
            self.session.edit_instruction(layer_id, text, force=True)

        self.banner.show_message(
            f"The layer keeps its instruction: “{text}” was not applied. {why}",
            "warning",
            [("Apply as Written", apply)],
            tag="edit",
        )

    def _recover(self, item) -> None:
        if self._may_replace(lambda: self._recover(item)):
            self.session.recover(item)

    def _setting_changed(self, name: str, value) -> None:
        if name == "theme":
            apply_theme(QApplication.instance(), str(value))
            self._refresh_icons()
            for a in self.theme_actions.actions():
                a.setChecked(a.data() == value)

    def _update_title(self) -> None:
        title = self.session.document.title if self.session.has_photo else "InstructIR"
        self.setWindowTitle(f"{title}[*] — InstructIR" if self.session.has_photo else title)
        self.setWindowModified(self.session.dirty)

    def _update_actions(self) -> None:
        has = self.session.has_photo
        for a in (
            self.save_action,
            self.save_as_action,
            self.export_action,
            self.compare_action,
            self.fit_action,
            self.zoom100_action,
            self.zoom_in_action,
            self.zoom_out_action,
        ):
            a.setEnabled(has)
        self.hold_button.setEnabled(has)
        self.zoom_label.setVisible(has)  # an empty status-bar item is drawn as a grey box


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model download could start: online and not told to stay offline."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
