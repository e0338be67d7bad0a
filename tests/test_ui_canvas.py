"""The canvas on its own: zoom, fit, 100 %, pan, the split line, hold-to-compare, pyramids."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from instructir_desktop.app.stack import Pyramid
from instructir_desktop.ui.canvas import Canvas


def solid_pyramid(w: int, h: int, rgb: tuple[int, int, int], full_width: int | None = None):
    """A pyramid of one colour, built by subsampling (fast even for 24 MP)."""
    level = np.empty((h, w, 3), np.uint8)
    level[...] = rgb
    levels = [level]
    while max(levels[-1].shape[:2]) > 256:
        levels.append(np.ascontiguousarray(levels[-1][::2, ::2]))
    return Pyramid(tuple(levels), w / (full_width or w), f"{rgb}")


@pytest.fixture
def canvas(qtbot):
    widget = Canvas()
    widget.resize(800, 600)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_before(solid_pyramid(2000, 1500, (200, 30, 30)))
    widget.set_after(solid_pyramid(2000, 1500, (30, 30, 200)))
    return widget


def pixel(widget, x: int, y: int) -> tuple[int, int, int]:
    image = widget.grab().toImage()
    dpr = image.devicePixelRatio()
    color = image.pixelColor(int(x * dpr), int(y * dpr))
    return color.red(), color.green(), color.blue()


def test_fit_shows_the_whole_photo_from_a_small_level(canvas):
    assert canvas.fit_mode
    rect = canvas.image_rect()
    assert rect.width() <= canvas.width() and rect.height() <= canvas.height()
    assert canvas.level_for(canvas.after) >= 1  # never the full image when it is shrunk
    assert pixel(canvas, 400, 300) == (30, 30, 200)


def test_actual_size_uses_level_zero_and_zoom_keeps_anchor(canvas):
    canvas.actual_size()
    assert canvas.scale == pytest.approx(1.0 / canvas.devicePixelRatioF())
    assert canvas.level_for(canvas.after) == 0
    anchor = QPointF(100, 120)
    before = canvas.to_image(anchor)
    canvas.zoom_by(2.0, anchor)
    after = canvas.to_image(anchor)
    assert before.x() == pytest.approx(after.x()) and before.y() == pytest.approx(after.y())


def test_wheel_zooms_and_drag_pans(canvas, qtbot):
    scale = canvas.scale
    event = QWheelEvent(
        QPointF(400, 300),
        QPointF(400, 300),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, event)
    assert canvas.scale == pytest.approx(scale * 1.25) and not canvas.fit_mode
    start = canvas.to_image(QPointF(400, 300))
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    qtbot.mouseMove(canvas, QPoint(300, 250))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(300, 250))
    moved = canvas.to_image(QPointF(400, 300))
    assert moved.x() > start.x() and moved.y() > start.y()
    canvas.fit()
    assert canvas.fit_mode and canvas.scale == pytest.approx(scale)


def test_split_line_compares_and_can_be_dragged(canvas, qtbot):
    canvas.set_compare(True)
    x = int(canvas.split_x())
    assert pixel(canvas, x - 40, 300) == (200, 30, 30)  # before on the left
    assert pixel(canvas, x + 40, 300) == (30, 30, 200)  # after on the right
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x, 300))
    qtbot.mouseMove(canvas, QPoint(x + 150, 300))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x + 150, 300))
    assert canvas.split > 0.6
    assert pixel(canvas, x + 40, 300) == (200, 30, 30)


def test_press_and_hold_backslash_shows_the_original(canvas, qtbot):
    canvas.setFocus()
    qtbot.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.holding and pixel(canvas, 400, 300) == (200, 30, 30)
    qtbot.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert not canvas.holding and pixel(canvas, 400, 300) == (30, 30, 200)


def test_painting_a_24_megapixel_photo_stays_fast(qtbot):
    canvas = Canvas()
    canvas.resize(1000, 700)
    qtbot.addWidget(canvas)
    canvas.show()
    canvas.set_before(solid_pyramid(6000, 4000, (90, 90, 90)))
    canvas.set_after(solid_pyramid(6000, 4000, (10, 120, 10)))
    canvas.set_compare(True)
    canvas.grab()  # first paint converts the chosen level once
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        canvas.grab()
        timings.append(time.perf_counter() - t0)
    assert canvas.level_for(canvas.after) >= 2
    assert min(timings) < 0.05, timings
