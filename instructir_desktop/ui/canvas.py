"""The photo canvas: zoom, pan, a draggable before/after split and press-and-hold original.

It paints from pyramids (8-bit images halving in size) and only the part of the chosen level
that is visible, so a 24 MP photo is never rescaled as a whole on a repaint.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from instructir_desktop.app.stack import Pyramid

__all__ = ["Canvas"]

MIN_SCALE, MAX_SCALE = 0.01, 32.0
SPLIT_GRAB_PX = 8


class Canvas(QWidget):
    """Shows the composite (``after``) and the source (``before``)."""

    zoomChanged = Signal(float)  # logical pixels per image pixel
    compareChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window handles drops
        self.setMinimumSize(200, 150)
        self._after: Pyramid | None = None
        self._before: Pyramid | None = None
        self._images: dict[tuple[int, int], tuple[QImage, object]] = {}
        self._size = (0, 0)  # full image (w, h)
        self._scale = 1.0
        self._center = QPointF(0, 0)  # image coordinate shown at the widget centre
        self._fit = True
        self._compare = False
        self._split = 0.5
        self._holding = False
        self._drag: str | None = None  # "pan" | "split"
        self._last = QPointF()
        self.placeholder = "Open a photo to begin: File → Open, drag it here, or paste it."
        self.notice = ""  # e.g. "Rendering 2 layers…" while the picture is not the result yet
        self.mask_overlay = None  # ui.mask_tools.MaskTools: paints masks, takes the mouse
        self.pressure = 1.0  # the tablet pen's pressure during a stroke; 1 with a mouse

    # Content

    def set_before(self, pyramid: Pyramid | None, size: tuple[int, int] | None = None) -> None:
        """A new source photo (resets the view to fit)."""
        self._before = pyramid
        self._after = pyramid
        self._images.clear()
        self._size = size or (pyramid.size if pyramid else (0, 0))
        self._fit = True
        self._update_fit()
        self.update()

    def set_after(self, pyramid: Pyramid | None) -> None:
        """A new composite of the document."""
        if pyramid is not self._after:
            old = self._after
            self._after = pyramid
            if old is not None and old is not self._before:
                self._drop(old)
            self.update()

    def set_notice(self, text: str) -> None:
        """A line over the bottom-left of the photo ("" hides it)."""
        if text != self.notice:
            self.notice = text
            self.update()

    @property
    def after(self) -> Pyramid | None:
        return self._after

    @property
    def before(self) -> Pyramid | None:
        return self._before

    def _drop(self, pyramid: Pyramid) -> None:
        for key in [k for k in self._images if k[0] == id(pyramid)]:
            del self._images[key]

    def _qimage(self, pyramid: Pyramid, index: int) -> QImage:
        key = (id(pyramid), index)
        cached = self._images.get(key)
        if cached is None:
            array = pyramid.levels[index]
            h, w = array.shape[:2]
            image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
            cached = (image, array)  # the QImage borrows the array's memory: keep both
            self._images[key] = cached
        return cached[0]

    # View state

    @property
    def scale(self) -> float:
        return self._scale

    @property
    def fit_mode(self) -> bool:
        return self._fit

    @property
    def split(self) -> float:
        return self._split

    @property
    def holding(self) -> bool:
        return self._holding

    def fit(self) -> None:
        self._fit = True
        self._update_fit()
        self.update()

    def actual_size(self) -> None:
        """100 %: one image pixel per device pixel."""
        self.set_scale(1.0 / self.devicePixelRatioF())

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_scale(self._scale * factor, anchor)

    def set_scale(self, scale: float, anchor: QPointF | None = None) -> None:
        if not self._size[0]:
            return
        scale = min(MAX_SCALE, max(MIN_SCALE, scale))
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self.to_image(anchor)
        self._fit = False
        self._scale = scale
        after = self.to_image(anchor)
        self._center += before - after  # keep the point under the cursor where it was
        self._clamp()
        self.zoomChanged.emit(self._scale)
        self.update()

    def set_compare(self, on: bool) -> None:
        if on != self._compare:
            self._compare = on
            self.compareChanged.emit(on)
            self.update()

    def set_split(self, fraction: float) -> None:
        self._split = min(1.0, max(0.0, fraction))
        self.update()

    def hold_original(self, on: bool) -> None:
        """Show the original while held (toolbar button or the backslash key)."""
        if on != self._holding:
            self._holding = on
            self.update()

    def _update_fit(self) -> None:
        w, h = self._size
        if not w or not self._fit:
            return
        margin = 16
        avail_w, avail_h = max(1, self.width() - margin), max(1, self.height() - margin)
        self._scale = min(avail_w / w, avail_h / h)
        self._center = QPointF(w / 2, h / 2)
        self.zoomChanged.emit(self._scale)

    def _clamp(self) -> None:
        w, h = self._size
        self._center.setX(min(max(self._center.x(), 0.0), float(w)))
        self._center.setY(min(max(self._center.y(), 0.0), float(h)))

    def to_image(self, p: QPointF) -> QPointF:
        """Widget coordinates → full-resolution image coordinates."""
        return QPointF(
            self._center.x() + (p.x() - self.width() / 2) / self._scale,
            self._center.y() + (p.y() - self.height() / 2) / self._scale,
        )

    def image_rect(self) -> QRectF:
        """Where the whole image lies, in widget coordinates."""
        w, h = self._size
        left = self.width() / 2 - self._center.x() * self._scale
        top = self.height() / 2 - self._center.y() * self._scale
        return QRectF(left, top, w * self._scale, h * self._scale)

    def split_x(self) -> float:
        rect = self.image_rect().intersected(QRectF(self.rect()))
        return rect.left() + self._split * rect.width()

    # Painting

    def level_for(self, pyramid: Pyramid) -> int:
        """Smallest level that still has a pixel for every device pixel at this zoom."""
        need = self._scale * self.devicePixelRatioF() / pyramid.scale
        index = int(math.floor(math.log2(1.0 / need))) if need < 1.0 else 0
        return max(0, min(index, len(pyramid.levels) - 1))

    def _paint_pyramid(self, painter: QPainter, pyramid: Pyramid, clip: QRectF) -> None:
        index = self.level_for(pyramid)
        image = self._qimage(pyramid, index)
        target_all = self.image_rect()
        target = target_all.intersected(clip)
        if target.isEmpty():
            return
        # Level pixels per widget pixel; draw only the visible part of the level.
        k = image.width() / target_all.width()
        ky = image.height() / target_all.height()
        source = QRectF(
            (target.left() - target_all.left()) * k,
            (target.top() - target_all.top()) * ky,
            target.width() * k,
            target.height() * ky,
        )
        smooth = self._scale * self.devicePixelRatioF() < 2.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawImage(target, image, source)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window().color().darker(115))
        if self._after is None or not self._size[0]:
            painter.setPen(self.palette().text().color())
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            return
        full = QRectF(self.rect())
        if self._holding and self._before is not None:
            self._paint_pyramid(painter, self._before, full)
            self._label(painter, "Original", QPointF(12, 12))
            return
        self._paint_pyramid(painter, self._after, full)
        if self.mask_overlay is not None:
            self.mask_overlay.paint(painter)
        if self.notice:
            height = painter.fontMetrics().height()
            self._label(painter, self.notice, QPointF(12, self.height() - height - 12))
        if self._compare and self._before is not None:
            x = self.split_x()
            self._paint_pyramid(painter, self._before, QRectF(0, 0, x, self.height()))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            painter.setBrush(QColor(255, 255, 255, 230))
            painter.drawEllipse(QPointF(x, self.height() / 2), 9, 9)
            self._label(painter, "Before", QPointF(max(12, x - 80), 12))
            self._label(painter, "After", QPointF(min(self.width() - 70, x + 12), 12))

    def _label(self, painter: QPainter, text: str, pos: QPointF) -> None:
        metrics = painter.fontMetrics()
        rect = QRectF(pos, metrics.size(0, text)).adjusted(-6, -3, 6, 3)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    # Input

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._update_fit()
        super().resizeEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps, event.position())
        event.accept()

    def _near_split(self, pos: QPointF) -> bool:
        return self._compare and abs(pos.x() - self.split_x()) <= SPLIT_GRAB_PX

    def tabletEvent(self, event) -> None:  # noqa: N802 - Qt API
        # keep the pressure and let Qt send the matching mouse event, which paints
        released = event.type() == QEvent.Type.TabletRelease
        self.pressure = 1.0 if released else max(0.05, event.pressure())
        event.ignore()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.mask_overlay is not None and self.mask_overlay.press(event):
            event.accept()
            return
        pos = event.position()
        if event.button() == Qt.MouseButton.LeftButton and self._near_split(pos):
            self._drag = "split"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self._last = pos
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.mask_overlay is not None and self.mask_overlay.move(event):
            return
        pos = event.position()
        if self._drag == "split":
            rect = self.image_rect().intersected(QRectF(self.rect()))
            if rect.width() > 0:
                self.set_split((pos.x() - rect.left()) / rect.width())
        elif self._drag == "pan":
            delta = pos - self._last
            self._fit = False
            self._center -= QPointF(delta.x() / self._scale, delta.y() / self._scale)
            self._clamp()
            self.update()
        else:
            shape = (
                Qt.CursorShape.SplitHCursor if self._near_split(pos) else Qt.CursorShape.ArrowCursor
            )
            self.setCursor(shape)
        self._last = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.mask_overlay is not None and self.mask_overlay.release(event):
            return
        self._drag = None
        self.setCursor(Qt.CursorShape.ArrowCursor)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._fit:
            self.set_scale(1.0 / self.devicePixelRatioF(), event.position())
        else:
            self.fit()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key.Key_Backslash:
            if not event.isAutoRepeat():
                self.hold_original(True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key.Key_Backslash:
            if not event.isAutoRepeat():
                self.hold_original(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.hold_original(False)  # a key release can be lost when focus moves away
        super().focusOutEvent(event)
