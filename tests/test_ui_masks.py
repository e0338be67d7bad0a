"""Masks driven like a user: paint on the real canvas, undo, save and reopen, export, and an
instruction sent while the mask tools are active."""

from __future__ import annotations

import numpy as np
import test_ui_editing
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from test_ui_editing import WAIT, composite, idle, make_photo, open_and_wait, type_instruction

make_window = test_ui_editing.make_window  # windows on the tiny pack


def at(window, x: float, y: float) -> QPoint:
    """The canvas widget point that shows photo pixel (x, y)."""
    rect = window.canvas.image_rect()
    scale = rect.width() / window.session.document.source.photo.pixels.shape[1]
    return QPointF(rect.left() + (x + 0.5) * scale, rect.top() + (y + 0.5) * scale).toPoint()


def stroke(qtbot, window, points) -> None:
    canvas = window.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(window, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(canvas, pos=at(window, *p))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(window, *points[-1]))


def test_paint_undo_save_reopen_export_and_chat(qtbot, make_window, tmp_path):
    window = make_window()
    photo = make_photo(tmp_path / "photo.png", size=(128, 96))
    open_and_wait(qtbot, window, photo)
    session, doc = window.session, window.session.document
    source = doc.source.photo.pixels
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    full = composite(window).copy()
    layer_id = doc.layers[0].id

    tools = window.mask_tools
    qtbot.mouseClick(tools.edit_button, Qt.MouseButton.LeftButton)
    assert tools.editing and tools.tools.isVisibleTo(window) and tools.overlay_box.isChecked()
    scale = window.canvas.image_rect().width() / 128
    tools.size.setValue(max(4, round(24 * scale)))  # about 24 photo pixels across
    tools.hardness.setValue(100)
    steps = session.undo_stack.count()
    stroke(qtbot, window, [(20, 48), (28, 48), (36, 48), (44, 48)])
    assert session.undo_stack.count() == steps + 1  # one stroke, one undo step
    mask = doc.layer(layer_id).mask
    assert mask is not None and mask.shape == (96, 128)  # full resolution
    assert mask[48, 32] == 65535 and mask[48, 110] == 0
    idle(qtbot, window)
    masked = composite(window).copy()
    assert np.array_equal(masked[44:52, 24:40], full[44:52, 24:40])
    assert np.array_equal(masked[:, 80:], source[:, 80:])
    assert not np.array_equal(full[:, 80:], source[:, 80:])
    row_icon = window.layers.list.item(0).icon()
    assert not row_icon.isNull()
    shown = window.canvas.grab().toImage()
    tools.overlay_box.setChecked(False)  # the red overlay over the masked area goes
    hidden = window.canvas.grab().toImage()
    assert shown != hidden
    tools.overlay_box.setChecked(True)

    # Undo the stroke: no mask, the whole layer again; redo brings the mask back.
    window.undo_action.trigger()
    idle(qtbot, window)
    assert doc.layer(layer_id).mask is None and np.array_equal(composite(window), full)
    window.redo_action.trigger()
    idle(qtbot, window)
    assert np.array_equal(composite(window), masked)

    # Shortcuts: X swaps brush and eraser, ] makes the brush larger.
    size = tools.size.value()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert tools.tool == "eraser"
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert tools.size.value() > size
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert tools.tool == "brush"

    # Save and reopen: the same mask, sample for sample, and the same pixels.
    project = tmp_path / "masked.instructir"
    with qtbot.waitSignal(session.projectSaved, timeout=WAIT):
        session.save_project(project)
    other = make_window()
    open_and_wait(qtbot, other, project)
    assert np.array_equal(other.session.document.layers[0].mask, doc.layer(layer_id).mask)
    assert np.array_equal(composite(other), masked)

    # Export: outside the mask the photo's own pixels, inside it the unmasked layer's.
    target = tmp_path / "out.png"
    with qtbot.waitSignal(session.exported, timeout=WAIT):
        session.export(target)
    out = np.asarray(Image.open(target).convert("RGB"))
    original = np.asarray(Image.open(photo).convert("RGB"))
    unmasked = np.rint(np.clip(full, 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(out[:, 80:], original[:, 80:])
    assert np.array_equal(out[44:52, 24:40], unmasked[44:52, 24:40])

    # With the mask tools active, an instruction's new layer starts with that mask.
    type_instruction(qtbot, window, "make it sharper")
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    assert np.array_equal(doc.layers[1].mask, doc.layer(layer_id).mask)
    assert session.chat.messages[-1].note == "Applied to the selected area."


def test_shape_gradient_range_invert_clear(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(128, 96)))
    session, doc = window.session, window.session.document
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    tools = window.mask_tools
    tools.edit_button.setChecked(True)
    layer_id = doc.layers[0].id
    qtbot.mouseClick(tools.buttons["rectangle"], Qt.MouseButton.LeftButton)
    stroke(qtbot, window, [(10, 10), (60, 40)])
    mask = doc.layer(layer_id).mask
    assert mask[20, 30] == 65535 and mask[80, 100] == 0
    tools.invert()
    assert doc.layer(layer_id).mask[20, 30] == 0
    tools.clear()
    assert doc.layer(layer_id).mask is None
    tools.set_tool("gradient")
    stroke(qtbot, window, [(0, 0), (0, 95)])
    grad = doc.layer(layer_id).mask
    assert grad[2, 64] > grad[50, 64] > grad[93, 64]
    tools.band.setCurrentText("highlights")
    tools.select_range()
    assert doc.layer(layer_id).mask is not None
    before = session.undo_stack.count()
    tools.feather()
    assert session.undo_stack.count() == before + 1
    for _ in range(session.undo_stack.count()):
        session.undo_stack.undo()
    assert doc.layers == []
