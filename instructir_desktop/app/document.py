"""The document: one source photo and its stack of instruction layers. No widgets, no model.

Undo commands are the only writers of the layer stack (so every change is undoable); the
render scheduler and the widgets read it and listen to its signals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from instructir_desktop.core.adjust import MAX_STOPS
from instructir_desktop.core.images import Photo

from .stack import StepSpec

__all__ = ["Layer", "Source", "Document", "new_layer_id"]


def new_layer_id() -> str:
    """A short random id, stable across save/load."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Layer:
    """One instruction applied on top of the layers below it."""

    id: str
    instruction: str
    strength: float = 1.0
    visible: bool = True
    task: str = ""  # what the intent head understood, for the chip; "" when unknown
    confidence: float = 0.0
    adjust: float | None = None  # an exposure adjustment (stops) instead of a model fix
    # Full-resolution mask, uint16 H x W (65535 applies, 0 keeps what is below); a float
    # plane in [0, 1] is stored as uint16, so a project saves it losslessly as a 16-bit PNG.
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    mask_key: str = field(default="", compare=False)  # names this mask in render keys

    def __post_init__(self) -> None:
        mask = self.mask
        if mask is not None and mask.dtype != np.uint16:
            plane = np.asarray(mask, np.float32)
            plane = plane[..., 0] if plane.ndim == 3 else plane
            mask = np.rint(np.clip(plane, 0.0, 1.0) * 65535.0).astype(np.uint16)
        if mask is not None:
            mask.setflags(write=False)  # shared by undo commands and the render thread
        object.__setattr__(self, "mask", mask)
        if mask is None:
            object.__setattr__(self, "mask_key", "")
        elif not self.mask_key:
            object.__setattr__(self, "mask_key", uuid.uuid4().hex[:12])

    @property
    def is_adjustment(self) -> bool:
        """Computed without the model (core.adjust), e.g. darkening a too bright photo."""
        return self.adjust is not None

    def step(self) -> StepSpec:
        return StepSpec(
            self.id,
            self.instruction,
            self.strength,
            self.visible,
            self.adjust,
            self.mask,
            self.mask_key,
        )

    def to_dict(self) -> dict:
        """The layer's fields for a manifest; the mask is written by app.project."""
        skip = ("mask", "mask_key")
        fields = dataclasses.fields(self)
        return {f.name: getattr(self, f.name) for f in fields if f.name not in skip}

    @classmethod
    def from_dict(cls, d: dict) -> Layer:
        strength = float(d.get("strength", 1.0))
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"layer strength {strength} is outside 0..1")
        instruction = str(d["instruction"]).strip()
        if not instruction:
            raise ValueError("a layer has an empty instruction")
        adjust = d.get("adjust")
        if adjust is not None:
            adjust = float(adjust)
            if not math.isfinite(adjust) or abs(adjust) > MAX_STOPS:
                raise ValueError(f"an exposure adjustment of {adjust} stops is out of range")
        return cls(
            id=str(d.get("id") or new_layer_id()),
            instruction=instruction,
            strength=strength,
            visible=bool(d.get("visible", True)),
            task=str(d.get("task", "")),
            confidence=float(d.get("confidence", 0.0)),
            adjust=adjust,
        )


@dataclass(frozen=True)
class Source:
    """The photo being edited, with the file's original bytes (kept for projects)."""

    photo: Photo
    data: bytes
    name: str
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        # Hashing the encoded bytes is cheap next to decoding, and identifies the pixels.
        return hashlib.sha1(self.data).hexdigest()[:16]


class Document(QObject):
    """Source photo + ordered layers (index 0 is applied first). Emits on every change."""

    sourceChanged = Signal()
    layersChanged = Signal()
    layerChanged = Signal(str)  # id of a layer whose properties changed
    pathChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source: Source | None = None
        self._layers: list[Layer] = []
        self._path: Path | None = None

    @property
    def source(self) -> Source | None:
        return self._source

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def path(self) -> Path | None:
        """The project file this document was loaded from or saved to."""
        return self._path

    @property
    def title(self) -> str:
        if self._path is not None:
            return self._path.name
        return self._source.name if self._source is not None else "Untitled"

    def set_path(self, path: Path | None) -> None:
        self._path = Path(path) if path is not None else None
        self.pathChanged.emit()

    def reset(self, source: Source | None, layers: list[Layer] = (), path: Path | None = None):
        """Replace everything (open photo / open project). Not undoable on purpose."""
        self._source = source
        self._layers = list(layers)
        self._path = Path(path) if path is not None else None
        self.sourceChanged.emit()
        self.layersChanged.emit()
        self.pathChanged.emit()

    def steps(self) -> list[StepSpec]:
        """The stack as the renderer needs it."""
        return [layer.step() for layer in self._layers]

    def index_of(self, layer_id: str) -> int:
        for i, layer in enumerate(self._layers):
            if layer.id == layer_id:
                return i
        raise KeyError(layer_id)

    def layer(self, layer_id: str) -> Layer:
        return self._layers[self.index_of(layer_id)]

    def has_layer(self, layer_id: str) -> bool:
        return any(layer.id == layer_id for layer in self._layers)

    # Mutators: called by app.commands only.

    def insert_layer(self, index: int, layer: Layer) -> None:
        self._layers.insert(index, layer)
        self.layersChanged.emit()

    def remove_layer(self, layer_id: str) -> tuple[int, Layer]:
        index = self.index_of(layer_id)
        layer = self._layers.pop(index)
        self.layersChanged.emit()
        return index, layer

    def update_layer(self, layer_id: str, **changes) -> Layer:
        """Replace some fields of a layer; returns the old layer."""
        index = self.index_of(layer_id)
        old = self._layers[index]
        self._layers[index] = dataclasses.replace(old, **changes)
        self.layerChanged.emit(layer_id)
        self.layersChanged.emit()
        return old

    def move_layer(self, layer_id: str, new_index: int) -> int:
        """Move a layer to ``new_index`` (in the stack after removal); returns the old index."""
        old_index = self.index_of(layer_id)
        layer = self._layers.pop(old_index)
        new_index = max(0, min(new_index, len(self._layers)))
        self._layers.insert(new_index, layer)
        self.layersChanged.emit()
        return old_index
