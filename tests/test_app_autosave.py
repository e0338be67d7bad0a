"""Autosave discovery: a crashed session's autosave is offered, a half-written one removed."""

from __future__ import annotations

from instructir_desktop.app.autosave import autosave_dir, find_recoverable
from instructir_desktop.app.document import Layer
from instructir_desktop.app.project import ProjectData, save_project

LAYERS = [
    Layer("a1", "remove the noise", 1.0, True, "denoise", 0.9),
    Layer("b2", "it is too dark", 0.35, False, "lowlight", 0.7),
]


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
