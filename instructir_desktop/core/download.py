"""Download one model pack's files from the Hugging Face Hub into a staging folder.

Each file goes to ``<path>.part``, resumes with an HTTP Range request, and becomes
``<path>`` only once its size and sha256 match the manifest. ``core.store`` owns the staging
folder, the lock and the install; this module owns the network and the checks of one file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CancelledError, DownloadError, ModelCorruptError
from .packs import PackFile, PackManifest

__all__ = [
    "HASH_BLOCK",
    "CancelCallback",
    "PackDownload",
    "ProgressCallback",
    "display_name",
    "raise_if_corrupt",
    "sha256_file",
]

ProgressCallback = Callable[[int, int, str], None]
CancelCallback = Callable[[], bool]

HASH_BLOCK = 1 << 20
_CONNECT_TIMEOUT_S = 15.0
_READ_TIMEOUT_S = 60.0


def display_name(f: PackFile) -> str:
    """The name a person knows the file by (its Hub filename, else its pack path)."""
    return f.filename or f.path


def sha256_file(path: Path) -> str:
    """The file's sha256 as lower-case hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def raise_if_corrupt(
    f: PackFile, size: int, digest: str, part: Path, source: Path | None = None
) -> None:
    """Delete ``part`` and raise ModelCorruptError when size or sha256 differ from ``f``."""
    name = display_name(f) + (f" ({source})" if source is not None else "")
    if f.size is not None and size != f.size:
        part.unlink(missing_ok=True)
        raise ModelCorruptError(
            f"{name} has {size:,} bytes but the model pack expects {f.size:,} "
            f"(sha256 {digest}, expected {f.sha256 or 'not recorded'}). Nothing was installed."
        )
    if f.sha256 is not None and digest != f.sha256.lower():
        part.unlink(missing_ok=True)
        raise ModelCorruptError(
            f"{name} is damaged: its sha256 is {digest}, expected {f.sha256}. "
            f"Nothing was installed."
        )


def _hub_url(repo: str, filename: str, revision: str) -> str:
    """The file's URL, honouring $HF_ENDPOINT as it is now (huggingface_hub reads it once at
    import, so a later change, as tests make, would otherwise be ignored)."""
    from huggingface_hub import constants, hf_hub_url

    endpoint = (
        os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
        or constants.ENDPOINT
        or "https://huggingface.co"
    )
    return hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)


def _hub_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    from .. import __version__ as version

    headers = build_hf_headers(library_name="instructir-desktop", library_version=str(version))
    # Content-Encoding would make Range offsets and sizes refer to the encoded bytes.
    headers["Accept-Encoding"] = "identity"
    return headers


def _lower(headers: object) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}  # type: ignore[attr-defined]


def _all_headers(response: object) -> dict[str, str]:
    """The final response's headers over those of the redirects before it: the Hub names
    the commit (X-Repo-Commit) on its redirect to the CDN, not on the CDN's answer."""
    merged: dict[str, str] = {}
    for r in [*getattr(response, "history", []), response]:
        merged.update(_lower(r.headers))  # type: ignore[attr-defined]
    return merged


class _Response:
    """The part of an HTTP response the downloader needs (header names in lower case)."""

    def __init__(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks


@contextmanager
def _open_stream(url: str, headers: dict[str, str]) -> Iterator[_Response]:
    """GET ``url`` streaming with the HTTP client huggingface_hub itself uses (httpx in 1.x+,
    requests in 0.x), following redirects (the Hub sends large files to its CDN)."""
    from huggingface_hub import get_session

    session = get_session()
    if callable(getattr(session, "stream", None)):  # httpx-style (requests has a bool there)
        module = __import__(type(session).__module__.split(".")[0])
        timeout = module.Timeout(_READ_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S)
        with session.stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=timeout
        ) as r:
            yield _Response(r.status_code, _all_headers(r), r.iter_bytes())
    else:
        r = session.get(
            url,
            headers=headers,
            stream=True,
            allow_redirects=True,
            timeout=(_CONNECT_TIMEOUT_S, _READ_TIMEOUT_S),
        )
        try:
            yield _Response(r.status_code, _all_headers(r), r.iter_content(1 << 16))
        finally:
            r.close()


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean 'the network failed' for the installed HTTP client."""
    from huggingface_hub import get_session

    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror]
    module = __import__(type(get_session()).__module__.split(".")[0])
    for name in ("HTTPError", "StreamError", "RequestException", "InvalidURL"):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            errors.append(cls)
    try:
        from huggingface_hub.errors import OfflineModeIsEnabled

        errors.append(OfflineModeIsEnabled)
    except ImportError:
        pass
    return tuple(errors)


def _network_reason(exc: BaseException) -> str:
    """A short, human reason for a network failure, from the exception and its causes."""
    chain: list[BaseException] = []
    seen = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    if any(type(e).__name__ == "OfflineModeIsEnabled" for e in chain):
        return "offline mode is on (HF_HUB_OFFLINE is set)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        s in text for s in ("name or service not known", "getaddrinfo", "nodename", "resolve")
    ):
        return "the server name could not be found (are you offline?)"
    if "timeout" in text or "timed out" in text:
        return "the connection timed out"
    if any(s in text for s in ("reset", "incomplete", "closed", "broken", "protocol")):
        return "the connection was interrupted"
    detail = str(exc) or type(exc).__name__
    return detail[:200]


def _http_reason(status: int) -> str:
    reasons = {
        401: "access denied (HTTP 401: the Hub asks for a login or the token is not valid)",
        403: "access forbidden (HTTP 403)",
        404: "file not found (HTTP 404)",
        429: "too many requests, try again later (HTTP 429)",
    }
    if status in reasons:
        return reasons[status]
    if status >= 500:
        return f"the server had a problem (HTTP {status}), try again later"
    return f"unexpected answer from the server (HTTP {status})"


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    return int(match.group(1)) if match else None


class _RestartError(Exception):
    """The partial file cannot be resumed; the job downloads the file again from zero."""


class PackDownload:
    """Downloads the files of one pack into its staging folder, with shared progress."""

    def __init__(
        self,
        manifest: PackManifest,
        staging: Path,
        progress: ProgressCallback | None,
        cancel: CancelCallback | None,
    ) -> None:
        self.manifest = manifest
        self.staging = staging
        self.progress = progress
        self.cancel = cancel
        self.total = manifest.download_size
        # Bytes of files already finished, counted once their size is known.
        self.done = 0
        self._counted: set[str] = set()
        # The commit the Hub served each file from (X-Repo-Commit), by pack path.
        self.commits: dict[str, str] = {}

    def _report(self, current: int, name: str) -> None:
        if self.progress is not None:
            self.progress(self.done + current, max(self.total, self.done + current), name)

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise CancelledError(
                f"The download of '{self.manifest.id}' was cancelled; it will resume where it "
                f"stopped next time."
            )

    def _fail(self, f: PackFile, reason: str) -> DownloadError:
        endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
        where = "the Hugging Face Hub" + (f" ({endpoint})" if endpoint else "")
        return DownloadError(
            f"Could not download {display_name(f)} from {where}: {reason}. Check your internet "
            f"connection, or import the files with "
            f"`instructir models import {self.manifest.id} FILE...`."
        )

    def fetch(self, f: PackFile, target: Path) -> None:
        """Download one file to ``target`` (via ``target.part``), verified, or raise."""
        part = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.size is not None and part.is_file() and part.stat().st_size > f.size:
            part.unlink()
        if not part.is_file():
            self._fetch(f, part, target)
            return
        try:
            self._fetch(f, part, target)
        except (_RestartError, ModelCorruptError):
            # The kept partial file cannot be continued or was itself damaged: once more
            # from zero.
            part.unlink(missing_ok=True)
            self._fetch(f, part, target)

    def _fetch(self, f: PackFile, part: Path, target: Path) -> None:
        assert f.repo is not None
        name = display_name(f)
        have = part.stat().st_size if part.is_file() else 0
        self._check_cancel()
        if f.size is not None and have == f.size:
            self._finish(f, part, target, have)
            return
        url = _hub_url(f.repo, f.filename or f.path, f.revision)
        headers = _hub_headers()
        if have:
            headers["Range"] = f"bytes={have}-"
        network_errors = _network_errors()
        try:
            with _open_stream(url, headers) as response:
                have, expected = self._start(f, part, response, have)
                mode = "ab" if have else "wb"
                with open(part, mode) as out:
                    self._report(have, name)
                    for chunk in response.chunks:
                        if not chunk:
                            continue
                        out.write(chunk)
                        have += len(chunk)
                        if f.size is not None and have > f.size:
                            break
                        self._report(have, name)
                        self._check_cancel()
                    out.flush()
                    os.fsync(out.fileno())
        except (CancelledError, DownloadError, ModelCorruptError, _RestartError):
            raise
        except network_errors as exc:
            raise self._fail(f, _network_reason(exc)) from exc
        except OSError as exc:
            raise DownloadError(
                f"Could not save {name} in {self.staging}: {exc.strerror or exc}."
                + (" The disk is full." if exc.errno == errno.ENOSPC else "")
            ) from exc
        if expected is not None and have < expected:
            raise self._fail(f, "the connection was interrupted")
        self._finish(f, part, target, have)

    def _start(
        self, f: PackFile, part: Path, response: _Response, have: int
    ) -> tuple[int, int | None]:
        """Check the status; returns (bytes kept from the .part, expected final size)."""
        status = response.status
        commit = response.headers.get("x-repo-commit", "")
        if re.fullmatch(r"[0-9a-f]{40}", commit):
            self.commits[f.path] = commit
        length = response.headers.get("content-length")
        body = int(length) if length and length.isdigit() else None
        if status == 416 and have:
            raise _RestartError("the server cannot continue the partial file")
        if status >= 400:
            raise self._fail(f, _http_reason(status))
        if status == 206:
            if _content_range_start(response.headers.get("content-range")) != have:
                raise _RestartError("the server resumed at the wrong place")
        elif status == 200:
            have = 0  # The server ignored the Range header: the whole file follows.
        else:
            raise self._fail(f, _http_reason(status))
        expected = None if body is None else have + body
        if f.size is None and expected is not None and f.path not in self._counted:
            self.total += expected
            self._counted.add(f.path)
        return have, expected

    def skip(self, f: PackFile, target: Path) -> None:
        """Count a file that is already in place (earlier attempt or current install)."""
        size = target.stat().st_size
        self.done += size
        if f.size is None:
            self.total += size
        self._report(0, display_name(f))

    def _finish(self, f: PackFile, part: Path, target: Path, size: int) -> None:
        digest = sha256_file(part)
        raise_if_corrupt(f, size, digest, part)
        os.replace(part, target)
        self.done += size
        if f.size is None and f.path not in self._counted:
            self.total += size
            self._counted.add(f.path)
        self._report(0, display_name(f))
