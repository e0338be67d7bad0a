"""The menu bar and the toolbar of the main window, built from its actions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QDockWidget, QMenu, QMenuBar, QToolBar, QToolButton

from instructir_desktop.app.settings import Settings

from .canvas import Canvas

__all__ = ["MenuHost", "build_menus", "build_toolbar", "fill_recent_menu"]


class MenuHost(Protocol):
    """The window the menus are built for (``MainWindow``): its actions, docks and settings."""

    settings: Settings
    canvas: Canvas
    open_action: QAction
    save_action: QAction
    save_as_action: QAction
    export_action: QAction
    save_recipe_action: QAction
    apply_recipe_action: QAction
    quit_action: QAction
    undo_action: QAction
    redo_action: QAction
    paste_action: QAction
    delete_action: QAction
    prefs_action: QAction
    fit_action: QAction
    zoom100_action: QAction
    zoom_in_action: QAction
    zoom_out_action: QAction
    compare_action: QAction
    models_action: QAction
    cancel_action: QAction
    about_action: QAction
    chat_dock: QDockWidget
    layers_dock: QDockWidget
    history_dock: QDockWidget

    def menuBar(self) -> QMenuBar: ...  # noqa: N802 - Qt's name

    def addToolBar(self, title: str) -> QToolBar: ...  # noqa: N802 - Qt's name

    def open_path(self, path: Path) -> None: ...


def fill_recent_menu(
    menu: QMenu, entries: Iterable[str], open_path: Callable[[Path], None]
) -> None:
    """One action per recent file (its name, the full path as tooltip), or a disabled line."""
    menu.clear()
    for entry in entries:
        action = menu.addAction(Path(entry).name)
        action.setToolTip(entry)
        action.triggered.connect(lambda _=False, p=entry: open_path(Path(p)))
    if menu.isEmpty():
        menu.addAction("No recent files").setEnabled(False)


def build_menus(window: MenuHost) -> tuple[QMenu, QActionGroup]:
    """File, Edit, View (with Theme and the panels), Model, Help. Returns the Open Recent menu
    (filled each time it opens) and the group of theme actions."""
    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addAction(window.open_action)
    recent_menu = file_menu.addMenu("Open &Recent")
    recent_menu.aboutToShow.connect(
        lambda: fill_recent_menu(recent_menu, window.settings.recent_files, window.open_path)
    )
    file_menu.addSeparator()
    for a in (window.save_action, window.save_as_action, window.export_action):
        file_menu.addAction(a)
    file_menu.addSeparator()
    file_menu.addAction(window.save_recipe_action)
    file_menu.addAction(window.apply_recipe_action)
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
    theme_actions = QActionGroup(window)
    for name in ("dark", "light", "auto"):
        a = theme_menu.addAction(name.capitalize())
        a.setCheckable(True)
        a.setData(name)
        a.setChecked(window.settings.theme == name)
        a.triggered.connect(lambda _=False, n=name: window.settings.set("theme", n))
        theme_actions.addAction(a)
    view.addSeparator()
    for dock in (window.chat_dock, window.layers_dock, window.history_dock):
        view.addAction(dock.toggleViewAction())
    model_menu = menu.addMenu("&Model")
    model_menu.addAction(window.models_action)
    model_menu.addAction(window.cancel_action)
    menu.addMenu("&Help").addAction(window.about_action)
    return recent_menu, theme_actions


def build_toolbar(window: MenuHost) -> QToolButton:
    """Open/Save/Export, Undo/Redo (icons only), Fit/100 %/Compare, Hold: Original, Models.
    Returns the Hold: Original button."""
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
    hold = QToolButton(window)
    hold.setObjectName("holdOriginal")
    hold.setText("Hold: Original")
    hold.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    hold.setToolTip("Press and hold to see the original (or hold \\ on the photo)")
    hold.pressed.connect(lambda: window.canvas.hold_original(True))
    hold.released.connect(lambda: window.canvas.hold_original(False))
    bar.addWidget(hold)
    bar.addSeparator()
    bar.addAction(window.models_action)
    return hold
