"""Check a pack's files against the sizes and sha256 its manifest promises, when it loads.

A weights file with flipped bytes but the right size loads without complaint and gives wrong
(often black) photos, so every load hashes what it is about to use. Hashing the lite pack
takes milliseconds; the official pack's 64 MB image network would cost a noticeable part of
a second on every start, so a file at least ``RECORD_MIN_BYTES`` long that hashed right is
recorded in the cache folder with its size, modification time and inode, and is hashed
again only when one of those changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from .atomic import atomic_write_text
from .download import sha256_file
from .errors import ModelCorruptError
from .packs import PackFile, PackManifest
from .paths import cache_dir
from .resources import resource_path

__all__ = ["RECORD_MIN_BYTES", "RECORDS_NAME", "verify_pack_files"]

RECORD_MIN_BYTES = 8 << 20
RECORDS_NAME = "verified-pack-files.json"


def verify_pack_files(
    manifest: PackManifest, folder: Path, cache_folder: Path | None = None
) -> None:
    """Raise ModelCorruptError (one line, naming the file and how to get it again) when a
    file of the pack in ``folder`` is missing or differs from its manifest entry."""
    folder = Path(folder)
    records_path = Path(cache_folder or cache_dir()) / RECORDS_NAME
    records = _read_records(records_path)
    changed = False
    for f in manifest.files:
        path = folder / _safe_rel(f)
        try:
            st = path.stat()
        except OSError:
            raise ModelCorruptError(_damaged(manifest.id, folder, f, "is missing")) from None
        if f.size is not None and st.st_size != f.size:
            reason = f"has {st.st_size:,} bytes instead of {f.size:,}"
            raise ModelCorruptError(_damaged(manifest.id, folder, f, reason))
        if f.sha256 is None:
            continue
        expected = f.sha256.lower()
        key = str(path.resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, expected]
        if records.get(key) == stamp:
            continue
        if sha256_file(path) != expected:
            records.pop(key, None)
            _write_records(records_path, records)
            reason = "does not match its checksum (sha256): its bytes are damaged"
            raise ModelCorruptError(_damaged(manifest.id, folder, f, reason))
        if st.st_size >= RECORD_MIN_BYTES:
            records[key] = stamp
            changed = True
    if changed:
        _write_records(records_path, records)


def _safe_rel(f: PackFile) -> PurePosixPath:
    rel = PurePosixPath(f.path)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts or "\\" in f.path:
        raise ModelCorruptError(f"The model pack manifest has an unsafe file path: {f.path!r}.")
    return rel


def _damaged(pack_id: str, folder: Path, f: PackFile, reason: str) -> str:
    try:
        bundled = folder.resolve().is_relative_to(resource_path("packs").resolve())
    except OSError:
        bundled = False
    if bundled:
        fix = "Reinstall InstructIR Desktop to repair the model that comes with it."
    else:
        fix = (
            f"Download it again with `instructir models download {pack_id}` (or Models… → "
            f"Download), or import its files (Models… → Import files…)."
        )
    return f"The model pack '{pack_id}' is damaged: {f.path} ({folder / f.path}) {reason}. {fix}"


def _read_records(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_records(path: Path, records: dict[str, list]) -> None:
    """Best effort: a cache that cannot be written only costs a hash at the next start."""
    # Forget files that are gone, so the record does not grow with every reinstall.
    kept = {k: v for k, v in records.items() if os.path.exists(k)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(kept, indent=1, sort_keys=True))
    except OSError:
        pass
