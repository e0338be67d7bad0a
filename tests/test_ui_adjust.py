"""A request to darken: an exposure adjustment layer computed without the model, with strength,
undo, projects, its own labels in the chat and the layers panel."""

from __future__ import annotations

import numpy as np
import pytest
import test_ui_editing
from test_ui_editing import WAIT, composite, idle, open_and_wait, type_instruction

from instructir_desktop.app.stack import StepSpec
from instructir_desktop.core.adjust import (
    darken_stops,
    describe_stops,
    exposure,
)

make_window = test_ui_editing.make_window  # windows on the tiny pack


def bright_photo(path, size=(64, 48)):
    """An overexposed photo: a gradient pushed into the highlights, some of it clipped."""
    from PIL import Image

    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x / size[0], y / size[1], np.full(x.shape, 0.5)], axis=2) * 0.5 + 0.55
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def test_exposure_is_stops_in_linear_light_with_a_soft_shoulder():
    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 3), dtype=np.float32)
    assert np.allclose(exposure(image, 0.0), image, atol=2e-6)  # the identity below the knee…
    grey = np.full((1, 1, 3), 0.4613, np.float32)  # sRGB of linear 0.18
    # …one stop down halves the light: linear 0.09, sRGB 0.3324
    assert exposure(grey, -1.0)[0, 0, 0] == pytest.approx(0.3324, abs=2e-3)
    up = exposure(np.full((1, 1, 3), 0.9, np.float32), 2.0)
    assert 0.97 < up[0, 0, 0] < 1.0  # highlights roll off instead of clipping
    darker = exposure(image, -1.5)
    assert (darker <= image + 1e-6).all() and darker.dtype == np.float32
    with pytest.raises(ValueError):
        exposure(image, 9.0)
    assert darken_stops(np.full((8, 8, 3), 0.9, np.float32)) == pytest.approx(-2.0)
    assert darken_stops(np.full((8, 8, 3), 0.05, np.float32)) == pytest.approx(-0.5)
    assert describe_stops(-1.25) == "−1.2 EV"
    # Adjustment keys do not depend on the model pack: toggling packs keeps them cached.
    from instructir_desktop.app.stack import chain

    step = StepSpec("a", "too bright", 1.0, True, -1.0)
    assert chain("fp", [step], "pack-a", (4, 4))[0] == chain("fp", [step], "pack-b", (4, 4))[0]


def test_a_request_to_darken_adds_an_exposure_adjustment(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, bright_photo(tmp_path / "bright.png"))
    session, doc = window.session, window.session.document
    source = doc.source.photo.pixels
    jobs = test_ui_editing.restore_jobs(window)

    type_instruction(qtbot, window, "the photo is way too bright")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    layer = doc.layers[0]
    assert layer.is_adjustment and -2.0 <= layer.adjust <= -0.5
    assert jobs == []  # no model job: computed on the compute thread
    darker = composite(window)
    np.testing.assert_allclose(darker, exposure(source, layer.adjust), atol=1e-6)
    assert darker.mean() < source.mean() - 0.05

    message = session.chat.messages[0]
    assert message.state == "applied" and message.chip == "Exposure · adjustment, no model"
    widget = window.chat.widgets[message.id]
    assert widget.chip.isVisible() and not widget.apply_button.isVisible()
    assert "computed without the model" in widget.advice.text()
    assert not widget.models_button.isVisible()
    row = window.layers.list.item(0).text()
    assert "Adjustment: exposure −" in row and "strength 100 %" in row
    assert not window.layers.edit_button.isEnabled()  # an amount, not a text to edit

    # Strength blends it like any layer; undo and redo are instant.
    window.layers.spin.setValue(50)
    idle(qtbot, window)
    half = composite(window)
    np.testing.assert_allclose(half, source + np.float32(0.5) * (darker - source), atol=1e-5)
    window.undo_action.trigger()
    idle(qtbot, window)
    assert np.array_equal(composite(window), darker)
    window.redo_action.trigger()
    idle(qtbot, window)

    # Saved in the project, reopened with the same pixels and the same labels.
    project = tmp_path / "bright.instructir"
    with qtbot.waitSignal(session.projectSaved, timeout=WAIT):
        session.save_project(project)
    other = make_window()
    open_and_wait(qtbot, other, project)
    assert other.session.document.layers == doc.layers
    assert np.array_equal(composite(other), half)
    assert other.session.chat.messages[0].chip == "Exposure · adjustment, no model"

    # Undo takes the layer away: the original again.
    while session.undo_stack.canUndo():
        session.undo_stack.undo()
    idle(qtbot, window)
    assert np.array_equal(composite(window), source)
    assert session.chat.messages[0].state == "undone"
