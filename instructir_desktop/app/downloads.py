"""Model packs for the Models dialog: list, download (progress, cancel), import, remove.

Everything that touches the disk or the network runs off the GUI thread (core.store also
imports torch through core.packs); results come back through signals.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .threads import Background

__all__ = ["ModelManager", "format_size"]


def format_size(size: int) -> str:
    """Human-readable size, e.g. '64.0 MB'."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


class ModelManager(QObject):
    """Thin Qt wrapper over ``core.store.ModelStore``."""

    listed = Signal(object)  # list[PackStatus]
    progress = Signal(str, int, int, str)  # pack id, bytes done, bytes total, file name
    finished = Signal(str, str)  # pack id, what happened ("downloaded", "imported", "removed")
    failed = Signal(str, str)  # pack id, message
    cancelled = Signal(str)

    def __init__(self, background: Background, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bg = background
        self._cancel = threading.Event()
        self._busy = ""

    @property
    def busy(self) -> str:
        """Id of the pack being downloaded or imported ("" when idle)."""
        return self._busy

    def refresh(self) -> None:
        def listing():
            from instructir_desktop.core.store import ModelStore

            return ModelStore().list()

        self.bg.run(
            self.bg.io, listing, self.listed.emit, lambda exc: self.failed.emit("", str(exc))
        )

    def download(self, pack_id: str) -> None:
        """Download on a thread of its own (it may take minutes; file saves must not wait)."""
        if self._busy:
            return
        self._busy = pack_id
        self._cancel.clear()
        post = self.bg.dispatcher.post

        def work() -> None:
            from instructir_desktop.core.errors import CancelledError, InstructIRError
            from instructir_desktop.core.store import ModelStore

            try:
                ModelStore().download(
                    pack_id,
                    progress=lambda done, total, name: post(
                        self.progress.emit, pack_id, int(done), int(total), str(name)
                    ),
                    cancel=self._cancel.is_set,
                )
            except CancelledError:
                post(self._done, pack_id, "cancelled", "")
            except InstructIRError as exc:
                post(self._done, pack_id, "failed", str(exc))
            except Exception as exc:  # noqa: BLE001 - shown to the user, the app carries on
                post(self._done, pack_id, "failed", f"The download failed: {exc}")
            else:
                post(self._done, pack_id, "downloaded", "")

        threading.Thread(target=work, name=f"download-{pack_id}", daemon=True).start()

    def cancel(self) -> None:
        self._cancel.set()

    def import_files(self, pack_id: str, paths: list[Path]) -> None:
        if self._busy:
            return
        self._busy = pack_id

        def work():
            from instructir_desktop.core.store import ModelStore

            return ModelStore().import_files(pack_id, [Path(p) for p in paths])

        self.bg.run(
            self.bg.io,
            work,
            lambda _p: self._done(pack_id, "imported", ""),
            lambda exc: self._done(pack_id, "failed", str(exc)),
        )

    def remove(self, pack_id: str) -> None:
        def work():
            from instructir_desktop.core.store import ModelStore

            return ModelStore().remove(pack_id)

        self.bg.run(
            self.bg.io,
            work,
            lambda _r: self._done(pack_id, "removed", ""),
            lambda exc: self._done(pack_id, "failed", str(exc)),
        )

    def _done(self, pack_id: str, outcome: str, message: str) -> None:
        if self._busy == pack_id:
            self._busy = ""
        if outcome == "failed":
            self.failed.emit(pack_id, message)
        elif outcome == "cancelled":
            self.cancelled.emit(pack_id)
        else:
            self.finished.emit(pack_id, outcome)
        self.refresh()
