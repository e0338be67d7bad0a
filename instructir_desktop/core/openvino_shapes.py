"""One compiled OpenVINO tile shape (``CompiledShape``): its idle infer requests, and the
warm-up that runs it once while the user types so that a restore is not its slower first run.
``OpenVINOBackend`` (``backends.py``) keeps them per shape. On disk, OpenVINO's compiled models
are kept a folder per shape, the least recently used removed beyond a size (``prune_compiled``)."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

# The requests of warm-ups in flight. At exit they are cancelled and waited for: a helper
# thread's inference still running while the interpreter shuts down could crash the exit.
_WARMING: set = set()


@atexit.register
def cancel_warm_ups() -> None:
    for request in list(_WARMING):
        request.cancel()
        with contextlib.suppress(RuntimeError):
            request.wait()


class CompiledShape:
    """One compiled tile shape: the compiled model, its idle infer requests and how many to
    keep in flight. Requests and that number are made once: asking a compiled model for a
    new request or a property while it runs waits for the running tiles (per tile, that wait
    is half of a 4 MP restore's time)."""

    def __init__(self, compiled) -> None:
        self.model = compiled
        self.in_flight = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._idle = deque(compiled.create_infer_request() for _ in range(self.in_flight))
        self._cond = threading.Condition()
        self._warming = None  # the request warm_up runs, while it runs
        self.warm = False  # a request of this shape has run once

    def request(self):
        """An idle infer request (hand it back with ``done``). A warm-up in progress is
        cancelled: a restore never waits for one, and never makes a second request for it."""
        with self._cond:
            if self._warming is not None:
                self._warming.cancel()
                self._cond.wait_for(lambda: self._warming is None)
            return self._idle.popleft() if self._idle else self.model.create_infer_request()

    def done(self, request) -> None:
        with self._cond:
            self._idle.append(request)
        self.warm = True

    def warm_up(self, inputs: list[np.ndarray], busy: Callable[[], bool]) -> bool:
        """Run an idle request once on ``inputs`` (its result is dropped). A compiled shape's
        first run is slower than the next ones (its working memory is paged in, lazily made
        kernels and constants are made): 0.1 s of a 2 s 1 MP run for the official network on
        a bf16 CPU (benchmarks/first_run.py). Cancelled as soon as ``busy()`` (a restore
        started) or a restore asks this shape for a request. Returns whether it finished."""
        with self._cond:
            if self.warm or not self._idle or self._warming is not None or busy():
                return self.warm
            request = self._idle.popleft()
            try:
                request.start_async(inputs)
            except BaseException:
                self._idle.appendleft(request)
                raise
            self._warming = request
            _WARMING.add(request)
        try:
            while not request.wait_for(20):
                if busy():
                    request.cancel()
                    break
            request.wait()
            self.warm = True
        except RuntimeError:
            pass  # cancelled: the restore that wanted the cores runs the shape itself
        finally:
            _WARMING.discard(request)
            with self._cond:
                self._warming = None
                self._idle.appendleft(request)
                self._cond.notify_all()
        return self.warm

    def release(self) -> None:
        try:
            self.model.release_memory()
        except (AttributeError, RuntimeError):
            pass  # an older OpenVINO, or a request running: the memory stays, nothing breaks


def prune_compiled(root: Path, budget: int, keep: set[Path], settle_s: float = 60.0) -> list[Path]:
    """Make OpenVINO's compiled-model cache under ``root`` (a folder per tile shape, its
    modification time its last use) fit in ``budget`` bytes: the least recently used folders
    go first. ``keep`` (the shapes in use) stays, and so does whatever changed in the last
    ``settle_s`` seconds (another process may be writing it). Files directly under ``root``
    are compiled models of no shape folder, which nothing reads: they go. Returns what went."""
    entries = []
    now = time.time()
    try:
        listing = list(root.iterdir())
    except OSError:
        return []
    for entry in listing:
        try:
            stat = entry.stat()
            if entry.is_dir():
                size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            else:
                size = stat.st_size
        except OSError:
            continue  # removed meanwhile (another process pruning)
        entries.append((entry.is_dir(), stat.st_mtime, size, entry))
    total = sum(size for _is_dir, _mtime, size, _entry in entries)
    removed = []
    # Loose files first, then folders, least recently used first.
    for is_dir, mtime, size, entry in sorted(entries, key=lambda e: (e[0], e[1])):
        if is_dir and total <= budget:
            break
        if entry in keep or now - mtime < settle_s:
            continue
        if is_dir:
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        if not entry.exists():
            total -= size
            removed.append(entry)
    return removed
