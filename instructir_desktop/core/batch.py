"""A batch of photos through one model: decoding and encoding overlap the model's work.

A reader thread decodes the next photo and a writer thread encodes the previous result
while the calling thread (the one that runs the model) works on the current photo. Photos
in flight are held within the memory budget (``core.memory``): the reader waits before
decoding a photo that would not fit beside those still being restored or written (one photo
at a time always proceeds). Results are reported in input order, from the calling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CancelledError, InstructIRError
from .images import Photo, header_size, load_image
from .memory import memory_budget, photo_memory

log = logging.getLogger(__name__)

__all__ = ["BatchResult", "run_batch", "photo_size"]


@dataclass
class BatchResult:
    """What became of one input: ``output`` when written, else ``error`` (and ``error_type``,
    the core error's class name); ``skipped`` when there was nothing to apply."""

    index: int
    source: Path
    target: Path
    output: Path | None = None
    error: str = ""
    error_type: str = ""
    skipped: bool = False
    decode_s: float = 0.0
    model_s: float = 0.0
    encode_s: float = 0.0
    seconds: float = 0.0  # from the start of its decoding to the end of its writing

    @property
    def ok(self) -> bool:
        return self.output is not None


Process = Callable[[int, Path, Photo], "np.ndarray | None"]
Save = Callable[[Photo, np.ndarray, Path], Path]


def photo_size(path: Path) -> tuple[int, int] | None:
    """(w, h) from the file's header, without decoding; None when unreadable."""
    return header_size(path)


class _Gate:
    """Bytes of photo memory in flight, at most ``budget`` (one photo always passes)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.cond = threading.Condition()

    def acquire(self, need: int, stop: threading.Event) -> bool:
        with self.cond:
            while self.used and self.used + need > self.budget and not stop.is_set():
                self.cond.wait(0.2)
            if stop.is_set():
                return False
            self.used += need
            return True

    def release(self, need: int) -> None:
        with self.cond:
            self.used -= need
            self.cond.notify_all()


def run_batch(
    plans: Sequence[tuple[Path, Path]],
    process: Process,
    save: Save,
    on_result: Callable[[BatchResult], None] | None = None,
    *,
    load: Callable[[Path], Photo] = load_image,
    budget: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[BatchResult]:
    """Decode, ``process`` (in this thread) and ``save`` each (input, output) pair.

    ``process(index, path, photo)`` returns the new RGB pixels, or None to skip the photo;
    a core error from any stage fails that photo only. CancelledError or KeyboardInterrupt
    from ``process`` (or ``cancelled()`` turning true) stops the batch after the photos
    already being written. ``on_result`` is called in input order from this thread.
    """
    budget = memory_budget() if budget is None else budget
    gate = _Gate(budget)
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=1)
    to_write: queue.Queue = queue.Queue()
    written: queue.Queue = queue.Queue()

    def reader() -> None:
        for i, (src, dst) in enumerate(plans):
            size = photo_size(src)
            need = photo_memory(*size) if size else 0
            if not gate.acquire(need, stop):
                break
            result = BatchResult(i, src, dst)
            t0 = time.perf_counter()
            photo = None
            try:
                photo = load(src)
            except InstructIRError as exc:
                result.error, result.error_type = str(exc), type(exc).__name__
            except MemoryError:
                result.error, result.error_type = "not enough memory to open it", "MemoryError"
            except Exception as exc:  # noqa: BLE001 - one photo must not stop the batch
                log.exception("decoding %s", src)
                result.error = f"cannot be opened ({type(exc).__name__}: {exc})"
                result.error_type = "UnsupportedImageError"
            result.decode_s = time.perf_counter() - t0
            while not stop.is_set():
                try:
                    decoded.put((result, photo, need, t0), timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                gate.release(need)
                break
        decoded.put(None)

    def writer() -> None:
        while (item := to_write.get()) is not None:
            result, photo, pixels, need, t0 = item
            t1 = time.perf_counter()
            try:
                result.output = save(photo, pixels, result.target)
            except InstructIRError as exc:
                result.error, result.error_type = str(exc), type(exc).__name__
            except OSError as exc:
                result.error, result.error_type = str(exc.strerror or exc), "ImageWriteError"
            except Exception as exc:  # noqa: BLE001 - one photo must not stop the batch
                log.exception("writing %s", result.target)
                result.error = f"cannot be written ({type(exc).__name__}: {exc})"
                result.error_type = "ImageWriteError"
            result.encode_s = time.perf_counter() - t1
            result.seconds = time.perf_counter() - t0
            del pixels
            gate.release(need)
            written.put(result)

    threads = [
        threading.Thread(target=reader, name="instructir-batch-read", daemon=True),
        threading.Thread(target=writer, name="instructir-batch-write", daemon=True),
    ]
    for t in threads:
        t.start()
    results: list[BatchResult] = []
    pending: dict[int, BatchResult] = {}
    next_index = [0]

    def report(result: BatchResult) -> None:
        pending[result.index] = result
        while next_index[0] in pending:
            done = pending.pop(next_index[0])
            next_index[0] += 1
            results.append(done)
            if on_result is not None:
                on_result(done)

    def drain(block: bool = False) -> None:
        while True:
            try:
                report(written.get(block=block, timeout=None))
            except queue.Empty:
                return
            block = False

    interrupted: BaseException | None = None
    try:
        while (item := decoded.get()) is not None:
            result, photo, need, t0 = item
            drain()
            if cancelled is not None and cancelled():
                gate.release(need)
                raise CancelledError("Cancelled.")
            if photo is None:
                gate.release(need)
                result.seconds = time.perf_counter() - t0
                report(result)
                continue
            t1 = time.perf_counter()
            try:
                pixels = process(result.index, result.source, photo)
            except InstructIRError as exc:
                if isinstance(exc, CancelledError):
                    gate.release(need)
                    raise
                pixels = None
                result.error, result.error_type = str(exc), type(exc).__name__
            except MemoryError:
                pixels = None
                result.error, result.error_type = "not enough memory", "MemoryError"
            result.model_s = time.perf_counter() - t1
            if pixels is None:
                result.skipped = not result.error
                gate.release(need)
                result.seconds = time.perf_counter() - t0
                report(result)
                continue
            to_write.put((result, photo, pixels, need, t0))
            del photo, pixels
    except (CancelledError, KeyboardInterrupt) as exc:
        interrupted = exc
        stop.set()
    finally:
        to_write.put(None)
        threads[1].join()
        stop.set()
        while True:  # unblock the reader if it waits to hand over a photo
            try:
                if decoded.get_nowait() is None:
                    break
            except queue.Empty:
                if not threads[0].is_alive():
                    break
                time.sleep(0.05)
        threads[0].join()
    while not written.empty():
        drain()
    if interrupted is not None:
        raise interrupted
    return results
