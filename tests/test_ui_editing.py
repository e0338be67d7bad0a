"""The editor driven like a user: real widgets, offscreen, a tiny generated model pack."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageCms
from PySide6.QtCore import Qt, QTimer

from instructir_desktop.app.settings import Settings
from instructir_desktop.core.images import load_image
from instructir_desktop.core.jobs import JobKind, Started
from instructir_desktop.ui import dialogs
from instructir_desktop.ui.main_window import MainWindow

WAIT = 120_000  # ms; generous: this machine is slow and shared


def make_photo(path, size=(96, 64), seed=0, **save_args):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x / size[0], y / size[1], np.full(x.shape, 0.4)], axis=2)
    rgb = np.clip(rgb + rng.normal(0, 0.1, rgb.shape), 0, 1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path, **save_args)
    return path


@pytest.fixture
def make_window(qtbot, tiny_pack, monkeypatch):
    """Open editor windows on the tiny pack; closing never blocks on a dialog."""
    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *_: "discard")

    def make(**settings_values) -> MainWindow:
        settings = Settings()
        values = {"backend": "torch", "min_confidence": 0.0, **settings_values}
        for name, value in values.items():
            settings.set(name, value)
        window = MainWindow(settings, pack_dir=tiny_pack, bridge=False, autosave=False)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT)
        return window

    return make


def open_and_wait(qtbot, window, path):
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        window.open_path(path)
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)


def idle(qtbot, window):
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)


def composite(window) -> np.ndarray:
    frame = window.session.scheduler.frame("full")
    assert frame is not None
    return frame.image


def type_instruction(qtbot, window, text):
    qtbot.keyClicks(window.chat.input, text)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)


def grab(widget) -> bytes:
    image = widget.grab().toImage()
    return bytes(image.constBits())


def restore_jobs(window) -> list:
    """Record every restore job the worker starts from now on."""
    started = []
    window.session.worker.event.connect(
        lambda ev: (
            started.append(ev.job_id)
            if isinstance(ev, Started) and ev.kind is JobKind.RESTORE
            else None
        )
    )
    return started


def test_full_editing_round_trip(qtbot, make_window, tmp_path, tiny_restorer):
    window = make_window(preview_edge=64)  # a preview level and a full level
    photo = make_photo(tmp_path / "photo.png", size=(128, 96))
    open_and_wait(qtbot, window, photo)
    session, doc = window.session, window.session.document
    source = doc.source.photo.pixels
    assert [lv.name for lv in session.scheduler.levels] == ["preview", "full"]
    before = grab(window.canvas)

    # Type an instruction and press Enter: the layer arrives once its preview is rendered.
    type_instruction(qtbot, window, "remove the noise please")
    assert window.chat.input.toPlainText() == ""
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    first = composite(window)
    assert np.abs(first - source).max() > 1 / 255
    assert first.shape == source.shape  # full resolution
    expected = tiny_restorer.restore(source, "remove the noise please")
    np.testing.assert_allclose(first, expected, atol=1e-5)  # exactly what core computes
    qtbot.waitUntil(lambda: grab(window.canvas) != before, timeout=WAIT)
    message = session.chat.messages[0]
    assert message.state == "applied" and "·" in message.chip
    assert message.chip.endswith("% sure")  # confidence, apart from the layer's strength
    qtbot.waitUntil(lambda: session.chat.messages[0].thumbnail is not None, timeout=WAIT)
    widget = window.chat.widgets[message.id]
    assert widget.chip.text() == message.chip and not widget.thumb.pixmap().isNull()

    # Undo gives the original back exactly; redo comes from the cache (no model job).
    jobs = restore_jobs(window)
    window.undo_action.trigger()
    idle(qtbot, window)
    assert doc.layers == [] and np.array_equal(composite(window), source)
    assert session.chat.messages[0].state == "undone"
    window.redo_action.trigger()
    idle(qtbot, window)
    assert np.array_equal(composite(window), first)
    assert jobs == []

    # Hide it with the layer's checkbox: the original again, instantly.
    item = window.layers.list.item(0)
    item.setCheckState(Qt.CheckState.Unchecked)
    idle(qtbot, window)
    assert not doc.layers[0].visible and np.array_equal(composite(window), source)
    window.undo_action.trigger()
    idle(qtbot, window)
    assert doc.layers[0].visible and np.array_equal(composite(window), first)
    assert jobs == []

    # A second layer at strength 0 gives exactly its input (the first layer's result).
    type_instruction(qtbot, window, "make it sharper")
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    idle(qtbot, window)
    second = composite(window)
    assert not np.array_equal(second, first)
    top = doc.layers[1].id
    assert session.selected == top and window.layers.current_id() == top
    slider = window.layers.slider
    slider.setSliderDown(True)  # one drag: many values, one undo step
    for value in (80, 50, 20, 0):
        slider.setValue(value)
    slider.setSliderDown(False)
    idle(qtbot, window)
    assert doc.layers[1].strength == 0.0
    assert np.array_equal(composite(window), first)
    steps = session.undo_stack.count()
    window.undo_action.trigger()
    idle(qtbot, window)
    assert doc.layers[1].strength == 1.0 and np.array_equal(composite(window), second)
    assert session.undo_stack.index() == steps - 1
    window.redo_action.trigger()
    slider.setValue(60)  # a key step: its own undo step
    idle(qtbot, window)
    half = composite(window)
    np.testing.assert_allclose(half, first + np.float32(0.6) * (second - first), atol=1e-5)
    assert window.history.model().rowCount() == session.undo_stack.count() + 1

    # Save the project, reopen it in a fresh window: identical pixels, same layers.
    project = tmp_path / "edit.instructir"
    with qtbot.waitSignal(session.projectSaved, timeout=WAIT):
        session.save_project(project)
    assert not session.dirty and window.windowTitle().startswith("edit.instructir")
    other = make_window(preview_edge=64)
    open_and_wait(qtbot, other, project)
    assert other.session.document.layers == doc.layers
    assert np.array_equal(composite(other), half)
    assert [m.text for m in other.session.chat.messages] == [x.instruction for x in doc.layers]


def test_edit_delete_reorder_and_select_from_chat(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session, doc = window.session, window.session.document
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    type_instruction(qtbot, window, "brighten it")
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    idle(qtbot, window)
    first_id, second_id = (layer.id for layer in doc.layers)

    # Clicking a message selects its layer in the layers panel.
    first_message = session.chat.for_layer(first_id)
    qtbot.mouseClick(window.chat.widgets[first_message.id], Qt.MouseButton.LeftButton)
    assert session.selected == first_id and window.layers.current_id() == first_id

    # Edit the instruction with Edit…: it re-runs, and undo brings the old result back.
    before_edit = composite(window)
    window.layers.edit_button.click()
    edit_in_place(qtbot, window, "remove the noise", "remove the rain")
    qtbot.waitUntil(lambda: doc.layer(first_id).instruction == "remove the rain", timeout=WAIT)
    idle(qtbot, window)
    assert not np.array_equal(composite(window), before_edit)
    window.undo_action.trigger()
    idle(qtbot, window)
    assert np.array_equal(composite(window), before_edit)

    # Reorder (what a drag in the list reports), then delete.
    window.layers.list.reordered.emit([first_id, second_id])  # top row first
    assert [x.id for x in doc.layers] == [second_id, first_id]
    idle(qtbot, window)
    window.layers._select(second_id)
    window.layers.delete_button.click()
    assert [x.id for x in doc.layers] == [first_id]
    idle(qtbot, window)
    while session.undo_stack.canUndo():
        session.undo_stack.undo()
    idle(qtbot, window)
    assert np.array_equal(composite(window), doc.source.photo.pixels)


def edit_in_place(qtbot, window, old: str, new: str) -> None:
    """Type into the open row editor: it holds the bare instruction, no strength."""
    from PySide6.QtWidgets import QLineEdit

    def editor() -> QLineEdit | None:
        return window.layers.list.viewport().findChild(QLineEdit, "instructionEditor")

    qtbot.waitUntil(lambda: editor() is not None and editor().isVisible(), timeout=5000)
    editor = editor()
    assert editor.text() == old
    editor.selectAll()
    qtbot.keyClicks(editor, new)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_double_click_edit_is_one_undo_step_and_keeps_the_chat_label(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session, doc = window.session, window.session.document
    type_instruction(qtbot, window, "remove the grain")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    layer_id = doc.layers[0].id
    message = session.chat.for_layer(layer_id)
    steps = session.undo_stack.count()

    item = window.layers.list.item(0)
    assert "strength 100 %" in item.text()  # the row shows it; the editor must not
    rect = window.layers.list.visualItemRect(item)
    viewport = window.layers.list.viewport()
    # What a real double-click sends: a click, then the second press as a double-click.
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    edit_in_place(qtbot, window, "remove the grain", "the fog ruins it")
    qtbot.waitUntil(lambda: doc.layer(layer_id).instruction == "the fog ruins it", timeout=WAIT)
    assert session.undo_stack.count() == steps + 1
    assert session.undo_stack.command(steps).text().endswith("“the fog ruins it”")
    # The new text is read again: the chat keeps a task label, and so does the layer row.
    qtbot.waitUntil(lambda: session.chat.get(message.id).chip != "", timeout=WAIT)
    edited = session.chat.get(message.id)
    assert edited.text == "the fog ruins it" and edited.task == doc.layer(layer_id).task != ""
    assert window.chat.widgets[message.id].chip.isVisible()
    assert session.task_title(edited.task) in window.layers.list.item(0).text()
    idle(qtbot, window)
    assert session.undo_stack.count() == steps + 1  # reading the intent added no step

    window.undo_action.trigger()
    assert doc.layer(layer_id).instruction == "remove the grain"
    assert session.chat.get(message.id).text == "remove the grain"
    assert session.chat.get(message.id).chip == message.chip


def test_an_edited_instruction_follows_the_chat_rules(qtbot, make_window, tmp_path):
    from instructir_desktop.core.adjust import EXPOSURE_TASK

    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png"))
    session, doc = window.session, window.session.document
    type_instruction(qtbot, window, "remove the grain")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    layer = doc.layers[0]
    steps = session.undo_stack.count()

    # A request no fix carries out: the layer keeps its instruction and the banner says why.
    session.edit_instruction(layer.id, "add film grain")
    qtbot.waitUntil(lambda: "was not applied" in window.banner.text(), timeout=WAIT)
    assert doc.layer(layer.id) == layer and session.undo_stack.count() == steps
    apply = next(b for b in window.banner.buttons if b.text() == "Apply as Written")
    apply.click()  # the user insists
    qtbot.waitUntil(lambda: doc.layer(layer.id).instruction == "add film grain", timeout=WAIT)
    assert session.undo_stack.count() == steps + 1 and doc.layer(layer.id).task != ""

    # A request to darken becomes an exposure adjustment, as it does in the chat.
    session.edit_instruction(layer.id, "make it darker")
    qtbot.waitUntil(lambda: doc.layer(layer.id).instruction == "make it darker", timeout=WAIT)
    edited = doc.layer(layer.id)
    assert edited.task == EXPOSURE_TASK and edited.adjust is not None and edited.adjust < 0
    assert "Adjustment: exposure −" in window.layers.list.item(0).text()
    idle(qtbot, window)
    window.undo_action.trigger()
    assert doc.layer(layer.id).instruction == "add film grain"
    assert doc.layer(layer.id).adjust is None


def test_the_delete_key_deletes_the_selected_layer(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png"))
    doc = window.session.document
    type_instruction(qtbot, window, "remove the grain")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    window.layers.list.setFocus()
    window.layers.list.setCurrentRow(0)
    qtbot.keyClick(window.layers.list, Qt.Key.Key_Delete)
    assert doc.layers == []
    window.undo_action.trigger()
    assert len(doc.layers) == 1
    window.layers.list.setCurrentRow(0)
    qtbot.keyClick(window.layers.list, Qt.Key.Key_Backspace)
    assert doc.layers == []


def test_suggestions_when_empty_or_unclear(qtbot, make_window, tmp_path):
    window = make_window(min_confidence=0.99)  # the tiny pack's head is never this sure
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session, chat = window.session, window.chat
    assert chat.suggestions.isVisible() and len(chat.suggestions.buttons) == 7
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)  # empty box: nothing sent
    assert session.chat.messages == [] and chat.suggestions.isVisible()
    qtbot.keyClicks(chat.input, "hmm")
    assert not chat.suggestions.isVisible()

    # Shift+Enter is a new line, Enter sends.
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(chat.input, "do something")
    assert chat.input.toPlainText() == "hmm\ndo something"
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.chat.messages[0].state == "unclear", timeout=WAIT)
    message = session.chat.messages[0]
    assert message.text == "hmm do something"
    widget = chat.widgets[message.id]
    assert widget.suggestions.isVisible() and set(widget.suggestions.buttons) >= {"denoise"}
    assert session.document.layers == []  # nothing was guessed silently

    widget.suggestions.buttons["denoise"].click()
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    assert session.document.layers[0].instruction == session.catalog["prompts"]["denoise"]
    widget.apply_button.click()
    qtbot.waitUntil(lambda: len(session.document.layers) == 2, timeout=WAIT)
    assert session.document.layers[1].instruction == "hmm do something"


def test_export_keeps_exif_icc_and_full_resolution(qtbot, make_window, tmp_path):
    window = make_window(preview_edge=64)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "InstructIR Test Camera"  # Make
    photo = make_photo(
        tmp_path / "cam.jpg", size=(120, 90), quality=95, exif=exif.tobytes(), icc_profile=icc
    )
    open_and_wait(qtbot, window, photo)
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)
    for name, fmt, depth in (
        ("out.png", "PNG", 16),
        ("out.jpg", "JPEG", 8),
        ("out.tif", "TIFF", 8),
        ("out.webp", "WEBP", 8),
    ):
        target = tmp_path / name
        with qtbot.waitSignal(window.session.exported, timeout=WAIT):
            window.session.export(target, format=fmt, quality=90, bit_depth=depth)
        saved = load_image(target)
        assert (saved.width, saved.height) == (120, 90), name
        assert saved.icc_profile == icc, name
        assert saved.exif and b"InstructIR Test Camera" in saved.exif, name
        if fmt == "PNG":
            assert saved.bit_depth == 16
            np.testing.assert_allclose(saved.pixels, composite(window), atol=1 / 65535 + 1e-6)


def test_corrupt_files_show_an_error_and_the_app_stays_usable(qtbot, make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with qtbot.waitSignal(window.session.openFailed, timeout=WAIT):
        window.open_path(bad)
    assert window.banner.isVisible() and window.banner.kind == "error"
    assert "broken.jpg" in window.banner.text()
    project = tmp_path / "broken.instructir"
    project.write_bytes(b"PK\x03\x04 garbage")
    with qtbot.waitSignal(window.session.openFailed, timeout=WAIT):
        window.open_path(project)
    assert "damaged" in window.banner.text() and "broken.instructir" in window.banner.text()
    open_and_wait(qtbot, window, make_photo(tmp_path / "fine.png", size=(48, 32)))
    assert window.banner.kind != "error"  # the old failure is withdrawn
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)


def test_an_animation_opens_its_first_frame_with_a_warning(qtbot, make_window, tmp_path):
    window = make_window()
    first = Image.open(make_photo(tmp_path / "a.png", size=(48, 32)))
    path = tmp_path / "moving.gif"
    first.save(path, save_all=True, append_images=[first.rotate(90), first.rotate(180)])
    open_and_wait(qtbot, window, path)
    assert window.banner.kind == "warning" and "3 frames" in window.banner.text()
    assert window.session.document.source.photo.pixels.shape == (32, 48, 3)


def slow_window(make_window, qtbot, tmp_path):
    """A job of many small tiles, so that it can be cancelled (or watched) mid-way."""
    window = make_window(tile=32)
    open_and_wait(qtbot, window, make_photo(tmp_path / "big.png", size=(480, 480), seed=3))
    return window


def test_cancel_mid_job_leaves_the_document_unchanged(qtbot, make_window, tmp_path):
    window = slow_window(make_window, qtbot, tmp_path)
    session = window.session
    progress = []
    session.scheduler.progress.connect(lambda f, _t: progress.append(f))
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: any(0 < f < 1 for f in progress), timeout=WAIT)
    assert window.cancel_button.isVisible()
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: session.chat.messages[0].state == "cancelled", timeout=WAIT)
    assert session.document.layers == [] and session.undo_stack.count() == 0
    assert not session.dirty
    queue = session.worker.queue
    qtbot.waitUntil(lambda: queue.running is None and not queue.pending(), timeout=WAIT)
    assert np.array_equal(
        session.scheduler.best_frame().image, session.document.source.photo.pixels
    )


def test_gui_stays_responsive_while_a_job_runs(qtbot, make_window, tmp_path):
    window = slow_window(make_window, qtbot, tmp_path)
    session = window.session
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    heartbeat.start(20)
    tiles: list[float] = []
    session.scheduler.progress.connect(lambda f, _t: tiles.append(f) if 0 < f < 1 else None)
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: session.scheduler.activity == "pending", timeout=WAIT)
    beats.clear()
    tiles.clear()
    start = time.perf_counter()

    def measured() -> bool:
        if session.scheduler.activity != "pending":
            return True  # the job is done
        return time.perf_counter() - start > 3.0 and len(tiles) >= 3

    # Watch for 3 s while the model runs on the worker thread, and on until it has done a
    # few tiles: the heartbeat alone would keep beating beside a job that hangs.
    qtbot.waitUntil(measured, timeout=WAIT)
    watched = time.perf_counter() - start
    heartbeat.stop()
    session.cancel()
    assert watched > 1.0, "the job ended too soon to measure anything"
    assert tiles == sorted(tiles)
    gaps = np.diff(beats)
    assert len(beats) > watched / 0.02 / 2 and gaps.max() < 0.1, f"longest gap {gaps.max():.3f} s"


def bundled_window(qtbot, monkeypatch, tmp_path) -> MainWindow:
    """A window on the bundled pack (torch backend) with a small photo open; skips without
    the pack."""
    from instructir_desktop.core.packs import LITE_ID
    from instructir_desktop.core.resources import resource_path

    pack = resource_path("packs", LITE_ID)
    if not (pack / "manifest.json").is_file():
        pytest.skip("no bundled pack")
    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *_: "discard")
    settings = Settings()
    settings.set("backend", "torch")
    window = MainWindow(settings, pack_dir=pack, bridge=False, autosave=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT)
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    return window


def test_a_message_asking_for_several_fixes_adds_a_layer_for_each(qtbot, monkeypatch, tmp_path):
    """On the bundled pack: "it's too dark and grainy" → Brighten, then Denoise, each its own
    message and layer; undo takes them back one at a time."""
    window = bundled_window(qtbot, monkeypatch, tmp_path)
    session, doc = window.session, window.session.document

    type_instruction(qtbot, window, "it's too dark and grainy")
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    idle(qtbot, window)
    assert [(x.task, x.instruction) for x in doc.layers] == [
        ("lowlight", "it's too dark"),
        ("denoise", "grainy"),
    ]
    first, *steps = session.chat.messages
    assert first.state == "split" and first.layer_id == ""
    assert "2 fixes" in first.note and first.note.index("then") > 0
    assert [m.state for m in steps] == ["applied", "applied"]
    assert [m.layer_id for m in steps] == [x.id for x in doc.layers]
    widget = window.chat.widgets[first.id]
    assert widget.status.text() == first.note and not widget.apply_button.isVisible()

    window.undo_action.trigger()
    assert [x.instruction for x in doc.layers] == ["it's too dark"]
    qtbot.waitUntil(lambda: session.chat.get(steps[1].id).state == "undone", timeout=WAIT)

    # A part that asks to darken becomes an exposure adjustment, in the order written.
    type_instruction(qtbot, window, "it's way too bright and grainy")
    qtbot.waitUntil(lambda: len(session.chat.messages) == 6, timeout=WAIT)
    qtbot.waitUntil(lambda: len(doc.layers) == 3, timeout=WAIT)
    idle(qtbot, window)
    note, bright, grain = session.chat.messages[3:]
    assert note.state == "split"
    assert note.note == "2 fixes, applied in this order: Exposure, then Denoise."
    assert bright.state == "applied" and bright.chip == "Exposure · adjustment, no model"
    assert doc.layers[1].is_adjustment and doc.layers[1].adjust < 0
    assert grain.state == "applied" and doc.layers[-1].instruction == "grainy"
    window.undo_action.trigger()
    window.undo_action.trigger()

    # A part asking for what no fix does (the head reads "blur the background" as deblurring,
    # about 100 %) is held with its note; the rest is applied.
    type_instruction(qtbot, window, "remove the grain and blur the background")
    qtbot.waitUntil(lambda: len(session.chat.messages) == 9, timeout=WAIT)
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    idle(qtbot, window)
    note, grain, blur = session.chat.messages[6:]
    assert note.state == "split"
    assert note.note == "2 fixes. Applied: Denoise. Not applied, see below: “blur the background”."
    assert grain.state == "applied" and doc.layers[-1].instruction == "remove the grain"
    assert blur.state == "unclear" and blur.layer_id == "" and blur.title == ""
    assert blur.note.startswith("InstructIR takes blur away; it cannot add blur")
    assert window.chat.widgets[blur.id].suggestions.isVisible()
    window.undo_action.trigger()
    assert len(doc.layers) == 1

    # Preferences: messages can be applied as written instead.
    window.session.settings.set("split_messages", False)
    type_instruction(qtbot, window, "it's too dark and grainy")
    qtbot.waitUntil(lambda: len(doc.layers) == 2, timeout=WAIT)
    assert doc.layers[-1].instruction == "it's too dark and grainy"
    assert session.chat.messages[-1].state in ("rendering", "applied")
