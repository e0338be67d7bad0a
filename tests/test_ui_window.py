"""Window-level behaviour: closing with unsaved changes, autosave and recovery, models and
preferences dialogs, paste, drag and drop, recent files, hold-to-compare, no-model start.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from instructir_desktop.app.autosave import autosave_dir, find_recoverable
from instructir_desktop.app.document import Layer
from instructir_desktop.app.project import ProjectData, save_project
from instructir_desktop.app.settings import Settings
from instructir_desktop.ui import dialogs
from instructir_desktop.ui.main_window import MainWindow

WAIT = 120_000


def photo_file(path, size=(48, 32)):
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def answers(monkeypatch):
    """What the unsaved-changes question answers (never a blocking dialog in tests)."""
    given: list[str] = []
    replies = ["discard"]
    monkeypatch.setattr(
        dialogs, "ask_unsaved_changes", lambda *_: (given.append("asked"), replies[0])[1]
    )
    return replies, given


@pytest.fixture
def make_window(qtbot, tiny_pack, answers):
    def make(pack_dir=tiny_pack, autosave=False, wait_model=True, bridge=False, **values):
        settings = Settings()
        for name, value in {"backend": "torch", "min_confidence": 0.0, **values}.items():
            settings.set(name, value)
        window = MainWindow(settings, pack_dir=pack_dir, bridge=bridge, autosave=autosave)
        qtbot.addWidget(window)
        window.show()
        if wait_model:
            qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT)
        return window

    return make


def add_layer(qtbot, window, text="remove the noise"):
    count = len(window.session.document.layers)
    window.chat.input.setPlainText(text)
    window.chat.send()
    qtbot.waitUntil(lambda: len(window.session.document.layers) == count + 1, timeout=WAIT)


def open_photo(qtbot, window, path):
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        window.open_path(path)


def test_close_asks_about_unsaved_changes(qtbot, make_window, answers, tmp_path):
    replies, given = answers
    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))
    window.close()  # nothing changed: no question
    assert given == [] and not window.isVisible()

    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))
    add_layer(qtbot, window)
    assert window.isWindowModified() and "[*]" in window.windowTitle()
    replies[0] = "cancel"
    window.close()
    assert given == ["asked"] and window.isVisible()
    replies[0] = "save"
    window.session.document.set_path(tmp_path / "saved.instructir")
    with qtbot.waitSignal(window.session.projectSaved, timeout=WAIT):
        window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT)
    assert (tmp_path / "saved.instructir").is_file()
    assert window.settings.window_geometry  # the layout is kept for next time


def test_autosave_is_written_and_removed_on_a_clean_exit(qtbot, make_window, tmp_path):
    window = make_window(autosave=True)
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))
    add_layer(qtbot, window)
    window.session.autosaver.save_now()
    path = window.session.autosaver.path
    qtbot.waitUntil(path.is_file, timeout=WAIT)
    assert find_recoverable() == []  # it belongs to a running session
    window.close()
    assert not path.exists()


def test_recovery_after_a_crash(qtbot, make_window, tmp_path):
    folder = autosave_dir()
    folder.mkdir(parents=True)
    data = ProjectData(
        _png_bytes(),
        "lost.png",
        [Layer("l1", "remove the noise", 0.5, True)],
        "tiny-test",
        {"title": "lost.png", "project_path": ""},
    )
    save_project(data, folder / "crashed.instructir")
    window = make_window(autosave=True)
    qtbot.waitUntil(lambda: "did not close properly" in window.banner.text(), timeout=WAIT)
    recover = next(b for b in window.banner.buttons if b.text() == "Recover")
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        recover.click()
    session = window.session
    assert [layer.instruction for layer in session.document.layers] == ["remove the noise"]
    assert session.dirty and window.isWindowModified()
    qtbot.waitUntil(lambda: session.scheduler.idle, timeout=WAIT)
    assert not (folder / "crashed.instructir").exists()


def _png_bytes() -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(np.full((16, 24, 3), 120, np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_models_dialog_lists_packs_and_devices(qtbot, make_window, tmp_path):
    window = make_window()
    window.show_models()
    dialog = window.models_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=WAIT)
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert any("official" in n.lower() for n in names)
    statuses = [dialog.table.item(r, 3).text() for r in range(dialog.table.rowCount())]
    assert any(s.startswith("Not installed") for s in statuses)
    model = dialog.device.model()
    enabled = {
        model.item(i).data(Qt.ItemDataRole.UserRole): model.item(i).isEnabled()
        for i in range(model.rowCount())
    }
    assert enabled["cpu"] and enabled["auto"]
    assert "Tiny test pack" in dialog.current.text()
    # Importing the wrong files explains what is missing and installs nothing.
    official = next(p.id for p in dialog.packs if "official" in p.name.lower())
    (tmp_path / "im_nope.pt").write_bytes(b"not a model")
    dialog.import_paths(official, [tmp_path / "im_nope.pt"])
    qtbot.waitUntil(lambda: "not found" in dialog.status.text(), timeout=WAIT)
    dialog.close()


def test_app_opens_without_any_model_and_says_so(qtbot, make_window, tmp_path):
    window = make_window(pack_dir=tmp_path / "empty", wait_model=False)
    qtbot.waitUntil(lambda: window.banner.kind == "warning", timeout=WAIT)
    assert "no model pack" in window.banner.text().lower()
    assert any("Models" in b.text() for b in window.banner.buttons)
    assert window.model_label.text() == "No model"
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))  # still usable for viewing
    assert window.canvas.before is not None


def test_preferences_dialog_is_built_from_declared_settings(qtbot, make_window):
    window = make_window(wait_model=False)
    dialog = dialogs.PreferencesDialog(window.settings, window)
    assert {"theme", "device", "bridge_enabled", "tile"} <= set(dialog.fields)
    assert "window_state" not in dialog.fields
    dialog.fields["theme"].setCurrentIndex(dialog.fields["theme"].findData("light"))
    dialog.fields["autosave_seconds"].setValue(30)
    dialog._apply()
    assert window.settings.theme == "light" and window.settings.autosave_seconds == 30


def test_paste_drop_recent_and_hold(qtbot, make_window, tmp_path):
    window = make_window(wait_model=False)
    image = QImage(40, 30, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkCyan)
    QApplication.clipboard().setImage(image)
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        window.paste()
    assert window.session.document.source.photo.width == 40

    path = photo_file(tmp_path / "dropped.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        window.dropEvent(drop)
    assert window.session.document.title == "dropped.png"
    assert window.settings.recent_files[0].endswith("dropped.png")
    window.recent_menu.aboutToShow.emit()
    assert window.recent_menu.actions()[0].text() == "dropped.png"

    qtbot.mousePress(window.hold_button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert window.canvas.holding
    qtbot.mouseRelease(window.hold_button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert not window.canvas.holding


def test_model_errors_are_shown_and_the_app_stays_usable(qtbot, make_window, tmp_path):
    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))
    session = window.session
    restorer = session.worker.host.restorer
    real, failures = restorer.restore, []

    def out_of_memory_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    restorer.restore = out_of_memory_once
    window.chat.input.setPlainText("remove the noise")
    window.chat.send()
    qtbot.waitUntil(lambda: session.chat.messages[0].state == "failed", timeout=WAIT)
    assert "not enough memory" in session.chat.messages[0].note
    assert window.banner.kind == "error" and "not enough memory" in window.banner.text()
    assert session.document.layers == [] and session.undo_stack.count() == 0
    add_layer(qtbot, window)  # the next instruction works


def test_the_gimp_bridge_shares_the_app_model(qtbot, make_window):
    import json
    import urllib.request

    from instructir_desktop.bridge.info import read_bridge_info

    window = make_window(bridge=True)
    session = window.session
    qtbot.waitUntil(lambda: session.bridge.running, timeout=WAIT)
    token = read_bridge_info()["token"]
    request = urllib.request.Request(
        f"{session.bridge.url}/intent",
        data=json.dumps({"text": "remove the noise"}).encode(),
        headers={"X-InstructIR-Token": token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert answer["results"][0]["task"] in session.catalog["tasks"]
    window.close()
    assert not session.bridge.running


def test_a_failed_save_before_closing_keeps_the_window_and_forgets_the_close(
    qtbot, make_window, answers, tmp_path
):
    replies, _given = answers
    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))
    add_layer(qtbot, window)
    replies[0] = "save"
    window.session.document.set_path(tmp_path / "gone" / "a.instructir")  # no such folder
    with qtbot.waitSignal(window.session.saveFailed, timeout=WAIT):
        window.close()
    assert window.isVisible() and window.session.dirty
    assert "could not be saved" in window.banner.text()  # the reason is on screen
    # A later save is only a save: it does not carry out the abandoned close.
    with qtbot.waitSignal(window.session.projectSaved, timeout=WAIT):
        window.session.save_project(tmp_path / "kept.instructir")
    qtbot.wait(200)
    assert window.isVisible() and (tmp_path / "kept.instructir").is_file()


def test_save_when_opening_another_photo_saves_then_opens_it(qtbot, make_window, answers, tmp_path):
    replies, given = answers
    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png"))
    add_layer(qtbot, window)
    replies[0] = "save"
    window.session.document.set_path(tmp_path / "a.instructir")
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        window.open_path(photo_file(tmp_path / "b.png"))
    assert given == ["asked"] and (tmp_path / "a.instructir").is_file()
    assert window.session.document.source.name == "b.png"
    assert window.session.document.layers == [] and not window.session.dirty


def test_closing_with_an_export_unwritten_asks_and_can_wait_for_it(
    qtbot, make_window, monkeypatch, tmp_path
):
    asked = []
    reply = ["cancel"]
    monkeypatch.setattr(dialogs, "ask_export_running", lambda *_: (asked.append(1), reply[0])[1])
    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png", size=(96, 64)))
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)
    out = tmp_path / "out.png"
    window.session.export(out)
    assert window.session.exporting
    window.close()  # Cancel: the window stays, the export goes on
    assert asked == [1] and window.isVisible()
    qtbot.waitUntil(out.is_file, timeout=WAIT)
    qtbot.waitUntil(lambda: not window.session.exporting, timeout=WAIT)
    window.close()  # nothing unwritten: no question
    assert asked == [1] and not window.isVisible()

    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png", size=(96, 64)))
    add_layer(qtbot, window)
    # A change the full resolution does not show yet: the export waits for its render.
    window.session.set_strength(window.session.document.layers[0].id, 0.5)
    assert window.session.scheduler.frame("full") is None
    later = tmp_path / "later.png"
    window.session.export(later)
    reply[0] = "wait"
    window.close()
    assert asked == [1, 1] and window.isVisible()  # "Close When Written"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT)
    assert later.is_file()


def test_stop_and_close_drops_an_export_waiting_for_its_render(
    qtbot, make_window, monkeypatch, tmp_path
):
    monkeypatch.setattr(dialogs, "ask_export_running", lambda *_: "stop")
    window = make_window()
    open_photo(qtbot, window, photo_file(tmp_path / "a.png", size=(96, 64)))
    add_layer(qtbot, window)
    window.session.set_strength(window.session.document.layers[0].id, 0.5)
    window.session.export(tmp_path / "dropped.png")
    window.close()
    assert not window.isVisible()
    qtbot.wait(300)
    assert not (tmp_path / "dropped.png").exists()
