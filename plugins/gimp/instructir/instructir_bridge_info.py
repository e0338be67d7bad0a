"""Where the InstructIR bridge is, for the plug-in: its address, token and start command,
read from the app's ``bridge.json`` or from the copy kept beside the plug-in. GIMP's own
Python, stdlib only; see ``instructir_client.py``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PORT",
    "LOCATION_FILE",
    "BridgeInfo",
    "default_config_dir",
    "find_bridge_info",
    "port_of",
]

DEFAULT_PORT = 47841
LOCATION_FILE = "bridge-location.json"
APP_NAME = "InstructIR"


def port_of(url: str) -> int:
    """The port of a bridge URL ("http://127.0.0.1:47841"), else the default one."""
    try:
        return int(url.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return DEFAULT_PORT


class BridgeInfo:
    """Where the bridge listens, its token and the command that starts it."""

    def __init__(self, url: str, token: str, command: list[str] | None, source: Path) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.command = command
        self.source = source

    @property
    def port(self) -> int:
        return port_of(self.url)

    def __repr__(self) -> str:
        return f"BridgeInfo({self.url!r}, source={str(self.source)!r})"


def default_config_dir(env: dict | None = None, platform: str | None = None) -> Path:
    """The app's config folder as platformdirs computes it (the plug-in cannot import it)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if env.get("INSTRUCTIR_CONFIG_DIR"):
        return Path(env["INSTRUCTIR_CONFIG_DIR"]).expanduser()
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(local) / APP_NAME / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / APP_NAME


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_bridge_info(plugin_dir: Path, env: dict | None = None) -> BridgeInfo | None:
    """Read the bridge file: $INSTRUCTIR_CONFIG_DIR, then the path recorded at install, then
    the platform's config folder, then the copy kept beside the plug-in (Snap/Flatpak GIMP
    may not see the user's config folder)."""
    env = os.environ if env is None else env
    location = _read_json(plugin_dir / LOCATION_FILE) or {}
    candidates = []
    if env.get("INSTRUCTIR_CONFIG_DIR"):
        candidates.append(Path(env["INSTRUCTIR_CONFIG_DIR"]).expanduser() / "bridge.json")
    if isinstance(location.get("config_file"), str):
        candidates.append(Path(location["config_file"]))
    candidates.append(default_config_dir(env) / "bridge.json")
    for path in candidates:
        info = _read_json(path)
        if info and isinstance(info.get("token"), str):
            return _info_from(info, path, fallback_command=location.get("command"))
    if isinstance(location.get("token"), str):
        return _info_from(location, plugin_dir / LOCATION_FILE, None)
    return None


def _info_from(data: dict, source: Path, fallback_command: Any) -> BridgeInfo:
    port = data.get("port") if isinstance(data.get("port"), int) else DEFAULT_PORT
    url = data.get("url") if isinstance(data.get("url"), str) else f"http://127.0.0.1:{port}"
    command = data.get("command") or fallback_command
    if not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
        command = None
    return BridgeInfo(url, data["token"], command, source)
