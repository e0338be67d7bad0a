"""The chat, export and layer rows as a user meets them: real widgets, offscreen, tiny pack."""

from __future__ import annotations

import numpy as np
import test_ui_editing
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from test_ui_editing import WAIT, idle, make_photo, open_and_wait, type_instruction

from instructir_desktop.app.files import export_target
from instructir_desktop.ui import dialogs

make_window = test_ui_editing.make_window  # the same fixture: windows on the tiny pack
JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


def test_export_dialog_follows_the_typed_extension(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    target = tmp_path / "out.jpg"

    def fill_in() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, dialogs.ExportDialog)
        assert dialog.format.currentData() == "PNG"  # the source is a PNG
        assert dialog.path.width() >= dialog.fontMetrics().horizontalAdvance("x" * 60)
        dialog.path.selectAll()
        qtbot.keyClicks(dialog.path, str(target))
        assert dialog.format.currentData() == "JPEG"  # the box follows what was typed
        assert dialog.depth.currentData() == 8
        dialog.accept()

    QTimer.singleShot(0, fill_in)
    with qtbot.waitSignal(window.session.exported, timeout=WAIT) as exported:
        window.export_action.trigger()
    assert exported.args == [str(target)]
    assert target.read_bytes()[:3] == JPEG_MAGIC


def test_export_writes_what_the_extension_says(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    for name, fmt, magic in (("a.jpg", "PNG", JPEG_MAGIC), ("b.png", "JPEG", PNG_MAGIC)):
        with qtbot.waitSignal(window.session.exported, timeout=WAIT):
            window.session.export(tmp_path / name, format=fmt, bit_depth=16)
        assert (tmp_path / name).read_bytes()[: len(magic)] == magic, name
    # A name without an extension gets the one of the chosen format.
    with qtbot.waitSignal(window.session.exported, timeout=WAIT) as exported:
        window.session.export(tmp_path / "plain", format="JPEG")
    assert exported.args == [str(tmp_path / "plain.jpg")]
    assert (tmp_path / "plain.jpg").read_bytes()[:3] == JPEG_MAGIC
    assert export_target(tmp_path / "x.tiff", "WEBP") == (tmp_path / "x.tiff", "TIFF")


def visible_fix_rows(window) -> int:
    rows = [window.chat.suggestions] + [w.suggestions for w in window.chat.widgets.values()]
    return sum(row.isVisible() and bool(row.buttons) for row in rows)


def test_one_row_of_fixes_and_a_guess_looks_like_a_guess(qtbot, make_window, tmp_path):
    window = make_window(min_confidence=0.99)  # every reading of the tiny pack is a guess
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session, chat = window.session, window.chat
    assert visible_fix_rows(window) == 1 and chat.suggestions.isVisible()
    for n, text in enumerate(("hmm", "do something", "whatever you think")):
        type_instruction(qtbot, window, text)
        qtbot.waitUntil(lambda n=n: session.chat.messages[n].state == "unclear", timeout=WAIT)
        assert visible_fix_rows(window) == 1
        newest = chat.widgets[session.chat.messages[n].id]
        assert newest.suggestions.isVisible() and not chat.suggestions.isVisible()
    first = chat.widgets[session.chat.messages[0].id]
    assert first.apply_button.isVisible()  # older guesses can still be applied as written

    # A guess is not styled like an applied fix, and it says how sure it is.
    guess = session.chat.messages[-1]
    assert guess.chip.startswith(f"{guess.title}? · only ") and guess.chip.endswith("% sure")
    chip = chat.widgets[guess.id].chip
    assert chip.property("unsure") is True
    chat.widgets[guess.id].suggestions.buttons["denoise"].click()
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    applied = session.chat.for_layer(session.document.layers[0].id)
    applied_chip = chat.widgets[applied.id].chip
    assert applied_chip.property("unsure") is False
    assert applied.chip == "Denoise · your pick"  # what was clicked, not a reading of it
    assert applied_chip.grab().toImage() != chip.grab().toImage()
    # The layer row shows the strength, worded apart from the confidence.
    assert window.layers.list.item(0).text().endswith("strength 100 %")
    assert visible_fix_rows(window) == 1 and chat.suggestions.isVisible()


def test_the_chat_follows_new_messages(qtbot, make_window, tmp_path):
    window = make_window()
    window.resize(900, 500)
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session, bar = window.session, window.chat.scroll.verticalScrollBar()
    for n in range(6):
        type_instruction(qtbot, window, f"remove the noise {n}")
        qtbot.waitUntil(lambda n=n: len(session.document.layers) == n + 1, timeout=WAIT)
    idle(qtbot, window)
    qtbot.wait(50)
    assert bar.maximum() > 0
    assert bar.value() == bar.maximum()
    newest = window.chat.widgets[session.chat.messages[-1].id]
    assert not newest.visibleRegion().isEmpty()
    # Scrolled up to read: a thumbnail arriving does not pull the view down; a new message does.
    bar.setValue(0)
    type_instruction(qtbot, window, "remove the noise again")
    qtbot.waitUntil(lambda: len(session.document.layers) == 7, timeout=WAIT)
    qtbot.wait(50)
    assert bar.value() == bar.maximum()


def test_titles_and_thumbnails_stay_what_each_message_did(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session, doc = window.session, window.session.document
    type_instruction(qtbot, window, "it is too dark")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    idle(qtbot, window)
    first, second = session.chat.messages
    qtbot.waitUntil(lambda: session.chat.get(second.id).thumbnail is not None, timeout=WAIT)
    before = [session.chat.get(m.id).thumbnail.copy() for m in (first, second)]

    # Hiding the later layer changes neither message's picture of what it did.
    window.layers.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    idle(qtbot, window)
    qtbot.wait(100)
    after = [session.chat.get(m.id).thumbnail for m in (first, second)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    window.undo_action.trigger()
    idle(qtbot, window)

    # Reopened (before the model has loaded), the tasks keep their names.
    project = tmp_path / "t.instructir"
    with qtbot.waitSignal(session.projectSaved, timeout=WAIT):
        session.save_project(project)
    titles = [m.title for m in session.chat.messages]
    assert titles == [session.task_title(layer.task) for layer in doc.layers]
    other = make_window()
    other.session.catalog = {}  # as on a fresh start, before the pack's catalog arrives
    with qtbot.waitSignal(other.session.documentOpened, timeout=WAIT):
        other.open_path(project)
    assert [m.title for m in other.session.chat.messages] == titles
    assert other.session.task_title("lowlight") == "Brighten"  # not "Lowlight"
    assert other.session.task_title("enhance") == "Enhance colour"


def test_up_and_down_bring_back_what_was_sent(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    box = window.chat.input
    for text in ("remove the noise", "undo", "remove the noise"):
        type_instruction(qtbot, window, text)
    assert box.toPlainText() == "" and box.history == ["undo", "remove the noise"]
    qtbot.keyClicks(box, "it is too da")  # a draft, not sent

    def key(k):
        qtbot.keyClick(box, k)
        return box.toPlainText()

    assert key(Qt.Key.Key_Up) == "remove the noise"
    assert key(Qt.Key.Key_Up) == "undo"
    assert key(Qt.Key.Key_Up) == "undo"  # the oldest stays
    assert key(Qt.Key.Key_Down) == "remove the noise"
    assert key(Qt.Key.Key_Down) == "it is too da"  # the draft is back
    assert key(Qt.Key.Key_Down) == "it is too da"
    # Within a message of several lines, Up and Down move between its lines.
    box.setPlainText("too dark\nand grainy")
    box.moveCursor(box.textCursor().MoveOperation.End)
    assert key(Qt.Key.Key_Up) == "too dark\nand grainy"
    assert box.textCursor().blockNumber() == 0
    idle(qtbot, window)


def test_an_instruction_sent_while_a_photo_opens_goes_in_once_it_shows(
    qtbot, make_window, tmp_path
):
    """Typed and sent before the new photo is decoded: it is meant for that photo, so it waits
    in the box and goes in once the photo shows (not into the photo being replaced)."""
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "first.png"))
    window.open_path(make_photo(tmp_path / "second.png", seed=1))  # decoded on the I/O thread
    assert window.session.opening
    window.chat.input.setPlainText("remove the noise")
    window.chat.send()
    assert window.chat.input.toPlainText() == "remove the noise"  # not sent yet, not lost
    assert not window.session.document.layers
    qtbot.waitUntil(lambda: not window.chat.input.toPlainText(), timeout=WAIT)
    assert window.session.document.title == "second.png"
    assert [m.text for m in window.session.chat.messages] == ["remove the noise"]
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)
    assert window.chat.input.history[-1] == "remove the noise"  # Up brings it back


def test_an_instruction_held_for_a_photo_that_fails_to_open_stays_in_the_box(
    qtbot, make_window, tmp_path
):
    window = make_window()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    with qtbot.waitSignal(window.session.openFailed, timeout=WAIT):
        window.open_path(broken)
        type_instruction(qtbot, window, "it is too dark")
    assert window.chat.input.toPlainText() == "it is too dark"
    assert not window.session.opening and not window.session.chat.messages
    # the next photo opened does not receive it behind the user's back
    open_and_wait(qtbot, window, make_photo(tmp_path / "next.png"))
    idle(qtbot, window)
    assert not window.session.chat.messages and not window.session.document.layers
    assert window.chat.input.toPlainText() == "it is too dark"
