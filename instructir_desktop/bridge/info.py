"""``bridge.json``: where a running bridge is, its token and how to start one.

Written by the bridge (mode 0600, atomically) and read by the GIMP plug-in and
``instructir gimp install``. A bridge that crashed cannot clear its ``running`` flag, so
readers trust the flag only while the recorded process is alive, and a starting bridge
rewrites the file.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from instructir_desktop.core.atomic import atomic_write_text
from instructir_desktop.core.paths import config_dir

__all__ = [
    "API_VERSION",
    "BRIDGE_FILE_NAME",
    "DEFAULT_PORT",
    "bridge_file",
    "read_bridge_info",
    "write_bridge_info",
    "token_from",
    "new_token",
    "pid_alive",
    "bridge_command",
]

API_VERSION = 1
DEFAULT_PORT = 47841
BRIDGE_FILE_NAME = "bridge.json"


def bridge_file() -> Path:
    """Where the token, port and start command live: ``config_dir()/bridge.json``."""
    return config_dir() / BRIDGE_FILE_NAME


def read_bridge_info(path: Path | None = None) -> dict | None:
    """The bridge file's content, or None when it is missing or unreadable. ``running`` is
    false when the recorded process is gone (a bridge that crashed or was killed)."""
    try:
        info = json.loads(Path(path or bridge_file()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    if info.get("running"):
        pid = info.get("pid")
        if not (isinstance(pid, int) and not isinstance(pid, bool) and pid_alive(pid)):
            info.update(running=False, pid=None)
    return info


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return False
    return True


def _windows_pid_alive(pid: int) -> bool:
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def write_bridge_info(info: dict, path: Path | None = None) -> Path:
    """Write the bridge file atomically, readable by this user alone (it holds the token)."""
    target = Path(path or bridge_file())
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(target, json.dumps(info, indent=2), mode=0o600)
    return target


def token_from(info: dict | None) -> str | None:
    """The token recorded in a bridge file, when it looks like one we made."""
    token = info.get("token") if info else None
    ok = isinstance(token, str) and len(token) >= 32 and token.replace("-", "").replace("_", "")
    return token if ok and token.replace("-", "").replace("_", "").isalnum() else None


def new_token() -> str:
    """A fresh bridge token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def bridge_command() -> list[str]:
    """The command that starts ``instructir`` (the plug-in appends ``serve --port N``)."""
    exe_names = ("instructir.exe", "instructir") if os.name == "nt" else ("instructir",)
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.stem == "instructir" and argv0.suffix in ("", ".exe"):
        if argv0.is_file():
            return [str(argv0.resolve())]
    candidates = []
    if getattr(sys, "frozen", False):
        candidates.append(Path(sys.executable).parent)
    if argv0 is not None:
        candidates.append(argv0.absolute().parent)  # instructir-desktop sits beside instructir
    for folder in candidates:
        for name in exe_names:
            if (folder / name).is_file():
                return [str((folder / name).resolve())]
    found = shutil.which("instructir")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "instructir_desktop.cli"]
