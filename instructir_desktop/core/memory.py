"""The memory budget for photos: what this computer can give, not what a file claims.

A small PNG can declare 14000 x 14000 pixels and a small project can hold an entry that
inflates to gigabytes. Before anything is decoded or inflated, its size is checked against a
budget: half the physical memory (or of a container's memory limit), and no more than what
the process's address-space limit (``ulimit -v``, ``prlimit --as``) leaves free.
``INSTRUCTIR_MEMORY_BUDGET_MB`` sets the budget instead (in megabytes).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import ImageTooLargeError, InstructIRError

__all__ = [
    "MEMORY_BUDGET_ENV",
    "PHOTO_BYTES_PER_PIXEL",
    "check_photo_memory",
    "memory_budget",
    "photo_file_budget",
    "photo_memory",
]

MEMORY_BUDGET_ENV = "INSTRUCTIR_MEMORY_BUDGET_MB"
# Peak memory per pixel of opening, restoring and saving one photo: the decoded samples,
# the float32 photo, the float32 result, the 8-bit copy and the encoder's buffers. Measured
# 52 (docs/benchmarks.md, "Memory per pixel"), with a margin.
PHOTO_BYTES_PER_PIXEL = 56
# A photo file holds at most this many bytes per pixel (16-bit RGBA, uncompressed): a larger
# file could not be opened within the budget anyway, so it is refused before it is read.
FILE_BYTES_PER_PIXEL = 8
RAM_SHARE = 0.5
ADDRESS_SPACE_SHARE = 0.8


def memory_budget() -> int:
    """Bytes a photo (or a project's photo file) may use in this process."""
    override = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if override:
        try:
            megabytes = float(override)
        except ValueError:
            megabytes = -1.0
        if not megabytes > 0:
            raise InstructIRError(
                f"{MEMORY_BUDGET_ENV}={override!r} is not a number of megabytes above 0."
            )
        return int(megabytes * (1 << 20))
    limits = [int(total * RAM_SHARE) for total in (_physical_memory(), _cgroup_limit()) if total]
    room = _address_space_room()
    if room is not None:
        limits.append(int(room * ADDRESS_SPACE_SHARE))
    return max(0, min(limits)) if limits else 4 << 30


def photo_file_budget(budget: int | None = None) -> int:
    """Bytes a photo *file* (a project's photo entry) may take: the largest file that could
    hold a photo that fits ``budget`` (default ``memory_budget()``)."""
    budget = memory_budget() if budget is None else budget
    return budget * FILE_BYTES_PER_PIXEL // PHOTO_BYTES_PER_PIXEL


def photo_memory(width: int, height: int) -> int:
    """Bytes that opening, restoring and saving a photo of this size needs at its peak."""
    return int(width) * int(height) * PHOTO_BYTES_PER_PIXEL


def check_photo_memory(name: str, size: tuple[int, int], budget: int | None = None) -> None:
    """Raise ImageTooLargeError when a photo of ``size`` (from its header) would not fit."""
    budget = memory_budget() if budget is None else budget
    need = photo_memory(*size)
    if need <= budget:
        return
    w, h = size
    raise ImageTooLargeError(
        f"'{name}' is {w} x {h} pixels ({w * h / 1e6:.0f} megapixels): editing it needs "
        f"about {_gb(need)} of memory, more than the memory budget of {_gb(budget)}. "
        f"Open a smaller copy, or set {MEMORY_BUDGET_ENV} to allow more."
    )


def _gb(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB"


def _physical_memory() -> int | None:
    if sys.platform == "win32":
        return _windows_memory()
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _windows_memory() -> int | None:
    import ctypes

    class _Status(ctypes.Structure):
        _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong)] + [
            (name, ctypes.c_ulonglong)
            for name in ("total", "avail", "page_total", "page_avail", "virt", "virt_avail", "x")
        ]

    status = _Status()
    status.length = ctypes.sizeof(_Status)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.total)


def _cgroup_limit() -> int | None:
    """A container's memory limit (cgroup v2, then v1); None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            return int(text)
    return None


def _address_space_room() -> int | None:
    """What ``RLIMIT_AS`` leaves of this process's address space; None without a limit."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        used = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)
