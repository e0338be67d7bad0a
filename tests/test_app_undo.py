"""Undo commands on a Document: every edit undoes and redoes; one drag is one undo step."""

from __future__ import annotations

from instructir_desktop.app import commands
from instructir_desktop.app.document import Document, Layer

LAYERS = [
    Layer("a1", "remove the noise", 1.0, True, "denoise", 0.9),
    Layer("b2", "it is too dark", 0.35, False, "lowlight", 0.7),
]


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
