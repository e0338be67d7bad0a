"""Per-user folders (platformdirs), each overridable by an environment variable.

Tests and portable installs set INSTRUCTIR_DATA_DIR, INSTRUCTIR_CACHE_DIR and
INSTRUCTIR_CONFIG_DIR. Nothing is created here; callers create folders when they write.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["APP_NAME", "data_dir", "cache_dir", "config_dir"]

APP_NAME = "InstructIR"
DATA_ENV = "INSTRUCTIR_DATA_DIR"
CACHE_ENV = "INSTRUCTIR_CACHE_DIR"
CONFIG_ENV = "INSTRUCTIR_CONFIG_DIR"


def _folder(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, APP_NAME))


def data_dir() -> Path:
    """Installed model packs, autosaves."""
    return _folder(DATA_ENV, "data")


def cache_dir() -> Path:
    """Converted OpenVINO models and other things that can be rebuilt."""
    return _folder(CACHE_ENV, "cache")


def config_dir() -> Path:
    """Settings and the bridge token."""
    return _folder(CONFIG_ENV, "config")
