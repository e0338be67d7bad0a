"""What the photo suggests, in the chat: shown when a photo opens, nothing applied until a
button is clicked, assessed off the GUI thread, and optionally again after each layer."""

from __future__ import annotations

import threading

import numpy as np
import test_ui_editing
from PIL import Image
from PySide6.QtCore import Qt
from test_ui_editing import WAIT, idle

from instructir_desktop.core import assess as core_assess
from instructir_desktop.core.packs import TASK_PROMPTS
from instructir_desktop.core.resources import resource_path

make_window = test_ui_editing.make_window  # the same fixture: windows on the tiny pack


def sample(path, damaged: bool) -> str:
    """The sample photo at a third of its size; ``damaged``: far too dark and grainy."""
    with Image.open(resource_path("sample", "sample.jpg")) as im:
        a = np.asarray(im.convert("RGB").reduce(3), np.float32) / 255
    if damaged:
        rng = np.random.default_rng(0)
        a = np.clip(a**1.6 * 0.12 + rng.normal(0, 20 / 255, a.shape), 0, 1)
    Image.fromarray((a * 255).round().astype(np.uint8)).save(path)
    return str(path)


def open_photo(qtbot, window, path):
    with qtbot.waitSignal(window.session.assessor.advice, timeout=WAIT, check_params_cb=bool):
        window.open_path(path)
    idle(qtbot, window)


def test_opening_a_dark_grainy_photo_offers_its_fixes_in_order(
    qtbot, make_window, tmp_path, monkeypatch
):
    window = make_window()
    threads = []
    real = core_assess.Assessor.assess

    def spy(self, image):
        threads.append(threading.current_thread())
        return real(self, image)

    monkeypatch.setattr(core_assess.Assessor, "assess", spy)
    open_photo(qtbot, window, sample(tmp_path / "night.png", damaged=True))
    assert threads and threading.main_thread() not in threads  # off the GUI thread
    card, session = window.chat.assessment, window.session
    assert card.isVisible()
    assert card.text.text().startswith("This photo looks too dark (")
    assert "below 10 % brightness" in card.text.text()
    titles = [b.text() for b in card.buttons.values()]
    assert list(card.buttons)[:2] == ["lowlight", "denoise"]
    assert titles[0] == f"1. {session.task_title('lowlight')}" and titles[1].startswith("2. ")
    assert session.document.layers == [] and session.chat.messages == []  # nothing applied

    qtbot.mouseClick(card.buttons["lowlight"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    assert session.document.layers[0].instruction == TASK_PROMPTS["lowlight"]
    assert not card.buttons["lowlight"].isEnabled() and card.buttons["denoise"].isEnabled()

    # Undone, or deleted, the fix is offered again; redone, it is not.
    idle(qtbot, window)
    window.undo_action.trigger()
    assert session.document.layers == [] and card.buttons["lowlight"].isEnabled()
    window.redo_action.trigger()
    assert not card.buttons["lowlight"].isEnabled()
    session.remove_layer(session.document.layers[0].id)
    assert card.buttons["lowlight"].isEnabled() and card.all_button.isEnabled()


def test_apply_all_queues_every_fix_in_order(qtbot, make_window, tmp_path):
    window = make_window()
    open_photo(qtbot, window, sample(tmp_path / "night.png", damaged=True))
    card, session = window.chat.assessment, window.session
    count = len(card.buttons)
    assert card.all_button.isVisible() and card.all_button.text().startswith(f"Apply all {count}")
    qtbot.mouseClick(card.all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(session.document.layers) == count, timeout=WAIT)
    wanted = [TASK_PROMPTS[t] for t in card.buttons]
    assert [layer.instruction for layer in session.document.layers] == wanted


def test_a_clean_photo_has_nothing_obvious_to_fix(qtbot, make_window, tmp_path):
    window = make_window()
    open_photo(qtbot, window, sample(tmp_path / "clean.png", damaged=False))
    card = window.chat.assessment
    assert card.isVisible() and card.text.text() == "Nothing obvious to fix."
    assert card.buttons == {} and not card.all_button.isVisible()
    assert window.chat.suggestions.isVisible()  # the seven fixes stay on offer


def test_reassess_after_each_layer_when_the_setting_is_on(qtbot, make_window, tmp_path):
    window = make_window(reassess_layers=True)
    open_photo(qtbot, window, sample(tmp_path / "night.png", damaged=True))
    first = window.session.assessor.latest
    with qtbot.waitSignal(window.session.assessor.advice, timeout=WAIT) as again:
        qtbot.mouseClick(window.chat.assessment.buttons["lowlight"], Qt.MouseButton.LeftButton)
    advice = again.args[0]
    assert advice.after_layer and advice.assessment is not first.assessment
    assert window.chat.assessment.text.text() == advice.text
    assert advice.text == advice.assessment.compare(first.assessment)


def test_no_reassessment_with_the_setting_off(qtbot, make_window, tmp_path):
    window = make_window()
    assert window.session.settings.reassess_layers is False
    open_photo(qtbot, window, sample(tmp_path / "night.png", damaged=True))
    seen = []
    window.session.assessor.advice.connect(seen.append)
    qtbot.mouseClick(window.chat.assessment.buttons["lowlight"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    qtbot.wait(300)
    assert seen == []
