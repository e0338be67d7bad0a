"""``instructir gimp install|uninstall``: put the GIMP 3 plug-in where GIMP looks for it.

GIMP 3 loads ``plug-ins/<name>/<name>.py`` from each user config folder
(``<config>/GIMP/3.x/plug-ins``). We copy the plug-in into every GIMP 3 folder found
(native, Flatpak, Snap), set the executable bit, and record where the bridge is: the token,
port and the command that starts ``instructir serve`` go to ``config_dir()/bridge.json``, and
a copy goes beside the plug-in, because a sandboxed GIMP may not see the user's config folder.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from instructir_desktop.bridge.info import (
    API_VERSION,
    DEFAULT_PORT,
    bridge_command,
    bridge_file,
    read_bridge_info,
    token_from,
    write_bridge_info,
)
from instructir_desktop.bridge.info import (
    new_token as fresh_token,
)
from instructir_desktop.core.errors import InstructIRError

__all__ = [
    "PLUGIN_NAME",
    "GimpNotFoundError",
    "plugin_source",
    "gimp_config_roots",
    "plugin_folders",
    "install",
    "uninstall",
    "bridge_is_running",
]

PLUGIN_NAME = "instructir"
PLUGIN_FILES = (
    "instructir.py",
    "instructir_bridge_info.py",
    "instructir_client.py",
    "instructir_dialog.py",
    "instructir_png.py",
    "instructir_words.py",
)
LOCATION_FILE = "bridge-location.json"
LAST_FILE = "last-instruction.json"
SOURCE_ENV = "INSTRUCTIR_GIMP_PLUGIN_DIR"
_VERSION_DIR = re.compile(r"^3\.\d+$")


class GimpNotFoundError(InstructIRError):
    """No GIMP 3 configuration folder exists for this user."""


def plugin_source() -> Path:
    """The plug-in folder shipped with the app: $INSTRUCTIR_GIMP_PLUGIN_DIR, else where the
    core resource locator finds it (frozen bundle, source checkout or system install)."""
    from .core.resources import plugin_path

    candidates = []
    if os.environ.get(SOURCE_ENV):
        candidates.append(Path(os.environ[SOURCE_ENV]))
    candidates.append(plugin_path("gimp", PLUGIN_NAME))
    for folder in candidates:
        if all((folder / name).is_file() for name in PLUGIN_FILES):
            return folder
    raise InstructIRError(
        "The GIMP plug-in files are missing from this installation of InstructIR "
        f"(looked in {', '.join(str(c) for c in candidates)}); reinstall the app."
    )


def gimp_config_roots(
    env: Mapping[str, str] | None = None, platform: str | None = None
) -> list[Path]:
    """Folders that hold GIMP's per-version config folders (``.../GIMP``), existing or not."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        appdata = env.get("APPDATA") or str(home / "AppData" / "Roaming")
        return [Path(appdata) / "GIMP"]
    if platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        xdg / "GIMP",
        home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP",  # Flatpak
        home / "snap" / "gimp" / "current" / ".config" / "GIMP",  # Snap
    ]


def plugin_folders(
    env: Mapping[str, str] | None = None, platform: str | None = None, *, create: bool = False
) -> list[Path]:
    """Every ``GIMP/3.x/plug-ins`` folder of this user; with ``create``, a missing plug-ins
    folder inside an existing 3.x config folder is created. A GIMP root without any 3.x folder
    is left alone: creating one would stop GIMP 3 from importing the user's 2.10 settings."""
    folders = []
    for root in gimp_config_roots(env, platform):
        try:
            versions = sorted(
                (d for d in root.iterdir() if d.is_dir() and _VERSION_DIR.match(d.name)),
                key=lambda d: tuple(int(n) for n in d.name.split(".")),
            )
        except OSError:
            continue
        for version in versions:
            plugins = version / "plug-ins"
            if create and not plugins.is_dir():
                plugins.mkdir(parents=True, exist_ok=True)
            if plugins.is_dir():
                folders.append(plugins)
    return folders


def _record_bridge(rotate: bool = False) -> dict:
    """Make sure bridge.json has a token (a new one with ``rotate``), a port and the command
    that starts the bridge."""
    path = bridge_file()
    info = read_bridge_info(path) or {}
    port = info.get("port") if isinstance(info.get("port"), int) else DEFAULT_PORT
    info.update(
        api=API_VERSION,
        token=(None if rotate else token_from(info)) or fresh_token(),
        port=port,
        url=info.get("url") or f"http://127.0.0.1:{port}",
        command=bridge_command(),
    )
    info.setdefault("running", False)
    write_bridge_info(info, path)
    return {
        "config_file": str(path.resolve()),
        "token": info["token"],
        "port": port,
        "url": info["url"],
        "command": info["command"],
    }


def _copy_plugin(source: Path, plugins: Path, location: dict) -> Path:
    """Copy into a temp folder beside the target, then swap it in (no half-copied plug-in)."""
    target = plugins / PLUGIN_NAME
    staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_NAME}-", dir=plugins))
    try:
        for name in PLUGIN_FILES:
            shutil.copyfile(source / name, staging / name)
        entry = staging / f"{PLUGIN_NAME}.py"
        entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | 0o644)
        for name in PLUGIN_FILES[1:]:
            (staging / name).chmod(0o644)
        write_bridge_info(location, staging / LOCATION_FILE)
        if (target / LAST_FILE).is_file():  # the last instruction survives an update
            shutil.copyfile(target / LAST_FILE, staging / LAST_FILE)
        staging.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def install(
    *,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    new_token: bool = False,
) -> list[Path]:
    """Copy the plug-in into every GIMP 3 plug-ins folder; returns the installed folders.

    ``new_token`` replaces the bridge token (in bridge.json and beside each plug-in); a bridge
    that is running keeps the old one until it restarts."""
    source = plugin_source()
    folders = plugin_folders(env, platform, create=True)
    if not folders:
        looked = ", ".join(str(r) for r in gimp_config_roots(env, platform))
        raise GimpNotFoundError(
            "No GIMP 3 settings folder was found (looked in " + looked + "). Start GIMP 3 once "
            "so it creates its settings, then run `instructir gimp install` again."
        )
    location = _record_bridge(rotate=new_token)
    return [_copy_plugin(source, folder, location) for folder in folders]


def uninstall(*, env: Mapping[str, str] | None = None, platform: str | None = None) -> list[Path]:
    """Remove the plug-in from every GIMP 3 plug-ins folder; returns the removed folders.

    bridge.json stays: InstructIR Desktop keeps using it for its own bridge."""
    removed = []
    for folder in plugin_folders(env, platform):
        target = folder / PLUGIN_NAME
        if (target / f"{PLUGIN_NAME}.py").is_file():
            shutil.rmtree(target)
            removed.append(target)
    return removed


def bridge_is_running() -> bool:
    """True while the process recorded in bridge.json as a running bridge is alive."""
    info = read_bridge_info(bridge_file())
    return bool(info and info.get("running"))
