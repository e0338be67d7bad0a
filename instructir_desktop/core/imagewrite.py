"""Writing an encoded photo to disk: atomically, never over its own source by accident, and
with a reason a photographer understands when the disk says no."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .atomic import atomic_write_bytes
from .errors import ImageWriteError

__all__ = ["same_file", "write_image_file"]


def same_file(target: Path, source: Path) -> bool:
    """True when both paths name one file (through links, case-folding file systems...)."""
    try:
        return target.resolve() == Path(source).resolve() or os.path.samefile(target, source)
    except OSError:
        return False


def write_image_file(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically; raises ImageWriteError on failure."""
    folder = target.parent
    if not folder.is_dir():
        raise ImageWriteError(
            f"The folder '{folder}' does not exist; '{target.name}' was not saved."
        )
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        raise ImageWriteError(_write_failure(target, exc)) from exc


def _write_failure(target: Path, exc: OSError) -> str:
    name, folder = target.name, target.parent
    reasons = {
        errno.ENOSPC: f"the disk is full; free some space and save '{name}' again.",
        errno.EDQUOT: f"the disk quota is full; free some space and save '{name}' again.",
        errno.EACCES: f"permission denied: you cannot write into '{folder}'.",
        errno.EPERM: f"permission denied: you cannot write into '{folder}'.",
        errno.EROFS: f"the disk holding '{folder}' is read-only.",
        errno.ENOENT: f"the folder '{folder}' does not exist.",
        errno.ENAMETOOLONG: "the file name is too long.",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return f"'{name}' could not be saved: {reason}"
