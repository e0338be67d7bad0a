"""Opening photos, projects and autosaves for the editing session (``EditorSession``).

Decoding runs on the I/O thread; the result resets the document, the chat and the undo
history on the GUI thread. A mixin of ``app/session.py``: it uses the session's document,
scheduler, chat, settings and signals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .autosave import Recoverable
from .files import Opened, open_bytes, open_file

__all__ = ["OpeningMixin"]


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class OpeningMixin:
    """``open_path``, ``open_bytes``, ``open_pixels`` and ``recover`` of the session."""

    def open_path(self, path: str | Path) -> None:
        """Open a photo or project on the I/O thread; emits documentOpened or openFailed."""
        path = Path(path)
        edge = self.settings.preview_edge
        self.info.emit(f"Opening {path.name}…")
        self._decode(lambda: open_file(path, edge), self._opened)

    def open_bytes(self, data: bytes, name: str) -> None:
        """Open a photo held in memory (pasted from the clipboard)."""
        edge = self.settings.preview_edge
        self._decode(lambda: open_bytes(data, name, edge), self._opened)

    def open_pixels(self, rgba: np.ndarray, name: str) -> None:
        """Open 8-bit RGBA pixels (a pasted image): stored as PNG so projects can hold it."""
        edge = self.settings.preview_edge

        def work() -> Opened:
            from instructir_desktop.core.images import Photo, encode_image

            alpha = rgba[..., 3] if rgba.shape[2] == 4 and (rgba[..., 3] < 255).any() else None
            photo = Photo(
                pixels=rgba[..., :3].astype(np.float32) / 255.0,
                alpha=None if alpha is None else alpha.astype(np.float32) / 255.0,
                bit_depth=8,
                exif=None,
                icc_profile=None,
                format="PNG",
            )
            return open_bytes(encode_image(photo, "PNG"), name, edge)

        self._decode(work, self._opened)

    def recover(self, item: Recoverable) -> None:
        """Reopen the autosave of a crashed session, as unsaved work."""

        def done(opened: Opened) -> None:
            project = opened.extra.get("project_path") if opened.extra else ""
            opened.project_path = Path(project) if project else None
            self._opened(opened, recovered=True)
            item.discard()

        edge = self.settings.preview_edge
        self._decode(lambda: open_file(item.path, edge), done)

    @property
    def opening(self) -> bool:
        """A photo or project is being decoded; it replaces what is shown once it opens."""
        return self._opening > 0

    def hold_until_open(self, text: str) -> None:
        """Keep an instruction typed while a photo opens; it goes in once the photo shows
        (``heldSent``), and is dropped, still in the chat box, if the photo fails to open."""
        self._held_text = text
        self.info.emit(f"Opening the photo… “{_short(text)}” goes in once it shows.")

    def _decode(self, work, done) -> None:
        self._opening += 1

        def finished(opened: Opened) -> None:
            self._opening -= 1
            done(opened)
            self._send_held()

        def failed(exc: BaseException) -> None:
            self._opening -= 1
            self._held_text = ""
            self._open_failed(exc)

        self.background.run(self.background.io, work, finished, failed)

    def _send_held(self) -> None:
        text, self._held_text = self._held_text, ""
        if text and not self.opening and self.submit(text) is not None:
            self.heldSent.emit(text)

    def _opened(self, opened: Opened, recovered: bool = False) -> None:
        self.scheduler.cancel()
        self._queue.clear()
        self._intent_jobs.clear()
        self.chat.clear()
        self.thumbnails.clear()
        self.undo_stack.clear()
        self.document.reset(opened.source, opened.layers, opened.project_path)
        self.scheduler.set_levels(opened.levels, opened.pyramid)
        for layer in opened.layers:
            self.chat.add(
                layer.instruction,
                state="applied",
                task=layer.task,
                title=self.task_title(layer.task) if layer.task else "",
                confidence=layer.confidence,
                layer_id=layer.id,
            )
        self._force_dirty = recovered
        self.autosaver.mark_clean()
        if recovered:
            self.autosaver.mark_dirty()
        path = opened.project_path or opened.source.path
        if path is not None and not recovered:
            self.settings.add_recent(path)
        self.select_layer(opened.layers[-1].id if opened.layers else "")
        self.documentOpened.emit()
        self._emit_dirty()
        used = self.model_pack()
        if opened.pack and used and opened.pack != used:
            # Layers re-render with the loaded model, so the result can differ a little.
            self.warning.emit(
                f"This project was made with the model '{opened.pack}'; it is shown "
                f"with '{used}'. Choose the model in Models… to see it as saved."
            )
        elif opened.source.photo.frames > 1:
            self.warning.emit(
                f"{self.document.title} has {opened.source.photo.frames} frames or pages; "
                "only the first is edited and exported."
            )
        else:
            self.info.emit(f"Opened {self.document.title}.")

    def _open_failed(self, exc: BaseException) -> None:
        message = str(exc) or f"The file could not be opened ({type(exc).__name__})."
        self.openFailed.emit(message)
        self.error.emit(message)

    def _on_recoverable(self, items: object) -> None:
        if items:
            self.recoveryAvailable.emit(items)
