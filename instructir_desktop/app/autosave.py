"""Autosave and crash recovery.

Each running app owns ``<data_dir>/autosave/<session>.instructir`` and holds a QLockFile next
to it. A clean exit deletes both. On start, autosaves whose lock is not held by a live
process are work left behind by a crash, offered for recovery.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QTimer, Signal

from instructir_desktop.core.atomic import remove_stale_temps
from instructir_desktop.core.paths import data_dir

from .project import ProjectData, ProjectError, load_project, save_project
from .threads import Background

__all__ = ["Autosaver", "Recoverable", "find_recoverable", "autosave_dir"]


def autosave_dir() -> Path:
    return data_dir() / "autosave"


@dataclass(frozen=True)
class Recoverable:
    """Unsaved work left by a session that did not exit cleanly."""

    path: Path
    title: str
    saved: float  # time.time() of the autosave
    project_path: str  # the project file it belonged to ("" when never saved)

    def discard(self) -> None:
        for p in (self.path, self.path.with_suffix(".lock")):
            with contextlib.suppress(OSError):
                p.unlink()


def find_recoverable() -> list[Recoverable]:
    """Autosaves of sessions that are no longer running, newest first."""
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    _remove_stale_temps(folder)
    found = []
    for path in folder.glob("*.instructir"):
        lock = QLockFile(str(path.with_suffix(".lock")))
        lock.setStaleLockTime(0)  # only a dead owner makes it stale, however old it is
        if not lock.tryLock(0):
            continue  # another running InstructIR owns it
        lock.unlock()
        try:
            data = load_project(path)
            saved = path.stat().st_mtime
        except ProjectError:
            with contextlib.suppress(OSError):
                path.unlink()  # a damaged autosave is worth nothing
            continue
        except (OSError, MemoryError):
            continue  # unreadable now (another user's file, no memory): maybe next time
        found.append(
            Recoverable(
                path,
                str(data.extra.get("title") or data.source_name),
                saved,
                str(data.extra.get("project_path") or ""),
            )
        )
    return sorted(found, key=lambda r: r.saved, reverse=True)


def _remove_stale_temps(folder: Path) -> None:
    """Temp files of autosaves whose writer was killed before it could rename them."""
    for autosave in {p.name.rsplit(".", 2)[0][1:] for p in folder.glob(".*.instructir.*.tmp")}:
        remove_stale_temps(folder / autosave)


class Autosaver(QObject):
    """Writes the session's snapshot every ``interval`` seconds while there are changes."""

    saved = Signal(str)
    failed = Signal(str)

    def __init__(
        self,
        snapshot: Callable[[], ProjectData | None],
        background: Background,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._snapshot = snapshot
        self._bg = background
        self._dirty = False
        self._writing = False
        self.path = autosave_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.path = self.path.with_suffix(".instructir")
        self._lock: QLockFile | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.save_now)

    def set_interval(self, seconds: int) -> None:
        if seconds <= 0:
            self._timer.stop()
        else:
            self._timer.start(int(seconds * 1000))

    def mark_dirty(self) -> None:
        self._dirty = True

    def mark_clean(self) -> None:
        """The user saved (or discarded): nothing to recover any more."""
        self._dirty = False
        self._remove()

    def save_now(self) -> None:
        if not self._dirty or self._writing:
            return
        data = self._snapshot()
        if data is None:
            return
        self._dirty = False
        self._writing = True
        if self._lock is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = QLockFile(str(self.path.with_suffix(".lock")))
            self._lock.tryLock(0)
        target = self.path
        self._bg.run(self._bg.io, lambda: save_project(data, target), self._written, self._failed)

    def _written(self, path: object) -> None:
        self._writing = False
        self.saved.emit(str(path))

    def _failed(self, exc: BaseException) -> None:
        self._writing = False
        self._dirty = True  # try again at the next tick
        self.failed.emit(str(exc))

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()

    def close(self) -> None:
        """Clean exit: the autosave and its lock go away."""
        self._timer.stop()
        self._remove()
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None
