"""The one resource locator: finds shipped files in a source checkout and in a frozen bundle.

Everything the app ships besides code lives under one root: ``resources/`` (icons, the bundled
model pack, the sample photo, the prompt corpus) and ``plugins/`` (the GIMP plug-in).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["bundle_root", "resources_root", "resource_path", "plugin_path"]

ENV_VAR = "INSTRUCTIR_RESOURCES"


def bundle_root() -> Path:
    """The folder holding ``resources/`` and ``plugins/``.

    Order: the PyInstaller bundle (sys._MEIPASS), the source checkout, then
    ``<prefix>/share/instructir-desktop`` for system installs.
    """
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "resources").is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "instructir-desktop"


def resources_root() -> Path:
    """``resources/`` under the bundle root; $INSTRUCTIR_RESOURCES overrides it."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    return bundle_root() / "resources"


def resource_path(*parts: str) -> Path:
    return resources_root().joinpath(*parts)


def plugin_path(*parts: str) -> Path:
    """Files of the plug-ins shipped with the app, e.g. ``plugin_path("gimp", "instructir")``."""
    return bundle_root().joinpath("plugins", *parts)
