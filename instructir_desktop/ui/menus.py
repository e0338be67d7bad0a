"""The menu bar and the toolbar of the main window, built from its actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QToolButton

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["build_menus", "build_toolbar"]


def build_menus(window: MainWindow) -> None:
    """File, Edit, View (with Theme and the panels), Model, Help."""
    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addAction(window.open_action)
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.recent_menu.aboutToShow.connect(window._fill_recent)
    file_menu.addSeparator()
    for a in (window.save_action, window.save_as_action, window.export_action):
        file_menu.addAction(a)
    file_menu.addSeparator()
    file_menu.addAction(window.quit_action)
    edit = menu.addMenu("&Edit")
    for a in (
        window.undo_action,
        window.redo_action,
        None,
        window.paste_action,
        window.delete_action,
        None,
        window.prefs_action,
    ):
        edit.addSeparator() if a is None else edit.addAction(a)
    view = menu.addMenu("&View")
    for a in (
        window.fit_action,
        window.zoom100_action,
        window.zoom_in_action,
        window.zoom_out_action,
        None,
        window.compare_action,
    ):
        view.addSeparator() if a is None else view.addAction(a)
    theme_menu = view.addMenu("&Theme")
    window.theme_actions = QActionGroup(window)
    for name in ("dark", "light", "auto"):
        a = theme_menu.addAction(name.capitalize())
        a.setCheckable(True)
        a.setData(name)
        a.setChecked(window.settings.theme == name)
        a.triggered.connect(lambda _=False, n=name: window.settings.set("theme", n))
        window.theme_actions.addAction(a)
    view.addSeparator()
    for dock in (window.chat_dock, window.layers_dock, window.history_dock):
        view.addAction(dock.toggleViewAction())
    model_menu = menu.addMenu("&Model")
    model_menu.addAction(window.models_action)
    model_menu.addAction(window.cancel_action)
    menu.addMenu("&Help").addAction(window.about_action)


def build_toolbar(window: MainWindow) -> None:
    """Open/Save/Export, Undo/Redo (icons only), Fit/100 %/Compare, Hold: Original, Models."""
    bar = window.addToolBar("Main")
    bar.setObjectName("mainToolbar")
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for a in (
        window.open_action,
        window.save_action,
        window.export_action,
        None,
        window.undo_action,
        window.redo_action,
        None,
        window.fit_action,
        window.zoom100_action,
        window.compare_action,
    ):
        if a is None:
            bar.addSeparator()
        elif a in (window.undo_action, window.redo_action):
            # Icon only: the action's text grows with the command ("Undo Add “…”").
            button = QToolButton(window)
            button.setDefaultAction(a)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            bar.addWidget(button)
        else:
            bar.addAction(a)
    window.hold_button = QToolButton(window)
    window.hold_button.setObjectName("holdOriginal")
    window.hold_button.setText("Hold: Original")
    window._icons.append((window.hold_button, "original"))
    window.hold_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    window.hold_button.setToolTip("Press and hold to see the original (or hold \\ on the photo)")
    window.hold_button.pressed.connect(lambda: window.canvas.hold_original(True))
    window.hold_button.released.connect(lambda: window.canvas.hold_original(False))
    bar.addWidget(window.hold_button)
    bar.addSeparator()
    bar.addAction(window.models_action)
