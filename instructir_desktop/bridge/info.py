"""``bridge.json``: where a running bridge is, its token and how to start one.

Written by the bridge (mode 0600, atomically) and read by the GIMP plug-in and
``instructir gimp install``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from instructir_desktop.core.paths import config_dir

__all__ = [
    "API_VERSION",
    "BRIDGE_FILE_NAME",
    "DEFAULT_PORT",
    "bridge_file",
    "read_bridge_info",
    "write_bridge_info",
    "token_from",
    "bridge_command",
]

API_VERSION = 1
DEFAULT_PORT = 47841
BRIDGE_FILE_NAME = "bridge.json"


def bridge_file() -> Path:
    """Where the token, port and start command live: ``config_dir()/bridge.json``."""
    return config_dir() / BRIDGE_FILE_NAME


def read_bridge_info(path: Path | None = None) -> dict | None:
    """The bridge file's content, or None when it is missing or unreadable."""
    try:
        info = json.loads(Path(path or bridge_file()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def write_bridge_info(info: dict, path: Path | None = None) -> Path:
    """Write the bridge file atomically, readable by this user alone (it holds the token)."""
    target = Path(path or bridge_file())
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".bridge-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.chmod(tmp, 0o600)
            json.dump(info, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def token_from(info: dict | None) -> str | None:
    """The token recorded in a bridge file, when it looks like one we made."""
    token = info.get("token") if info else None
    ok = isinstance(token, str) and len(token) >= 32 and token.replace("-", "").replace("_", "")
    return token if ok and token.replace("-", "").replace("_", "").isalnum() else None


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
