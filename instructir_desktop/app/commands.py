"""Undo commands: the only way the layer stack changes. They never run the model; rendering
follows from the document's change signals (and is instant when the cache holds the result).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtGui import QUndoCommand

from .document import Document, Layer

__all__ = [
    "AddLayer",
    "RemoveLayer",
    "SetVisible",
    "SetStrength",
    "EditInstruction",
    "MoveLayer",
    "SetMask",
]

_STRENGTH_ID = 1001


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AddLayer(QUndoCommand):
    """Add a layer on top of the stack (or at ``index``)."""

    def __init__(self, doc: Document, layer: Layer, index: int | None = None) -> None:
        super().__init__(f"Add “{_short(layer.instruction)}”")
        self.doc, self.layer = doc, layer
        self.index = len(doc.layers) if index is None else index

    def set_reading(self, task: str, confidence: float) -> None:
        """What the layer's instruction was read as, once known (a recipe's layers are added
        before): kept for redo, and shown now unless the layer has changed since."""
        self.layer = dataclasses.replace(self.layer, task=task, confidence=confidence)
        doc, layer_id = self.doc, self.layer.id
        if doc.has_layer(layer_id) and doc.layer(layer_id).instruction == self.layer.instruction:
            doc.update_layer(layer_id, task=task, confidence=confidence)

    def redo(self) -> None:
        self.doc.insert_layer(self.index, self.layer)

    def undo(self) -> None:
        self.doc.remove_layer(self.layer.id)


class RemoveLayer(QUndoCommand):
    """Delete a layer (undo puts it back where it was)."""

    def __init__(self, doc: Document, layer_id: str) -> None:
        self.doc, self.layer_id = doc, layer_id
        self.layer = doc.layer(layer_id)
        self.index = doc.index_of(layer_id)
        super().__init__(f"Delete “{_short(self.layer.instruction)}”")

    def redo(self) -> None:
        self.doc.remove_layer(self.layer_id)

    def undo(self) -> None:
        self.doc.insert_layer(self.index, self.layer)


class SetVisible(QUndoCommand):
    """Show or hide a layer."""

    def __init__(self, doc: Document, layer_id: str, visible: bool) -> None:
        name = _short(doc.layer(layer_id).instruction)
        super().__init__(f"{'Show' if visible else 'Hide'} “{name}”")
        self.doc, self.layer_id, self.visible = doc, layer_id, visible
        self.old = doc.layer(layer_id).visible

    def redo(self) -> None:
        self.doc.update_layer(self.layer_id, visible=self.visible)

    def undo(self) -> None:
        self.doc.update_layer(self.layer_id, visible=self.old)


class SetStrength(QUndoCommand):
    """Change a layer's strength. Consecutive changes of one gesture merge into one step."""

    def __init__(self, doc: Document, layer_id: str, strength: float, gesture: object = None):
        super().__init__()
        self.doc, self.layer_id = doc, layer_id
        self.old = doc.layer(layer_id).strength
        self.new = min(1.0, max(0.0, float(strength)))
        self.gesture = gesture  # one slider drag, or one burst of key presses
        self._name = _short(doc.layer(layer_id).instruction)
        self._retitle()

    def _retitle(self) -> None:
        self.setText(f"Strength {round(self.new * 100)} % “{self._name}”")

    def id(self) -> int:
        return _STRENGTH_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetStrength) or other.layer_id != self.layer_id:
            return False
        if self.gesture is None or other.gesture != self.gesture:
            return False
        self.new = other.new
        self._retitle()
        return True

    def redo(self) -> None:
        self.doc.update_layer(self.layer_id, strength=self.new)

    def undo(self) -> None:
        self.doc.update_layer(self.layer_id, strength=self.old)


class EditInstruction(QUndoCommand):
    """Replace a layer's instruction and what it was read as (the layer re-renders)."""

    def __init__(
        self,
        doc: Document,
        layer_id: str,
        instruction: str,
        task: str = "",
        confidence: float = 0.0,
        adjust: float | None = None,
    ) -> None:
        old = doc.layer(layer_id)
        super().__init__(f"Edit “{_short(old.instruction)}” → “{_short(instruction)}”")
        self.doc, self.layer_id = doc, layer_id
        self.old = (old.instruction, old.task, old.confidence, old.adjust)
        self.new = (instruction, task, confidence, adjust)

    def _apply(self, values: tuple[str, str, float, float | None]) -> None:
        instruction, task, confidence, adjust = values
        self.doc.update_layer(
            self.layer_id, instruction=instruction, task=task, confidence=confidence, adjust=adjust
        )

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)


class MoveLayer(QUndoCommand):
    """Move a layer to another position in the stack (later layers see earlier results)."""

    def __init__(self, doc: Document, layer_id: str, new_index: int) -> None:
        super().__init__(f"Move “{_short(doc.layer(layer_id).instruction)}”")
        self.doc, self.layer_id, self.new_index = doc, layer_id, new_index
        self.old_index = doc.index_of(layer_id)

    def redo(self) -> None:
        self.doc.move_layer(self.layer_id, self.new_index)

    def undo(self) -> None:
        self.doc.move_layer(self.layer_id, self.old_index)


class SetMask(QUndoCommand):
    """Give a layer a mask, change it (one stroke or one tool use) or remove it (``None``).

    Masks only change blending: undo and redo re-composite from the cache, and each mask
    keeps its render key, so undoing finds its composite again. A change of an existing
    mask keeps only the changed box, before and after (a brush stroke on a 24 MP mask is a
    few hundred kB of history, not 48 MB)."""

    def __init__(
        self, doc: Document, layer_id: str, mask: np.ndarray | None, what: str = "Mask"
    ) -> None:
        layer = doc.layer(layer_id)
        super().__init__(f"{what} “{_short(layer.instruction)}”")
        self.doc, self.layer_id = doc, layer_id
        # a Layer turns a float plane into its uint16 mask and names it once, here
        made = Layer(layer_id, layer.instruction, mask=mask)
        self.old_key, self.new_key = layer.mask_key, made.mask_key
        self.box: tuple[slice, slice] | None = None
        old, new = layer.mask, made.mask
        if old is not None and new is not None and old.shape == new.shape:
            changed = old != new
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            if rows.size:
                self.box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            else:
                self.box = (slice(0, 0), slice(0, 0))
            self.old, self.new = old[self.box].copy(), new[self.box].copy()
            self._first = new  # the first redo uses it as it is, then lets it go
        else:
            self.old, self.new, self._first = old, new, None

    def _patched(self, patch: np.ndarray) -> np.ndarray:
        mask = self.doc.layer(self.layer_id).mask.copy()
        mask[self.box] = patch
        return mask

    def redo(self) -> None:
        if self.box is None:
            mask = self.new
        elif self._first is not None:
            mask, self._first = self._first, None
        else:
            mask = self._patched(self.new)
        self.doc.update_layer(self.layer_id, mask=mask, mask_key=self.new_key)

    def undo(self) -> None:
        mask = self.old if self.box is None else self._patched(self.old)
        self.doc.update_layer(self.layer_id, mask=mask, mask_key=self.old_key)
