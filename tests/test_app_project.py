"""Project files, settings, undo commands and autosave discovery (Qt state, no widgets)."""

from __future__ import annotations

import zipfile

import pytest

from instructir_desktop.app import commands
from instructir_desktop.app.autosave import autosave_dir, find_recoverable
from instructir_desktop.app.document import Document, Layer
from instructir_desktop.app.project import (
    ProjectData,
    ProjectError,
    encode_project,
    load_project,
    save_project,
)
from instructir_desktop.app.settings import SETTINGS, Settings, settings_file

LAYERS = [
    Layer("a1", "remove the noise", 1.0, True, "denoise", 0.9),
    Layer("b2", "it is too dark", 0.35, False, "lowlight", 0.7),
]


def test_project_round_trip(tmp_path):
    data = ProjectData(b"\xff\xd8photo-bytes", "holiday.jpg", LAYERS, "instructir-lite")
    path = save_project(data, tmp_path / "trip")
    assert path.name == "trip.instructir"
    loaded = load_project(path)
    assert loaded.source_bytes == data.source_bytes and loaded.source_name == "holiday.jpg"
    assert loaded.layers == LAYERS and loaded.pack == "instructir-lite"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_replaces_atomically(tmp_path):
    target = tmp_path / "p.instructir"
    save_project(ProjectData(b"one", "a.png", [], ""), target)
    save_project(ProjectData(b"two", "a.png", LAYERS, ""), target)
    assert load_project(target).source_bytes == b"two"


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "damaged"),
        (b"PK\x03\x04 definitely not a zip", "damaged"),
        (b"just text", "damaged"),
    ],
)
def test_corrupt_projects_raise_clear_errors(tmp_path, content, words):
    path = tmp_path / "bad.instructir"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=words) as info:
        load_project(path)
    assert "bad.instructir" in str(info.value)


def test_truncated_project(tmp_path):
    good = encode_project(ProjectData(b"x" * 5000, "a.png", LAYERS, ""))
    path = tmp_path / "cut.instructir"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ProjectError, match="damaged"):
        load_project(path)


def test_project_from_a_newer_version_and_foreign_zip(tmp_path):
    newer = tmp_path / "newer.instructir"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("manifest.json", '{"format": "instructir-project", "version": 99}')
    with pytest.raises(ProjectError, match="newer InstructIR"):
        load_project(newer)
    foreign = tmp_path / "foreign.instructir"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("manifest.json", '{"hello": 1}')
    with pytest.raises(ProjectError, match="not an InstructIR project"):
        load_project(foreign)


def test_bad_layer_values_are_rejected(tmp_path):
    bad = tmp_path / "bad.instructir"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr(
            "manifest.json",
            '{"format": "instructir-project", "version": 1, '
            '"source": {"file": "source/a.png"}, '
            '"layers": [{"instruction": "x", "strength": 7}]}',
        )
        zf.writestr("source/a.png", b"123")
    with pytest.raises(ProjectError, match="strength"):
        load_project(bad)


def test_settings_are_declared_validated_and_persisted(qapp):
    settings = Settings()
    assert settings.theme == "dark" and settings.bridge_enabled is True
    settings.set("preview_edge", 900)
    settings.set("bridge_enabled", False)
    with pytest.raises(ValueError):
        settings.set("theme", "purple")
    with pytest.raises(ValueError):
        settings.set("min_confidence", 2.0)
    with pytest.raises(KeyError):
        settings.set("nope", 1)
    settings.sync()
    again = Settings()
    assert again.preview_edge == 900 and again.bridge_enabled is False
    assert all(s.description for s in SETTINGS.values())


def test_bad_values_in_the_file_fall_back_to_defaults(qapp):
    path = settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[General]\ntheme=purple\npreview_edge=abc\ntile=-5\n")
    settings = Settings()
    assert settings.theme == "dark" and settings.preview_edge == 1280 and settings.tile == 0
    assert len(settings.problems) == 3


def test_recent_files_are_capped_and_deduplicated(qapp, tmp_path):
    settings = Settings()
    for i in range(15):
        settings.add_recent(tmp_path / f"{i}.jpg")
    settings.add_recent(tmp_path / "3.jpg")
    recent = settings.recent_files
    assert len(recent) == 10 and recent[0].endswith("3.jpg") and len(set(recent)) == 10


def test_undo_commands(qapp):
    from PySide6.QtGui import QUndoStack

    doc, stack = Document(), QUndoStack()
    stack.push(commands.AddLayer(doc, LAYERS[0]))
    stack.push(commands.AddLayer(doc, LAYERS[1]))
    stack.push(commands.SetVisible(doc, "b2", True))
    stack.push(commands.EditInstruction(doc, "a1", "remove the grain"))
    stack.push(commands.MoveLayer(doc, "b2", 0))
    assert [x.id for x in doc.layers] == ["b2", "a1"]
    assert doc.layer("a1").instruction == "remove the grain" and doc.layer("b2").visible
    stack.push(commands.RemoveLayer(doc, "a1"))
    assert [x.id for x in doc.layers] == ["b2"]
    while stack.canUndo():
        stack.undo()
    assert doc.layers == []
    while stack.canRedo():
        stack.redo()
    assert [x.id for x in doc.layers] == ["b2"]


def test_strength_changes_of_one_gesture_merge(qapp):
    from PySide6.QtGui import QUndoStack

    doc, stack = Document(), QUndoStack()
    stack.push(commands.AddLayer(doc, LAYERS[0]))
    for value in (0.9, 0.8, 0.5):
        stack.push(commands.SetStrength(doc, "a1", value, gesture="drag-1"))
    assert stack.count() == 2 and doc.layer("a1").strength == 0.5
    stack.push(commands.SetStrength(doc, "a1", 0.2, gesture="drag-2"))
    assert stack.count() == 3
    stack.undo()
    stack.undo()
    assert doc.layer("a1").strength == 1.0


def test_crashed_session_autosave_is_found(qapp):
    folder = autosave_dir()
    folder.mkdir(parents=True)
    data = ProjectData(b"bytes", "a.png", LAYERS, "", {"title": "a.png", "project_path": ""})
    save_project(data, folder / "old-session.instructir")
    (folder / "broken.instructir").write_bytes(b"half written")
    found = find_recoverable()
    assert [r.title for r in found] == ["a.png"]
    assert not (folder / "broken.instructir").exists()
    found[0].discard()
    assert find_recoverable() == []
