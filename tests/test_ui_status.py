"""What the window says while it works, and the small things around it: progress with an
estimate and a "done" moment, a reopened project waiting for the model, the official-model
offer, the Models and Preferences dialogs, \\ to hold the original, controls without a photo.
"""

from __future__ import annotations

import pytest
import test_ui_window
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFormLayout, QLabel
from test_ui_editing import make_photo, type_instruction
from test_ui_window import WAIT, add_layer, open_photo

from instructir_desktop.app.settings import SETTINGS, Settings
from instructir_desktop.core.packs import LITE_ID
from instructir_desktop.ui import dialogs, job_status, main_window
from instructir_desktop.ui.job_status import eta_text
from instructir_desktop.ui.main_window import MainWindow

make_window = test_ui_window.make_window  # windows on the tiny pack
answers = test_ui_window.answers


@pytest.fixture(scope="module")
def lite_named_pack(tmp_path_factory):
    """A tiny pack that carries the bundled pack's id (the app treats it as the Lite pack)."""
    from conftest import make_tiny_pack

    return make_tiny_pack(tmp_path_factory.mktemp("lite"), pack_id=LITE_ID)


def test_progress_has_an_estimate_a_steady_bar_and_a_done_moment(
    qtbot, make_window, tmp_path, monkeypatch
):
    # An estimate from the first measured tile on: the job is quick on a fast machine.
    monkeypatch.setattr(job_status, "ETA_AFTER_S", 0.0)
    window = make_window(tile=32)  # many small tiles: many progress steps
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(160, 160), seed=3))
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)
    seen: list[tuple[int, str]] = []
    window.session.scheduler.progress.connect(
        lambda _f, _t: seen.append(
            (
                window.progress.mapTo(window, window.progress.rect().topLeft()).x(),
                window.progress_label.text(),
            )
        )
    )
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: "Done in" in window.progress_label.text(), timeout=WAIT)
    assert window.job_status.isVisible() and not window.progress.isVisible()
    assert any("left" in text or "almost done" in text for _x, text in seen), seen
    assert len({text for _x, text in seen}) > 2  # the text changed as the job went on
    assert len({x for x, _text in seen}) == 1  # the bar did not move with it
    qtbot.waitUntil(lambda: not window.job_status.isVisible(), timeout=10_000)
    assert window.progress_label.text() == ""


def test_the_strip_and_a_passing_message_never_share_the_status_bar(qtbot, make_window, tmp_path):
    """The status bar hides its strips under a message ("Opened p.png"); a strip that shows
    itself meanwhile takes the place, or the two are drawn over each other."""
    window = make_window()
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(96, 96), seed=4))
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)
    qtbot.waitUntil(lambda: not window.job_status.isVisible(), timeout=10_000)
    window.statusBar().showMessage("Opened p.png.", 60_000)
    assert window.statusBar().currentMessage()
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: window.job_status.isVisible(), timeout=WAIT)
    assert window.statusBar().currentMessage() == ""
    qtbot.waitUntil(lambda: "Done in" in window.progress_label.text(), timeout=WAIT)
    window.statusBar().showMessage("Exported p.jpg.", 60_000)  # a message over the strip
    assert not window.job_status.isVisible()


def test_eta_wording():
    assert eta_text(0.5, 0.5) == ""  # too early to tell
    assert eta_text(10, 0.25) == "about 30 s left"
    assert eta_text(60, 0.25) == "about 3 min left"
    assert eta_text(10, 0.99) == "almost done"


def test_a_reopened_project_says_its_layers_wait_for_the_model(qtbot, make_window, tmp_path):
    window = make_window()
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    add_layer(qtbot, window)
    add_layer(qtbot, window, "brighten it")
    project = tmp_path / "two.instructir"
    with qtbot.waitSignal(window.session.projectSaved, timeout=WAIT):
        window.session.save_project(project)

    # A fresh window whose model has not started loading yet (it starts once shown).
    settings = Settings()
    settings.set("backend", "torch")
    other = MainWindow(settings, pack_dir=window.session.pack_dir, bridge=False, autosave=False)
    other.ask_before_close = False
    qtbot.addWidget(other)
    with qtbot.waitSignal(other.session.documentOpened, timeout=WAIT):
        other.open_path(project)
    qtbot.waitUntil(lambda: other.session.scheduler.activity == "waiting", timeout=WAIT)
    assert other.progress_label.text() == "Loading the model to render 2 layers…"
    assert other.canvas.notice == "Original shown: loading the model to render 2 layers…"
    other.show()
    qtbot.waitUntil(lambda: other.session.scheduler.idle, timeout=WAIT)
    qtbot.waitUntil(lambda: other.canvas.notice == "", timeout=WAIT)
    qtbot.waitUntil(lambda: "Done in" in other.progress_label.text(), timeout=WAIT)


def test_controls_that_need_a_photo_or_a_layer(qtbot, make_window, tmp_path):
    window = make_window(wait_model=False)
    for action in (window.fit_action, window.zoom100_action, window.zoom_in_action):
        assert not action.isEnabled()
    spin = window.layers.spin
    assert not spin.isEnabled() and spin.lineEdit().text().strip() == ""  # not "0 %"
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT)
    assert window.fit_action.isEnabled() and window.zoom100_action.isEnabled()
    add_layer(qtbot, window)
    assert spin.isEnabled() and spin.lineEdit().text() == "100 %"


def test_backslash_holds_the_original_wherever_the_focus_is(qtbot, make_window, tmp_path):
    window = make_window()
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    add_layer(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    for widget in (window.layers.list, window.chat.input):  # the chat box is empty
        widget.setFocus()
        qtbot.waitUntil(widget.hasFocus, timeout=5000)
        qtbot.keyPress(widget, Qt.Key.Key_Backslash)
        assert window.canvas.holding, widget.objectName()
        qtbot.keyRelease(widget, Qt.Key.Key_Backslash)
        assert not window.canvas.holding
    # Once something is typed, a backslash is text.
    qtbot.keyClicks(window.chat.input, "a")
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Backslash)
    assert not window.canvas.holding and window.chat.input.toPlainText() == "a\\"


def test_the_official_model_is_offered_quietly_and_only_online(qtbot, make_window, monkeypatch):
    offline = make_window()
    qtbot.wait(300)
    assert not offline.official_button.isVisible() and offline.banner.tag != "official"

    monkeypatch.setattr(main_window, "hub_reachable", lambda: True)
    online = make_window()
    qtbot.waitUntil(online.official_button.isVisible, timeout=WAIT)
    assert not online.banner.isVisible()  # the photo is not pushed down
    online.official_button.click()
    dialog = online.models_dialog
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=WAIT)  # its listing is in
    dialog.close()


def test_lite_weak_spots_are_said_in_the_chat(qtbot, make_window, lite_named_pack, tmp_path):
    window = make_window(pack_dir=lite_named_pack)
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session
    session.apply_task("denoise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    session.apply_task("deblur")
    qtbot.waitUntil(lambda: len(session.document.layers) == 2, timeout=WAIT)
    denoise, deblur = session.chat.messages
    assert denoise.advice == ""
    assert "Lite model does little against blur" in deblur.advice
    widget = window.chat.widgets[deblur.id]
    assert widget.advice.isVisible() and widget.models_button.isVisible()
    widget.models_button.click()
    assert window.models_dialog.isVisible()

    # The Models dialog: the pack in use cannot be "used" again, sizes include the encoder,
    # the status column is not cut off, a failure points at buttons, not at a command.
    dialog = window.models_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 2, timeout=WAIT)
    rows = {dialog.table.item(r, 0).data(Qt.ItemDataRole.UserRole): r for r in range(2)}
    dialog.table.selectRow(rows[LITE_ID])
    assert not dialog.use_button.isEnabled()
    official = rows["instructir-7d"]
    assert dialog.table.item(official, 2).text().startswith("about 13")  # 64 MB + ~70 MB
    header = dialog.table.horizontalHeader()
    for r in range(dialog.table.rowCount()):
        text = dialog.table.item(r, 3).text()
        assert header.sectionSize(3) >= dialog.table.fontMetrics().horizontalAdvance(text)
    dialog.manager.failed.emit(
        "instructir-7d",
        "Could not download x: offline. Check your internet connection, or import the files "
        "with `instructir models import instructir-7d FILE...`.",
    )
    assert (
        "Import files…" in dialog.status.text() and "instructir models" not in dialog.status.text()
    )
    assert dialog.selected_pack().id == LITE_ID
    assert "width 8" not in dialog.description.text()  # words for photographers
    assert "synthetic" not in dialog.description.text()
    dialog.close()


def test_preferences_use_plain_labels_and_units(qtbot, make_window):
    window = make_window(wait_model=False)
    dialog = dialogs.PreferencesDialog(window.settings, window)
    form = dialog.findChild(QFormLayout)
    labels = {
        form.labelForField(field).text() if form.labelForField(field) else ""
        for field in dialog.fields.values()
    }
    for name in ("tile", "cache_mb", "preview_edge", "min_confidence", "autosave_seconds"):
        assert SETTINGS[name].title + ":" in labels
        assert "_" not in SETTINGS[name].title and SETTINGS[name].title[0].isupper()
    assert dialog.fields["tile"].text() == "Automatic"
    assert dialog.fields["preview_edge"].text() == "1280 px"
    assert dialog.fields["cache_mb"].text() == "2048 MB"
    assert dialog.fields["min_confidence"].text() == "0 %"  # the chat's unit
    dialog.fields["min_confidence"].setValue(60)
    dialog.fields["theme"].setCurrentIndex(dialog.fields["theme"].findData("light"))
    assert dialog.fields["theme"].currentText() == "Light"
    dialog._apply()
    assert window.settings.min_confidence == pytest.approx(0.6)
    assert window.settings.theme == "light"
    assert not any(
        isinstance(w, QLabel) and w.text() == "Cache mb:" for w in dialog.findChildren(QLabel)
    )
    QTimer.singleShot(0, dialog.close)


def test_a_message_sent_while_the_model_loads_says_what_it_waits_for(
    qtbot, tiny_pack, answers, tmp_path
):
    from instructir_desktop.ui.chat_panel import LOADING_STATUS

    settings = Settings()
    settings.set("backend", "torch")
    window = MainWindow(settings, pack_dir=tiny_pack, bridge=False, autosave=False)
    window.ask_before_close = False
    qtbot.addWidget(window)  # not shown yet: the model starts loading once it is
    open_photo(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    window.chat.input.setPlainText("remove the noise")
    window.chat.send()
    message = window.session.chat.messages[0]
    assert window.chat.widgets[message.id].status.text() == LOADING_STATUS
    window.show()
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)
    assert window.chat.widgets[message.id].status.text() != LOADING_STATUS
