"""Recipes in the app: File → Save Recipe… and the real Apply Recipe to Photos dialog on a
folder with a corrupt file among good ones; the same recipe gives the same pixels in the
app, in an app export and from the command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog
from test_ui_editing import WAIT, composite, idle, make_photo, open_and_wait, type_instruction

from instructir_desktop.app import commands
from instructir_desktop.cli import main as cli_main
from instructir_desktop.core.images import to_uint8
from instructir_desktop.core.paths import data_dir
from instructir_desktop.ui import dialogs
from instructir_desktop.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tiny_pack, monkeypatch):
    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *_: "discard")
    from instructir_desktop.app.settings import Settings

    settings = Settings()
    for name, value in {"backend": "torch", "min_confidence": 0.0}.items():
        settings.set(name, value)
    w = MainWindow(settings, pack_dir=tiny_pack, bridge=False, autosave=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.session.model is not None, timeout=WAIT)
    return w


def drop(dialog, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    dialog.dropEvent(event)


def test_save_recipe_then_apply_to_a_folder_with_a_corrupt_photo(
    qtbot, window, tmp_path, monkeypatch, tiny_pack, capsys
):
    photo = make_photo(tmp_path / "concert.png", seed=1)
    open_and_wait(qtbot, window, photo)
    session = window.session
    type_instruction(qtbot, window, "it is too dark")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 2, timeout=WAIT)
    first, second = session.document.layers
    session.set_strength(first.id, 0.6)
    # The second fix through a mask: kept on the left, a ramp, applied on the right.
    h, w = session.document.source.photo.pixels.shape[:2]
    ramp = np.clip((np.arange(w, dtype=np.float32) - w / 3) / (w / 3), 0, 1)
    session.undo_stack.push(commands.SetMask(session.document, second.id, np.tile(ramp, (h, 1))))
    idle(qtbot, window)
    in_app = to_uint8(composite(window))

    # File → Save Recipe…
    target = tmp_path / "recipes" / "concert fix.json"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    actions = {a.text(): a for a in window.menuBar().actions()[0].menu().actions()}
    actions["Save &Recipe…"].trigger()
    doc = json.loads(target.read_text())
    assert doc["format"] == "instructir-recipe" and doc["version"] == 1
    assert [(s["instruction"], s["strength"], s["enabled"]) for s in doc["steps"]] == [
        (first.instruction, 0.6, True),
        (second.instruction, 1.0, True),
    ]
    assert doc["steps"][0]["mask"] is None and doc["steps"][1]["mask"] == "concert fix-mask-2.png"
    assert (target.parent / "concert fix-mask-2.png").is_file()
    assert doc["pack"] == session.model_pack()
    assert window.settings.get("recent_recipes")[0] == str(target)

    # An export of the open photo
    exported = tmp_path / "export.png"
    with qtbot.waitSignal(session.exported, timeout=WAIT):
        session.export(exported)
    np.testing.assert_array_equal(np.asarray(Image.open(exported)), in_app)

    # File → Apply Recipe to Photos… on a folder: the same photo, another one, a corrupt one
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(photo, shoot / "a.png")
    make_photo(shoot / "b.png", seed=2)
    (shoot / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not a real png")
    originals = {p.name: p.read_bytes() for p in shoot.iterdir()}
    dialog = window.apply_recipe_dialog(target)
    assert dialog.recipe_box.currentText() == "concert fix"
    drop(dialog, [shoot])
    assert [p.name for p in dialog.inputs] == ["a.png", "b.png", "c.png"]
    out = tmp_path / "out"
    dialog.output.setText(str(out))
    dialog.format.setCurrentIndex(dialog.format.findData("png"))
    with qtbot.waitSignal(dialog.batch.finished, timeout=WAIT) as done:
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert done.args == [2, 1]
    items = dialog.batch.items
    assert [i.state for i in items] == ["done", "done", "failed"]
    assert "c.png" in items[2].error or "cannot" in items[2].error.lower()
    assert dialog.list.topLevelItem(2).text(1).startswith("failed: ")
    assert dialog.list.topLevelItem(0).text(1) == "done"
    assert not dialog.list.topLevelItem(0).icon(0).isNull()  # the result's thumbnail
    assert dialog.progress.value() == 1000 and "2 done, 1 failed" in dialog.eta.text()
    assert {p.name: p.read_bytes() for p in shoot.iterdir()} == originals
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    batch_pixels = np.asarray(Image.open(out / "a.png"))
    np.testing.assert_array_equal(batch_pixels, in_app)

    # The command line, same recipe, same pixels
    shutil.copytree(tiny_pack, data_dir() / "packs" / session.model_pack())
    code = cli_main(
        ["restore", str(photo), "--recipe", str(target), "-o", str(tmp_path / "cli.png"),
         "--device", "cpu", "--backend", "torch"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cli.png")), in_app)

    # A second run never overwrites the first results' names with the inputs'
    dialog.output.setText(str(shoot))
    monkeypatch.setattr(
        "instructir_desktop.ui.recipe_dialog.QMessageBox.warning",
        lambda _p, _t, text: warnings.append(text),
    )
    warnings: list[str] = []
    dialog.run()
    assert warnings and "overwrite the original" in warnings[0]
    dialog.close()


def test_pause_and_cancel_stop_the_batch_keeping_written_photos(qtbot, window, tmp_path):
    photo = make_photo(tmp_path / "p.png", seed=3)
    open_and_wait(qtbot, window, photo)
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for i in range(4):
        make_photo(shoot / f"{i}.png", seed=i)
    dialog = window.apply_recipe_dialog()
    assert dialog.recipe_box.currentText() == "The current layers"
    dialog.add_paths([shoot])
    dialog.output.setText(str(tmp_path / "out"))
    dialog.batch.pause()  # paused before it starts: nothing runs until resumed
    dialog.batch.resume()
    dialog.run()
    dialog.toggle_pause()
    assert dialog.pause_button.text() == "Resume"
    with qtbot.waitSignal(dialog.batch.finished, timeout=WAIT):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    states = [i.state for i in dialog.batch.items]
    assert states[-1] == "cancelled" and set(states) <= {"done", "cancelled"}
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [i.target.name for i in dialog.batch.items if i.state == "done"]
    assert not dialog.cancel_button.isEnabled() and dialog.run_button.isEnabled()


def test_recent_recipe_offered_in_the_chat_adds_its_layers_in_one_undo_step(
    qtbot, window, tmp_path
):
    from instructir_desktop.core.recipe import Recipe, RecipeStep, save_recipe
    from instructir_desktop.ui.recipe_dialog import remember_recipe

    recipe = Recipe(
        [RecipeStep("too dark", 0.7), RecipeStep("remove the noise", 1.0, enabled=False)],
        name="concert fix",
    )
    path = save_recipe(recipe, tmp_path / "concert fix.json")
    remember_recipe(window.settings, path)
    offer = window.recipe_offer
    assert not offer.buttons  # no photo yet
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", seed=4))
    assert [b.text() for b in offer.buttons] == ["Apply 'concert fix' to this photo"]
    assert offer.isVisible()
    qtbot.mouseClick(offer.buttons[0], Qt.MouseButton.LeftButton)
    layers = window.session.document.layers
    assert [(la.instruction, la.strength, la.visible) for la in layers] == [
        ("too dark", 0.7, True),
        ("remove the noise", 1.0, False),
    ]
    assert not offer.isVisible()  # offered only while the photo has no layers
    # Each layer's instruction is read for its label (the task), as a typed one is; the
    # label outlives undo and redo, and reading it added no undo step.
    doc = window.session.document
    qtbot.waitUntil(lambda: all(la.task for la in doc.layers), timeout=WAIT)
    tasks = [la.task for la in doc.layers]
    assert window.session.task_title(tasks[0]) in window.layers.list.item(1).text()
    idle(qtbot, window)
    window.session.undo_stack.undo()
    assert window.session.document.layers == [] and offer.isVisible()
    window.session.undo_stack.redo()
    assert [la.task for la in doc.layers] == tasks
    window.session.undo_stack.undo()


def test_layers_with_masks_become_a_recipe_with_masks_beside_it(tmp_path):
    from types import SimpleNamespace

    from instructir_desktop.app.batch import recipe_from_layers
    from instructir_desktop.core.recipe import load_mask, load_recipe, save_recipe

    mask = np.zeros((30, 40), np.float32)
    mask[:, 20:] = 1.0
    layers = [
        SimpleNamespace(instruction="too dark", strength=0.5, visible=True, adjust=None),
        SimpleNamespace(instruction="denoise", strength=1.0, visible=False, mask=mask),
    ]
    recipe, _ = recipe_from_layers(layers, "tiny-test", "masked")
    path = save_recipe(recipe, tmp_path / "masked.json")
    back = load_recipe(path)
    assert back.steps[0].mask is None and back.steps[1].mask == "masked-mask-2.png"
    assert back.steps[1].enabled is False
    scaled, warning = load_mask(back, back.steps[1], (80, 60))
    assert warning == "" and scaled.shape == (60, 80, 1)
    assert scaled[:, :38].max() == 0.0 and scaled[:, 42:].min() == 1.0


def test_a_saved_project_with_a_masked_layer_reads_as_a_recipe(tmp_path):
    from instructir_desktop.app.document import Layer
    from instructir_desktop.app.project import ProjectData, save_project
    from instructir_desktop.core.recipe import load_mask, load_recipe

    mask = np.zeros((16, 24), np.float32)
    mask[:, 12:] = 1.0
    layers = [
        Layer("a1", "too dark", 0.5),
        Layer("b2", "remove the noise", 1.0, visible=False, mask=mask),
    ]
    photo = make_photo(tmp_path / "p.png", size=(24, 16))
    path = save_project(
        ProjectData(photo.read_bytes(), "p.png", layers, "tiny-test"), tmp_path / "s"
    )
    recipe = load_recipe(path)
    assert [(s.instruction, s.strength, s.enabled) for s in recipe.steps] == [
        ("too dark", 0.5, True),
        ("remove the noise", 1.0, False),
    ]
    plane, warning = load_mask(recipe, recipe.steps[1], (24, 16))
    assert warning == "" and np.array_equal(plane[..., 0], mask)
