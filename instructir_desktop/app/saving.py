"""Saving projects and exporting results for the editing session (``EditorSession``).

Both write on the I/O thread, atomically; an export waits for the full-resolution render
first. A mixin of ``app/session.py``: it uses the session's document, undo stack, scheduler,
autosaver, settings and signals.
"""

from __future__ import annotations

from pathlib import Path

from .files import export_photo, project_data
from .project import ProjectData, save_project

__all__ = ["SavingMixin"]


class SavingMixin:
    """``save_project``, ``export`` and the snapshots the autosaver writes."""

    def _snapshot(self, extra: dict | None = None) -> ProjectData | None:
        source = self.document.source
        if source is None:
            return None
        return project_data(source, self.document.layers, self.model_pack(), extra)

    def _autosave_snapshot(self) -> ProjectData | None:
        if not self.dirty:
            return None
        path = self.document.path
        return self._snapshot(
            {"title": self.document.title, "project_path": str(path) if path else ""}
        )

    def save_project(self, path: str | Path) -> None:
        """Save the project (atomic, on the I/O thread); emits projectSaved or error."""
        data = self._snapshot()
        if data is None:
            return
        index = self.undo_stack.index()

        def saved(target: object) -> None:
            self.document.set_path(Path(str(target)))
            if self.undo_stack.index() == index:
                self.undo_stack.setClean()
                self._force_dirty = False
                self.autosaver.mark_clean()
            self.settings.add_recent(Path(str(target)))
            self._emit_dirty()
            self.projectSaved.emit(str(target))
            self.info.emit(f"Saved {Path(str(target)).name}.")

        def failed(exc: BaseException) -> None:
            self.saveFailed.emit(str(exc))
            self.error.emit(str(exc))

        self.background.run(self.background.io, lambda: save_project(data, path), saved, failed)

    @property
    def exporting(self) -> bool:
        """An export is waiting for its render or being written."""
        return bool(self._exports_waiting or self._exports_writing)

    def export(
        self,
        path: str | Path,
        *,
        format: str | None = None,
        quality: int = 95,
        bit_depth: int | None = None,
    ) -> None:
        """Export at full resolution; waits for the full-resolution render first."""
        source = self.document.source
        if source is None:
            return
        path = Path(path)
        if self.scheduler.frame("full") is None:
            self.info.emit("Rendering at full resolution before exporting…")

        def write(frame) -> None:
            self._exports_waiting -= 1
            self._exports_writing += 1
            self.background.run(
                self.background.io,
                lambda: export_photo(
                    source, frame.image, path, format=format, quality=quality, bit_depth=bit_depth
                ),
                written,
                failed,
            )

        def written(target: object) -> None:
            self._exports_writing -= 1
            self.exported.emit(str(target))
            self.info.emit(f"Exported {Path(str(target)).name}.")

        def failed(exc: BaseException) -> None:
            self._exports_writing -= 1
            self.exportFailed.emit(str(exc))
            self.error.emit(str(exc))

        self._exports_waiting += 1
        self.scheduler.when_full(write)

    def _on_exports_dropped(self, reason: str) -> None:
        self._exports_waiting = 0
        self.exportFailed.emit(f"The export was stopped: {reason}")
