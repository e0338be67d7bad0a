"""What the open photo itself suggests fixing, for the chat: assessed off the GUI thread when a
photo opens and, with the ``reassess_layers`` setting on, again after each new layer.

The assessor (``core/assess.py``) is numpy only and takes a fraction of a second, so it runs on
the compute executor beside the composites; results for a photo that is no longer open are
dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from instructir_desktop.core.assess import Assessment, default_assessor

if TYPE_CHECKING:
    from .render import Frame
    from .session import EditorSession

__all__ = ["PhotoAdvice", "PhotoAssessor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoAdvice:
    """What the chat shows: a sentence and the suggested fixes in the order to apply them."""

    text: str
    suggested: tuple[str, ...]
    assessment: Assessment
    after_layer: bool = False


class PhotoAssessor(QObject):
    """Assesses the session's photo; ``advice`` carries a PhotoAdvice, or None when a photo
    opens (the previous advice no longer applies)."""

    advice = Signal(object)

    def __init__(self, session: EditorSession) -> None:
        super().__init__(session)
        self.session = session
        self.latest: PhotoAdvice | None = None
        self._generation = 0
        self._layers = 0
        session.documentOpened.connect(self._opened)
        session.scheduler.frameReady.connect(self._frame)

    def _opened(self) -> None:
        self._generation += 1
        self.latest = None
        self.advice.emit(None)
        doc = self.session.document
        self._layers = len(doc.layers)
        if doc.source is None or doc.layers:
            return  # a project with layers: its photo was assessed when it was first opened
        self._run(doc.source.photo.pixels, after_layer=False)

    def _frame(self, frame: Frame) -> None:
        layers = len(self.session.document.layers)
        self._layers = min(self._layers, layers)  # a removed layer is not a new one
        if layers == self._layers or frame.level != "full":
            return
        if not self.session.settings.reassess_layers:
            return
        if self.session.scheduler.frame("full") is not frame:
            return  # the document changed again since this frame
        self._layers = layers
        self._run(frame.image, after_layer=True)

    def _run(self, pixels: np.ndarray, after_layer: bool) -> None:
        generation = self._generation
        background = self.session.background
        background.run(
            background.compute,
            lambda: default_assessor().assess(pixels),
            lambda result: self._done(result, generation, after_layer),
            lambda exc: log.warning("assessing the photo failed: %s", exc),
        )

    def _done(self, result: Assessment, generation: int, after_layer: bool) -> None:
        if generation != self._generation:
            return  # another photo opened meanwhile
        before = self.latest.assessment if self.latest is not None else None
        text = result.compare(before) if after_layer and before is not None else result.summary()
        self.latest = PhotoAdvice(text, result.suggested, result, after_layer)
        self.advice.emit(self.latest)
