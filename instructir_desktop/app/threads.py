"""Background threads for work that is not the model: compositing, file I/O, downloads.

Results come back through a signal of a GUI-thread QObject (``Dispatcher``), never by
polling or processEvents().
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

__all__ = ["Dispatcher", "Background"]

log = logging.getLogger(__name__)


class Dispatcher(QObject):
    """Calls functions on the thread this object lives on (the GUI thread)."""

    _deliver = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._deliver.connect(self._call)
        self.closed = False

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the GUI thread; safe from any thread."""
        if not self.closed:
            self._deliver.emit((fn, args))

    def _call(self, item: tuple[Callable[..., Any], tuple]) -> None:
        fn, args = item
        if self.closed:
            return
        try:
            fn(*args)
        except RuntimeError as exc:
            # The result's receiver (a dialog closed before its answer came) no longer exists.
            if "deleted" not in str(exc):
                raise


class Background(QObject):
    """Two single-thread executors: ``compute`` (composites) and ``io`` (open, save, export)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dispatcher = Dispatcher(self)
        self.compute = ThreadPoolExecutor(1, thread_name_prefix="instructir-compute")
        self.io = ThreadPoolExecutor(1, thread_name_prefix="instructir-io")
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    def run(
        self,
        pool: ThreadPoolExecutor,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Run ``fn`` on ``pool``; ``on_done(result)`` / ``on_error(exc)`` run on the GUI thread."""
        with self._lock:
            self._pending += 1

        def task() -> None:
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to on_error on the GUI thread
                if on_error is None:
                    log.error("background task failed:\n%s", traceback.format_exc())
                else:
                    self.dispatcher.post(on_error, exc)
            else:
                if on_done is not None:
                    self.dispatcher.post(on_done, result)
            finally:
                with self._lock:
                    self._pending -= 1

        try:
            pool.submit(task)
        except RuntimeError:  # shut down: the window is closing
            with self._lock:
                self._pending -= 1

    def shutdown(self) -> None:
        """Finish pending saves, drop queued composites; nothing is delivered afterwards."""
        self.dispatcher.closed = True
        self.compute.shutdown(wait=True, cancel_futures=True)
        self.io.shutdown(wait=True)  # a project save queued before quitting must still happen
