"""Application start: the QApplication, theme, and a clock that starts with the process."""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from instructir_desktop import __version__

__all__ = ["create_app", "process_seconds"]

_IMPORTED_AT = time.perf_counter()


def _process_age() -> float | None:
    """Seconds since this process started (Linux /proc); None elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_AGE_AT_IMPORT = _process_age()


def process_seconds(at: float | None = None) -> float:
    """Seconds from process start to ``at`` (a perf_counter value; default now).

    Where the process start time is unknown, counts from when this module was imported.
    """
    at = time.perf_counter() if at is None else at
    base = _AGE_AT_IMPORT if _AGE_AT_IMPORT is not None else 0.0
    return base + (at - _IMPORTED_AT)


def create_app(argv: list[str] | None = None, theme: str = "dark") -> QApplication:
    """The QApplication with HiDPI settings, names, icon and theme."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setApplicationName("InstructIR")
    app.setApplicationDisplayName("InstructIR")
    app.setOrganizationName("InstructIR")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("instructir-desktop")
    from .theme import apply_theme, icon

    app.setWindowIcon(icon("app"))
    apply_theme(app, theme)
    return app
