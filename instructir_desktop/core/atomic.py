"""Atomic file writes: readers see the old file or the new one, never half of either.

The new content goes to a temp file in the target's folder (so the rename stays on one file
system), is flushed to disk, given its permission mode, then renamed over the target. On
any error the temp file is removed and the target is left as it was.
A temp file that a killed writer left behind is removed by the next write beside it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file", "atomic_write_bytes", "atomic_write_text", "remove_stale_temps"]

# A writer that has not touched its temp file for this long was killed mid-write.
STALE_TEMP_SECONDS = 300


def _mode_for(target: Path) -> int:
    """An existing file keeps its mode; a new one gets what open() would give it."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        mask = os.umask(0o022)  # the only portable way to read the umask is to set it
        os.umask(mask)
        return 0o666 & ~mask


def remove_stale_temps(target: str | Path, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files that a killed writer left beside ``target`` (``.name.*.tmp`` not
    written to for ``older_than`` seconds: a live writer keeps touching its file). Returns
    how many went."""
    target = Path(target)
    removed = 0
    cutoff = time.time() - older_than
    with contextlib.suppress(OSError):
        for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
    return removed


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` when the block ends without an error.

    ``mode`` is the permission of the result; without it an existing file keeps its mode
    and a new one follows the umask. The temp file is private (0600) while it is written,
    so a secret never lies readable on disk.
    """
    target = Path(path)
    final_mode = _mode_for(target) if mode is None else mode
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, final_mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_file`` for ``mode``)."""
    with atomic_file(path, mode) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically, line ends as given."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)
