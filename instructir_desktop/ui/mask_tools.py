"""Mask editing: a small toolbar above the canvas and the canvas overlay that paints masks.

Strokes and shapes are drawn at screen resolution on a QImage the size of the canvas (so a
24 MP photo stays fluid); when the stroke ends, the touched part is scaled to the photo and
merged into the layer's full-resolution mask as one undo step (``app.commands.SetMask``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeySequence,
    QPainter,
    QPen,
    QRadialGradient,
    QShortcut,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QWidget,
)

from instructir_desktop.app import commands
from instructir_desktop.core import masks

from .flow_layout import FlowLayout

__all__ = ["MaskTools", "mask_thumbnail", "with_mask_thumbnail", "TOOLS"]

TOOLS = ("brush", "eraser", "rectangle", "ellipse", "gradient")
OVERLAY_EDGE = 1024  # the overlay is drawn from a copy of the mask at most this large
OVERLAY_RGB = (255, 40, 40)


def mask_thumbnail(mask: np.ndarray, edge: int = 40) -> np.ndarray:
    """An 8-bit RGB thumbnail of a uint16 mask (white applies), for the layers panel."""
    step = max(1, max(mask.shape) // (edge * 2))
    small = (mask[::step, ::step] >> 8).astype(np.uint8)
    im = Image.fromarray(small, "L")
    im.thumbnail((edge, edge), Image.Resampling.BILINEAR)
    return np.repeat(np.asarray(im)[..., None], 3, axis=2)


def with_mask_thumbnail(thumb: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray | None:
    """A layer row's icon: its result thumbnail with its mask's beside it, when it has one."""
    if mask is None:
        return thumb
    edge = 40 if thumb is None else max(thumb.shape[:2])
    small = mask_thumbnail(mask, edge)
    if thumb is None:
        return small
    h = max(thumb.shape[0], small.shape[0])
    out = np.zeros((h, thumb.shape[1] + 4 + small.shape[1], 3), np.uint8)
    out[: thumb.shape[0], : thumb.shape[1]] = thumb
    out[: small.shape[0], thumb.shape[1] + 4 :] = small
    return out


def _float(mask: np.ndarray | None, shape: tuple[int, int], fill: float) -> np.ndarray:
    """A layer's mask as float32 in [0, 1]; ``fill`` everywhere when it has none."""
    if mask is None:
        return np.full(shape, fill, np.float32)
    return mask.astype(np.float32) / np.float32(65535.0)


class MaskTools(QWidget):
    """The mask bar: "Edit mask" and the overlay toggle, and while editing the tools."""

    def __init__(self, session, canvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("maskTools")
        self.session, self.canvas = session, canvas
        self.tool = "brush"
        self._stroke: QImage | None = None
        self._dirty = QRectF()
        self._start: QPointF | None = None
        self._end: QPointF | None = None
        self._overlay_cache: tuple[str, QImage] | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        self.edit_button = QToolButton(self)
        self.edit_button.setObjectName("editMask")
        self.edit_button.setText("Edit mask")
        self.edit_button.setCheckable(True)
        self.edit_button.setToolTip(
            "Paint where the selected layer applies (white) and where it keeps the photo; an "
            "instruction sent while editing starts with this mask."
        )
        self.edit_button.toggled.connect(self._editing_toggled)
        layout.addWidget(self.edit_button)
        self.overlay_box = QCheckBox("Show mask", self)
        self.overlay_box.setObjectName("maskOverlay")
        self.overlay_box.toggled.connect(lambda _on: self.canvas.update())
        layout.addWidget(self.overlay_box)
        self.tools = QWidget(self)
        row = FlowLayout(self.tools)  # wraps on a narrow window instead of widening it
        row.setContentsMargins(0, 0, 0, 0)
        self.buttons: dict[str, QToolButton] = {}
        for name in TOOLS:
            button = QToolButton(self.tools)
            button.setText(name.capitalize())
            button.setCheckable(True)
            button.setAutoExclusive(True)
            button.setObjectName(f"mask_{name}")
            button.clicked.connect(lambda _c=False, n=name: self.set_tool(n))
            row.addWidget(button)
            self.buttons[name] = button
        self.buttons["brush"].setChecked(True)
        self.size = self._spin(row, "Size", 1, 500, 40, " px")
        self.hardness = self._spin(row, "Hardness", 0, 100, 50, " %")
        self.opacity = self._spin(row, "Opacity", 1, 100, 100, " %")
        self.band = QComboBox(self.tools)
        self.band.addItems(list(masks.BANDS))
        row.addWidget(self.band)
        self._button(row, "Select range", "maskRange", self.select_range)
        self._button(row, "Invert", "maskInvert", self.invert)
        self._button(row, "Clear", "maskClear", self.clear)
        self.feather_px = self._spin(row, "Feather", 1, 200, 8, " px")
        self._button(row, "Feather", "maskFeather", self.feather)
        layout.addWidget(self.tools, 1)
        self.tools.setVisible(False)
        self._draft: np.ndarray | None = None  # the mask edited while no layer is selected
        self._shortcuts = [
            self._shortcut(
                "[", lambda: self.size.setValue(max(1, round(self.size.value() / 1.25)))
            ),
            self._shortcut("]", lambda: self.size.setValue(round(self.size.value() * 1.25) + 1)),
            self._shortcut("X", self.swap),
        ]
        canvas.mask_overlay = self
        session.new_layer_mask = self.mask_for_new_layer
        session.document.layersChanged.connect(self._layers_changed)

    def _spin(self, row, label: str, low: int, high: int, value: int, suffix: str) -> QSpinBox:
        row.addWidget(QLabel(label, self.tools))
        spin = QSpinBox(self.tools)
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setObjectName(f"mask{label}")
        row.addWidget(spin)
        return spin

    def _button(self, row, text: str, name: str, slot) -> QPushButton:
        button = QPushButton(text, self.tools)
        button.setObjectName(name)
        button.clicked.connect(slot)
        row.addWidget(button)
        return button

    def _shortcut(self, key: str, slot) -> QShortcut:
        shortcut = QShortcut(QKeySequence(key), self.window() or self)
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        shortcut.activated.connect(slot)
        shortcut.setEnabled(False)
        return shortcut

    # State

    @property
    def editing(self) -> bool:
        return self.edit_button.isChecked()

    def set_tool(self, name: str) -> None:
        """Choose a tool (one of ``TOOLS``)."""
        self.tool = name
        self.buttons[name].setChecked(True)

    def swap(self) -> None:
        """X: brush ↔ eraser."""
        self.set_tool("eraser" if self.tool == "brush" else "brush")

    def _editing_toggled(self, on: bool) -> None:
        self.tools.setVisible(on)
        for shortcut in self._shortcuts:
            shortcut.setEnabled(on)
        if on:
            self.overlay_box.setChecked(True)
        self.canvas.update()

    def _layers_changed(self) -> None:
        self._overlay_cache = None
        self.canvas.update()

    def _layer(self):
        doc, selected = self.session.document, self.session.selected
        return doc.layer(selected) if selected and doc.has_layer(selected) else None

    def current_mask(self) -> np.ndarray | None:
        """The mask being edited: the selected layer's, else the draft (uint16 or None)."""
        layer = self._layer()
        return layer.mask if layer is not None else self._draft

    def mask_for_new_layer(self) -> np.ndarray | None:
        """What a layer made from the chat starts with: the edited mask while editing."""
        return self.current_mask() if self.editing else None

    def _photo_shape(self) -> tuple[int, int] | None:
        source = self.session.document.source
        return None if source is None else source.photo.pixels.shape[:2]

    def _commit(self, plane: np.ndarray | None, what: str) -> None:
        """One undo step on the selected layer; the draft changes when there is none."""
        layer = self._layer()
        if layer is not None:
            self.session.undo_stack.push(
                commands.SetMask(self.session.document, layer.id, plane, what)
            )
        else:
            self._draft = None if plane is None else commands.Layer("draft", "x", mask=plane).mask
            self._overlay_cache = None
        self.canvas.update()

    # Whole-mask tools

    def _current_float(self, fill: float) -> np.ndarray | None:
        shape = self._photo_shape()
        return None if shape is None else _float(self.current_mask(), shape, fill)

    def invert(self) -> None:
        plane = self._current_float(1.0)
        if plane is not None:
            self._commit(1.0 - plane, "Invert mask of")

    def clear(self) -> None:
        if self.current_mask() is not None:
            self._commit(None, "Clear mask of")

    def feather(self) -> None:
        plane = self._current_float(1.0)
        if plane is not None:
            radius = self.feather_px.value() / max(self.canvas.scale, 1e-6)
            self._commit(masks.feather(plane, radius), "Feather mask of")

    def select_range(self) -> None:
        """The brightness range of the photo (shadows / midtones / highlights) as the mask."""
        source = self.session.document.source
        if source is not None:
            plane = masks.brightness_range(source.photo.pixels, self.band.currentText())
            self._commit(plane, f"Select {self.band.currentText()} for")

    # Canvas hooks (ui.canvas calls these while editing)

    def press(self, event) -> bool:
        if not self.editing or event.button() != Qt.MouseButton.LeftButton:
            return False
        if self._photo_shape() is None:
            return False
        pos = event.position()
        self._start = self._end = pos
        if self.tool in ("brush", "eraser"):
            ratio = self.canvas.devicePixelRatioF()
            size = self.canvas.size() * ratio
            self._stroke = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
            self._stroke.setDevicePixelRatio(ratio)
            self._stroke.fill(Qt.GlobalColor.transparent)
            self._dirty = QRectF()
            self._dab(pos)
        self.canvas.update()
        return True

    def move(self, event) -> bool:
        if self._start is None:
            return False
        pos = event.position()
        if self._stroke is not None:
            # dabs every quarter radius between events, so fast strokes stay continuous
            last, dist = self._end, (pos - self._end).manhattanLength()
            steps = max(1, int(dist / max(1.0, self._radius() / 4)))
            for i in range(1, steps + 1):
                self._dab(last + (pos - last) * (i / steps))
        self._end = pos
        self.canvas.update()
        return True

    def release(self, event) -> bool:
        if self._start is None:
            return False
        self._end = event.position()
        try:
            self._finish()
        finally:
            self._start = None
            self._stroke = None
            self.canvas.update()
        return True

    def _radius(self) -> float:
        return self.size.value() / 2 * getattr(self.canvas, "pressure", 1.0)

    def _dab(self, pos: QPointF) -> None:
        r = max(0.5, self._radius())
        gradient = QRadialGradient(pos, r)
        hard = self.hardness.value() / 100
        gradient.setColorAt(0.0, QColor(255, 255, 255, 255))
        gradient.setColorAt(min(hard, 0.99), QColor(255, 255, 255, 255))
        gradient.setColorAt(1.0, QColor(255, 255, 255, 0))
        painter = QPainter(self._stroke)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(gradient)
        painter.drawEllipse(pos, r, r)
        painter.end()
        self._dirty = self._dirty.united(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))

    def _to_image(self, p: QPointF) -> tuple[float, float]:
        q = self.canvas.to_image(p)
        return q.x(), q.y()

    def _finish(self) -> None:
        shape = self._photo_shape()
        opacity = self.opacity.value() / 100
        erase = self.tool == "eraser"
        if self._stroke is not None:
            merged = self._merge_stroke(shape, opacity, erase)
            if merged is not None:
                self._commit(merged, "Erase mask of" if erase else "Paint mask of")
            return
        current = _float(self.current_mask(), shape, 0.0)
        a, b = self._to_image(self._start), self._to_image(self._end)
        if self.tool == "gradient":
            plane = masks.linear_gradient(shape, a, b)
        elif abs(a[0] - b[0]) < 1 or abs(a[1] - b[1]) < 1:
            return  # a click, not a shape
        elif self.tool == "rectangle":
            plane = masks.paint_rect(shape, (*a, *b))
        else:
            plane = masks.paint_ellipse(shape, (*a, *b))
        self._commit(masks.combine(current, plane, opacity, False), f"Mask {self.tool} on")

    def _merge_stroke(
        self, shape: tuple[int, int], opacity: float, erase: bool
    ) -> np.ndarray | None:
        """Scale the touched part of the screen stroke to the photo and paint it into a copy
        of the uint16 mask: only the stroke's box is converted, so a stroke on a 24 MP mask
        costs a copy and the box."""
        h, w = shape
        box = self._dirty.intersected(self.canvas.image_rect()).intersected(
            QRectF(self.canvas.rect())
        )
        if box.isEmpty():
            return None
        x0, y0 = self._to_image(box.topLeft())
        x1, y1 = self._to_image(box.bottomRight())
        ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        ix1, iy1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        ratio = self._stroke.devicePixelRatio()
        image = self._stroke.convertToFormat(QImage.Format.Format_ARGB32)
        bpl = image.bytesPerLine()
        raw = np.frombuffer(image.constBits(), np.uint8, bpl * image.height())
        alpha = raw.reshape(image.height(), bpl)[:, : image.width() * 4].reshape(
            image.height(), image.width(), 4
        )[..., 3]
        # the screen pixels that cover [ix0, ix1) x [iy0, iy1) of the photo
        rect = self.canvas.image_rect()
        scale = rect.width() / w
        sx0, sy0 = (rect.left() + ix0 * scale) * ratio, (rect.top() + iy0 * scale) * ratio
        sx1, sy1 = (rect.left() + ix1 * scale) * ratio, (rect.top() + iy1 * scale) * ratio
        crop = Image.fromarray(np.ascontiguousarray(alpha), "L").resize(
            (ix1 - ix0, iy1 - iy0), Image.Resampling.BILINEAR, box=(sx0, sy0, sx1, sy1)
        )
        cover = np.asarray(crop, np.float32) / np.float32(255.0)
        mask = self.current_mask()
        if mask is None:  # painting starts from nothing applied, erasing from everything
            out = np.full(shape, 65535 if erase else 0, np.uint16)
        else:
            out = mask.copy()
        region = out[iy0:iy1, ix0:ix1].astype(np.float32) / np.float32(65535.0)
        region = masks.combine(region, cover, opacity, erase)
        out[iy0:iy1, ix0:ix1] = np.rint(np.clip(region, 0.0, 1.0) * 65535.0).astype(np.uint16)
        return out

    def paint(self, painter: QPainter) -> None:
        """The overlay (red where the layer applies) and the stroke or shape in progress."""
        if self.overlay_box.isChecked():
            image = self._overlay_image()
            if image is not None:
                painter.drawImage(self.canvas.image_rect(), image)
        if self._stroke is not None:
            painter.setOpacity(0.5)
            painter.drawImage(QRectF(self.canvas.rect()), self._stroke)
            painter.setOpacity(1.0)
        elif self._start is not None and self._end is not None:
            painter.setPen(QPen(QColor(255, 255, 255, 220), 1, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            if self.tool == "gradient":
                painter.drawLine(self._start, self._end)
            elif self.tool == "ellipse":
                painter.drawEllipse(QRectF(self._start, self._end).normalized())
            elif self.tool == "rectangle":
                painter.drawRect(QRectF(self._start, self._end).normalized())

    def _overlay_image(self) -> QImage | None:
        mask = self.current_mask()
        if mask is None:
            return None
        key = str(id(mask))
        if self._overlay_cache is None or self._overlay_cache[0] != key:
            step = max(1, max(mask.shape) // OVERLAY_EDGE)
            small = mask[::step, ::step]
            rgba = np.empty((*small.shape, 4), np.uint8)
            rgba[..., :3] = OVERLAY_RGB
            rgba[..., 3] = ((small >> 8).astype(np.uint16) * 110 // 255).astype(np.uint8)
            h, w = small.shape
            image = QImage(rgba.data, w, h, w * 4, QImage.Format.Format_RGBA8888).copy()
            self._overlay_cache = (key, image)
        return self._overlay_cache[1]
