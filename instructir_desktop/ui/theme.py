"""Dark (default) or light theme through qdarktheme, plus the app's own few styles and icons."""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from instructir_desktop.core.resources import resource_path

__all__ = ["apply_theme", "icon"]

log = logging.getLogger(__name__)

# Colours with alpha read well on both themes.
APP_QSS = """
QFrame#message { border-radius: 10px; background: rgba(127, 127, 127, 0.12);
                 border: 1px solid transparent; }
QFrame#message[selected="true"] { border: 1px solid rgba(138, 180, 248, 0.9); }
QFrame#message[state="failed"] { background: rgba(242, 139, 130, 0.18); }
QFrame#message[state="undone"], QFrame#message[state="cancelled"] { background: transparent;
                 border: 1px dashed rgba(127, 127, 127, 0.5); }
QLabel#chip { border-radius: 9px; padding: 1px 8px; font-weight: 600;
              background: rgba(138, 180, 248, 0.28); border: 1px solid transparent; }
QLabel#chip[unsure="true"] { background: transparent; font-weight: normal; font-style: italic;
              border: 1px dashed rgba(214, 140, 0, 0.9); }
QLabel#messageAdvice { color: rgba(214, 140, 0, 1.0); }
QLabel#messageStatus, QLabel#chatHint, QLabel#layersHint, QLabel#suggestionLabel {
              color: rgba(127, 127, 127, 1.0); }
QPushButton[suggestion="true"] { border-radius: 12px; padding: 3px 10px; }
QFrame#banner { border-radius: 6px; background: rgba(138, 180, 248, 0.22); }
QFrame#banner[kind="error"] { background: rgba(242, 139, 130, 0.30); }
QFrame#banner[kind="warning"] { background: rgba(253, 214, 99, 0.28); }
QLabel#thumbnail { border-radius: 4px; }
"""


def apply_theme(app: QApplication, name: str = "dark") -> None:
    """Apply qdarktheme's dark/light/auto theme; fall back to Qt's Fusion style."""
    try:
        import qdarktheme

        qdarktheme.setup_theme(name, corner_shape="rounded", additional_qss=APP_QSS)
    except Exception as exc:  # noqa: BLE001 - a missing theme must not stop the app
        log.warning("theme '%s' unavailable (%s); using Fusion", name, exc)
        app.setStyle("Fusion")
        app.setStyleSheet(APP_QSS)


def icon(name: str) -> QIcon:
    """An icon from resources/icons. Line icons (SVG using ``currentColor``) are drawn in the
    current palette's text colour, so they read well on the dark and the light theme."""
    svg = resource_path("icons", f"{name}.svg")
    if svg.is_file():
        text = svg.read_text(encoding="utf-8")
        app = QApplication.instance()
        if "currentColor" in text and app is not None:
            text = text.replace("currentColor", app.palette().windowText().color().name())
        renderer = QSvgRenderer(QByteArray(text.encode("utf-8")))
        result = QIcon()
        for size in (16, 24, 32, 48, 64):
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter)
            painter.end()
            result.addPixmap(pixmap)
        return result
    png = resource_path("icons", f"{name}.png")
    return QIcon(str(png)) if png.is_file() else QIcon()
