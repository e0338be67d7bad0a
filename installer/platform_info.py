"""What the installer scripts build for: the checkout, its version, this OS and CPU."""

from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

__all__ = ["EXE", "INSTALLER", "IS_MAC", "IS_WIN", "ROOT", "arch", "platform_name", "version"]

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"
IS_WIN, IS_MAC = sys.platform == "win32", sys.platform == "darwin"
EXE = ".exe" if IS_WIN else ""


def version() -> str:
    """The app's version, read from the checkout (the build may run without installing it)."""
    text = (ROOT / "instructir_desktop" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def arch() -> str:
    """This CPU's name as installer file names spell it: x86_64 or arm64."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def platform_name() -> str:
    """linux, macos or windows."""
    return "windows" if IS_WIN else "macos" if IS_MAC else "linux"
