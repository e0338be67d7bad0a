"""Where model packs live on this computer: download, import, verify, locate and remove them.

Installed packs live in ``<data_dir>/packs/<id>/`` next to their installed ``manifest.json``
(which records the size and sha256 measured at install for files the catalog cannot pin, so
later checks are strict). A pack shipped in resources/ is used in place, read-only.

Downloads go to ``packs/.staging-<id>/<path>.part`` (``core.download`` fetches, resumes and
checks each file against size + sha256), and only when every file is verified does the staging
folder become the pack folder. A failed or partial download is never visible as an installed
pack.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .atomic import atomic_write_text
from .download import (
    HASH_BLOCK,
    CancelCallback,
    PackDownload,
    ProgressCallback,
    display_name,
    raise_if_corrupt,
    sha256_file,
)
from .errors import (
    DownloadError,
    ModelCorruptError,
    ModelError,
    ModelNotInstalledError,
    UnknownModelError,
)
from .packs import (
    MANIFEST_NAME,
    PackFile,
    PackManifest,
    catalog,
    catalog_entry,
    with_pickled_encoder,
)
from .paths import cache_dir, data_dir
from .resources import resource_path

__all__ = [
    "CancelCallback",
    "FileCheck",
    "ModelStore",
    "PackStatus",
    "ProgressCallback",
    "VerifyReport",
    "cache_dir",
    "data_dir",
]

_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class PackStatus:
    """One line of ``ModelStore.list()``."""

    id: str
    name: str
    version: str
    installed: bool
    bundled: bool
    size: int
    path: Path | None
    description: str = ""


@dataclass(frozen=True)
class FileCheck:
    """Result of checking one pack file. status: ok, missing, size mismatch, hash mismatch."""

    path: str
    status: str
    expected_size: int | None = None
    actual_size: int | None = None
    expected_sha256: str | None = None
    actual_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class VerifyReport:
    """Result of ``ModelStore.verify()``: one FileCheck per manifest file."""

    pack_id: str
    path: Path
    files: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def problems(self) -> list[FileCheck]:
        return [f for f in self.files if not f.ok]


def _how_to_get(pack_id: str) -> str:
    return (
        f"Download it with `instructir models download {pack_id}` or Models → Download in the "
        f"app, or on an offline computer import the files with "
        f"`instructir models import {pack_id} FILE...`."
    )


def _check_id(pack_id: str) -> str:
    if not isinstance(pack_id, str) or not _VALID_ID.match(pack_id):
        raise UnknownModelError(f"'{pack_id}' is not a valid model pack name.")
    return pack_id


def _rel_path(f: PackFile) -> PurePosixPath:
    """The file's path inside the pack, refused if it could escape the pack folder."""
    rel = PurePosixPath(f.path)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts or "\\" in f.path:
        raise ModelCorruptError(f"The model pack manifest has an unsafe file path: {f.path!r}.")
    return rel


def _fsync_dir(path: Path) -> None:
    """Make a rename durable on POSIX; directories cannot be opened for fsync on Windows."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _pack_lock(packs_dir: Path, pack_id: str, error: type[ModelError]) -> Iterator[None]:
    """Keep two programs (the app and the CLI) from writing the same pack at once. An OS lock,
    so it is released even when a process dies."""
    packs_dir.mkdir(parents=True, exist_ok=True)
    with open(packs_dir / f".lock-{pack_id}", "a+b") as fh:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise error(
                f"The model pack '{pack_id}' is being downloaded or installed by another "
                f"InstructIR window or command. Wait for it to finish, then try again."
            ) from exc
        yield  # The lock goes with the file handle.


class ModelStore:
    """The packs installed on this computer, under ``root/packs`` (root: ``data_dir()``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir()

    @property
    def packs_dir(self) -> Path:
        return self.root / "packs"

    def pack_dir(self, pack_id: str) -> Path:
        """Where a downloaded or imported pack lives (whether or not it is there)."""
        return self.packs_dir / _check_id(pack_id)

    def _staging_dir(self, pack_id: str) -> Path:
        return self.packs_dir / f".staging-{pack_id}"

    def bundled_dir(self, pack_id: str) -> Path | None:
        """The read-only pack folder shipped in resources/, or None."""
        folder = resource_path("packs", _check_id(pack_id))
        return folder if (folder / MANIFEST_NAME).is_file() else None

    def _installed_dir(self, pack_id: str) -> Path | None:
        """The folder in use for ``pack_id``: the bundled copy wins, it always matches the app."""
        bundled = self.bundled_dir(pack_id)
        if bundled is not None:
            return bundled
        folder = self.pack_dir(pack_id)
        return folder if (folder / MANIFEST_NAME).is_file() else None

    def _installed(self, pack_id: str) -> tuple[Path, PackManifest]:
        """The folder in use and its manifest; ModelNotInstalledError when there is none."""
        folder = self._installed_dir(pack_id)
        if folder is None:
            known = catalog()
            if pack_id not in known:  # nothing to download: say which packs exist
                names = ", ".join(sorted(known))
                raise UnknownModelError(
                    f"There is no model pack '{pack_id}'. Known packs: {names} "
                    "(`instructir models list` shows what is installed)."
                )
            raise ModelNotInstalledError(
                f"The model pack '{pack_id}' is not installed. {_how_to_get(pack_id)}"
            )
        return folder, PackManifest.load(folder / MANIFEST_NAME)

    def installed_manifest(self, pack_id: str) -> PackManifest | None:
        """The manifest of the installed (or bundled) pack, or None when it is not installed."""
        folder = self._installed_dir(pack_id)
        if folder is None:
            return None
        return PackManifest.load(folder / MANIFEST_NAME)

    def is_installed(self, pack_id: str) -> bool:
        """True when the manifest and every file are present with their recorded sizes."""
        try:
            self.locate(pack_id)
        except (ModelNotInstalledError, ModelCorruptError, UnknownModelError):
            return False
        return True

    def locate(self, pack_id: str) -> Path:
        """The folder of an installed pack; cheap (sizes only; ``verify`` checks hashes)."""
        folder, manifest = self._installed(pack_id)
        for f in manifest.files:
            path = folder / _rel_path(f)
            if not path.is_file():
                raise ModelCorruptError(
                    f"The model pack '{pack_id}' is incomplete: {f.path} is missing. "
                    f"{_how_to_get(pack_id)}"
                )
            if f.size is not None and path.stat().st_size != f.size:
                raise ModelCorruptError(
                    f"The model pack '{pack_id}' is damaged: {f.path} has "
                    f"{path.stat().st_size:,} bytes instead of {f.size:,}. {_how_to_get(pack_id)}"
                )
        return folder

    def list(self) -> list[PackStatus]:
        """Every pack the catalog knows, plus packs installed from an explicit manifest."""
        manifests = dict(catalog())
        if self.packs_dir.is_dir():
            for child in sorted(self.packs_dir.iterdir()):
                if child.name.startswith(".") or child.name in manifests:
                    continue
                if (child / MANIFEST_NAME).is_file() and _VALID_ID.match(child.name):
                    try:
                        manifests[child.name] = PackManifest.load(child / MANIFEST_NAME)
                    except ModelCorruptError:
                        continue
        result = []
        for pack_id, manifest in manifests.items():
            installed = self.is_installed(pack_id)
            path = self._installed_dir(pack_id) if installed else None
            shown = (self.installed_manifest(pack_id) if installed else None) or manifest
            result.append(
                PackStatus(
                    id=pack_id,
                    name=shown.name,
                    version=shown.version,
                    installed=installed,
                    bundled=self.bundled_dir(pack_id) is not None,
                    size=shown.download_size,
                    path=path,
                    description=shown.description,
                )
            )
        return result

    def verify(self, pack_id: str) -> VerifyReport:
        """Check every file of an installed or bundled pack against its manifest."""
        folder, manifest = self._installed(pack_id)
        checks = [self._check_file(folder / _rel_path(f), f) for f in manifest.files]
        return VerifyReport(pack_id, folder, tuple(checks))

    @staticmethod
    def _check_file(path: Path, f: PackFile) -> FileCheck:
        if not path.is_file():
            return FileCheck(f.path, "missing", f.size, None, f.sha256, None)
        size = path.stat().st_size
        if f.size is not None and size != f.size:
            return FileCheck(f.path, "size mismatch", f.size, size, f.sha256, None)
        actual = sha256_file(path)
        if f.sha256 is not None and actual != f.sha256.lower():
            return FileCheck(f.path, "hash mismatch", f.size, size, f.sha256, actual)
        return FileCheck(f.path, "ok", f.size, size, f.sha256, actual)

    def remove(self, pack_id: str) -> bool:
        """Delete a downloaded or imported pack (and any partial download). The bundled pack
        cannot be removed. Returns True when something was deleted."""
        folder = self.pack_dir(pack_id)
        removed = False
        if self.packs_dir.is_dir():
            with _pack_lock(self.packs_dir, pack_id, ModelError):
                for path in (folder, self._staging_dir(pack_id)):
                    if path.exists():
                        shutil.rmtree(path)
                        removed = True
        if not removed and self.bundled_dir(pack_id) is not None:
            raise ModelError(
                f"The model pack '{pack_id}' comes with the app and cannot be removed."
            )
        return removed

    def _resolve(self, manifest: PackManifest | str) -> PackManifest:
        if isinstance(manifest, PackManifest):
            _check_id(manifest.id)
            return manifest
        return catalog_entry(_check_id(manifest))

    def download(
        self,
        manifest: PackManifest | str,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
        *,
        force: bool = False,
    ) -> Path:
        """Download a pack from the Hugging Face Hub, verify it and install it atomically.

        ``progress(done_bytes, total_bytes, filename)`` is called between chunks (total can
        grow when a file of unknown size starts); ``cancel()`` is polled between chunks and
        raises CancelledError, keeping the partial file for a later resume. Without ``force``
        an intact installed copy of the same version is kept and nothing is downloaded.
        """
        listed = self._resolve(manifest)
        m = self._pinned_by_install(listed)
        # Files whose hashes come from the earlier install, not from the catalog.
        recorded = {f.path for f, c in zip(m.files, listed.files) if f.sha256 != c.sha256}
        rels = [_rel_path(f) for f in m.files]
        if not force and self._up_to_date(m):
            folder = self._installed_dir(m.id)
            assert folder is not None
            return folder
        local_only = [f for f in m.files if not f.repo]
        if local_only:
            if len(local_only) == len(m.files) and self.bundled_dir(m.id) is not None:
                return self.locate(m.id)
            names = ", ".join(display_name(f) for f in local_only)
            raise DownloadError(
                f"The model pack '{m.id}' cannot be downloaded: {names} is not published on "
                f"the Hugging Face Hub. Import the files with "
                f"`instructir models import {m.id} FILE...`."
            )

        with _pack_lock(self.packs_dir, m.id, DownloadError):
            staging = self._staging_dir(m.id)
            staging.mkdir(parents=True, exist_ok=True)
            job = PackDownload(m, staging, progress, cancel)
            measured: list[PackFile] = []
            try:
                for f, rel in zip(m.files, rels, strict=True):
                    target = staging / rel
                    if self._staged_ok(target, f) or self._reuse_installed(m, f, target):
                        job.skip(f, target)
                    else:
                        self._fetch(job, f, target, f.path in recorded)
                    measured.append(self._measured(f, target, job.commits.get(f.path)))
            except ModelCorruptError:
                _rmtree(staging)
                raise
            except BaseException:
                # Keep partial files for a resume, but not an empty staging folder.
                if not any(p.is_file() for p in staging.rglob("*")):
                    _rmtree(staging)
                raise
            return self._install(m, measured, staging)

    def _up_to_date(self, m: PackManifest) -> bool:
        """An intact install of the same version and files: nothing to download."""
        if not self.is_installed(m.id):
            return False
        installed = self.installed_manifest(m.id)
        if installed is None or installed.version != m.version:
            return False
        have = {f.path: f for f in installed.files}
        for f in m.files:
            old = have.pop(f.path, None)
            if old is None or (f.sha256 is not None and old.sha256 != f.sha256):
                return False
        return not have and self.verify(m.id).ok

    @staticmethod
    def _staged_ok(target: Path, f: PackFile) -> bool:
        """A file finished and verified by an earlier, interrupted attempt."""
        if not target.is_file():
            return False
        check = ModelStore._check_file(target, f)
        if check.ok:
            return True
        target.unlink()
        return False

    def _reuse_installed(self, m: PackManifest, f: PackFile, target: Path) -> bool:
        """Copy an unchanged file from the current install instead of downloading it again."""
        if f.sha256 is None:
            return False
        folder = self.pack_dir(m.id)
        source = folder / _rel_path(f)
        if not (folder / MANIFEST_NAME).is_file() or not source.is_file():
            return False
        if self._check_file(source, f).status != "ok":
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_hashed(source, target)
        return True

    def _pinned_by_install(self, m: PackManifest) -> PackManifest:
        """``m`` with what the installed copy recorded (revision, size, sha256) for files the
        catalog cannot pin: downloading again fetches that same commit and checks those
        hashes, so a file changed on the Hub since is noticed instead of silently used."""
        installed = self.installed_manifest(m.id) if self.bundled_dir(m.id) is None else None
        if installed is None:
            return m
        recorded = {f.path: f for f in installed.files if f.sha256 is not None}
        files = []
        for f in m.files:
            old = recorded.get(f.path)
            same_source = old is not None and (old.repo, old.filename) == (f.repo, f.filename)
            if f.sha256 is None and same_source:
                f = replace(f, size=old.size, sha256=old.sha256, revision=old.revision)
            files.append(f)
        return replace(m, files=tuple(files))

    @staticmethod
    def _fetch(job: PackDownload, f: PackFile, target: Path, recorded: bool) -> None:
        """``job.fetch``, with a clear message when a file pinned only by an earlier install
        (``recorded``) is no longer what the Hub serves."""
        try:
            job.fetch(f, target)
        except ModelCorruptError as exc:
            if not recorded:
                raise
            raise ModelCorruptError(
                f"{display_name(f)} from {f.repo} is not the file recorded when this pack was "
                f"installed (revision {f.revision}, sha256 {f.sha256}): it changed on the Hub "
                f"since. Nothing was installed. To accept the new file, remove the pack "
                f"(Models → Remove) and download it again."
            ) from exc

    @staticmethod
    def _measured(f: PackFile, path: Path, commit: str | None = None) -> PackFile:
        """The file as installed: sizes and hashes the catalog could not pin are recorded,
        with the commit the Hub served it from."""
        if f.size is not None and f.sha256 is not None:
            return replace(f, revision=commit) if commit else f
        return replace(
            f,
            size=path.stat().st_size,
            sha256=sha256_file(path),
            revision=commit or f.revision,
        )

    def _install(self, m: PackManifest, files: list[PackFile], staging: Path) -> Path:
        """Turn a staging folder whose files are all verified into the pack folder."""
        wanted = {str(_rel_path(f)) for f in files}
        for path in sorted(staging.rglob("*"), reverse=True):
            rel = path.relative_to(staging).as_posix()
            if path.is_file() and rel not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        installed = replace(m, files=tuple(files))
        atomic_write_text(staging / MANIFEST_NAME, installed.to_json())
        _fsync_dir(staging)

        final = self.pack_dir(m.id)
        old = self.packs_dir / f".old-{m.id}-{uuid.uuid4().hex[:8]}"
        try:
            # Two renames: Windows cannot replace a folder that exists.
            if final.exists():
                os.replace(final, old)
            try:
                os.replace(staging, final)
            except OSError:
                if old.exists():
                    os.replace(old, final)
                raise
            _fsync_dir(self.packs_dir)
        except OSError as exc:
            raise ModelError(
                f"Could not install the model pack '{m.id}' in {final}: {exc.strerror or exc}."
            ) from exc
        for stale in self.packs_dir.glob(f".old-{m.id}-*"):
            _rmtree(stale)
        return final

    def import_files(self, manifest: PackManifest | str, paths: list[Path]) -> Path:
        """Install a pack from local files (offline computers).

        Files are matched by name to the manifest; a folder is searched by relative path
        (e.g. a sentence-transformers folder for the text encoder, or a whole pack folder).
        """
        m = with_pickled_encoder(self._resolve(manifest), _names_in([Path(p) for p in paths]))
        sources = self._match_sources(m, [Path(p) for p in paths])
        missing = [f for f in m.files if f.path not in sources]
        if missing:
            names = ", ".join(display_name(f) for f in missing)
            raise ModelNotInstalledError(
                f"Cannot import the model pack '{m.id}': these files were not found among the "
                f"given files: {names}."
            )
        with _pack_lock(self.packs_dir, m.id, ModelError):
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{m.id}-", dir=self.packs_dir))
            try:
                measured = []
                for f in m.files:
                    source = sources[f.path]
                    target = staging / _rel_path(f)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    size, digest = _copy_hashed(source, target)
                    raise_if_corrupt(f, size, digest, target, source)
                    measured.append(replace(f, size=size, sha256=digest))
                final = self._install(m, measured, staging)
            except OSError as exc:
                _rmtree(staging)
                raise ModelError(f"Could not import the model pack '{m.id}': {exc}") from exc
            except BaseException:
                _rmtree(staging)
                raise
            _rmtree(self._staging_dir(m.id))  # A partial download is no longer needed.
            return final

    @staticmethod
    def _match_sources(m: PackManifest, paths: list[Path]) -> dict[str, Path]:
        by_name: dict[str, Path] = {}
        by_rel: dict[str, Path] = {}
        for p in paths:
            if p.is_dir():
                for child in sorted(p.rglob("*")):
                    if child.is_file():
                        by_rel.setdefault(child.relative_to(p).as_posix(), child)
            elif p.is_file():
                by_name.setdefault(p.name, p)
            else:
                raise ModelNotInstalledError(f"Cannot import {p}: no such file or folder.")
        basenames = [PurePosixPath(display_name(f)).name for f in m.files]
        found: dict[str, Path] = {}
        for f, base in zip(m.files, basenames, strict=True):
            for key in (f.filename, f.path):
                if key and key in by_rel:
                    found[f.path] = by_rel[key]
                    break
            else:
                # A lone file matches by name only when the name is unambiguous in the pack
                # (the encoder has config.json at two levels).
                if basenames.count(base) == 1 and base in by_name:
                    found[f.path] = by_name[base]
        return found


def _names_in(paths: list[Path]) -> set[str]:
    """The names of the given files, and the relative paths of the files in given folders."""
    names = {p.name for p in paths if p.is_file()}
    for p in paths:
        if p.is_dir():
            names.update(c.relative_to(p).as_posix() for c in p.rglob("*") if c.is_file())
    return names


def _copy_hashed(source: Path, target: Path) -> tuple[int, str]:
    """Copy while hashing what is written; fsync before returning."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        while block := src.read(HASH_BLOCK):
            dst.write(block)
            digest.update(block)
            size += len(block)
        dst.flush()
        os.fsync(dst.fileno())
    return size, digest.hexdigest()
