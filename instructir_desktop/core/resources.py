"""The one resource locator: finds resources/ in a source checkout and in a frozen bundle."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["resources_root", "resource_path"]

ENV_VAR = "INSTRUCTIR_RESOURCES"


def resources_root() -> Path:
    """Folder holding icons, the bundled model pack, the sample photo and the prompt corpus.

    Order: $INSTRUCTIR_RESOURCES, the PyInstaller bundle (sys._MEIPASS), the source checkout,
    then ``<prefix>/share/instructir-desktop/resources`` for system installs.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    checkout = Path(__file__).resolve().parents[2] / "resources"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "instructir-desktop" / "resources"


def resource_path(*parts: str) -> Path:
    return resources_root().joinpath(*parts)
