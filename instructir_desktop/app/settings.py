"""Application settings, declared once (name, default, type, description) and validated on load.

Values live in an INI file under ``config_dir()`` through QSettings, so tests that point
INSTRUCTIR_CONFIG_DIR at a temp folder never touch the user's settings. A value that fails
validation (hand-edited file, older version) falls back to its default instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

from instructir_desktop.core.packs import DEFAULT_MIN_CONFIDENCE
from instructir_desktop.core.paths import config_dir

__all__ = ["Setting", "SETTINGS", "Settings", "settings_file"]


@dataclass(frozen=True)
class Setting:
    """One declared setting. ``choices`` restricts str values; ``minimum``/``maximum`` numbers.

    How Preferences shows it: ``label`` (plain words), ``unit`` after the number (" px"),
    ``special`` instead of the minimum ("Automatic" for a tile size of 0), ``percent`` for a
    0..1 fraction shown as 0..100 %, ``choice_labels`` for the choices' display names.
    """

    name: str
    default: Any
    type: type
    description: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    user_visible: bool = True
    label: str = ""
    unit: str = ""
    special: str = ""
    percent: bool = False
    choice_labels: tuple[str, ...] | None = None

    @property
    def title(self) -> str:
        """The label shown to the user."""
        return self.label or self.name.replace("_", " ").capitalize()

    def validate(self, value: Any) -> Any:
        """Coerce ``value`` to this setting's type; raise ValueError when it is not valid."""
        if self.type is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError(f"{self.name}: '{value}' is not true/false")
            return bool(value)
        if self.type in (int, float):
            number = self.type(value)
            if self.minimum is not None and number < self.minimum:
                raise ValueError(f"{self.name}: {number} is below {self.minimum}")
            if self.maximum is not None and number > self.maximum:
                raise ValueError(f"{self.name}: {number} is above {self.maximum}")
            return number
        if self.type is str:
            text = str(value)
            if self.choices is not None and text not in self.choices:
                raise ValueError(f"{self.name}: '{text}' is not one of {', '.join(self.choices)}")
            return text
        if self.type is list:
            if value is None or value == "":
                return []
            if isinstance(value, str):
                return [value]
            return [str(v) for v in value]
        if self.type is bytes:
            if isinstance(value, QByteArray):
                return bytes(value.data())
            if isinstance(value, (bytes, bytearray)):
                return bytes(value)
            raise ValueError(f"{self.name}: expected bytes")
        raise ValueError(f"{self.name}: unsupported type {self.type}")


_DECLARED = (
    Setting(
        "theme",
        "dark",
        str,
        "Colour theme of the window.",
        ("dark", "light", "auto"),
        label="Theme",
        choice_labels=("Dark", "Light", "As the system"),
    ),
    Setting(
        "device",
        "auto",
        str,
        "Where the model runs: auto picks CUDA, then Apple MPS, then the CPU.",
        ("auto", "cpu", "cuda", "mps"),
        label="Run the model on",
        choice_labels=("Automatic", "CPU", "NVIDIA GPU (CUDA)", "Apple GPU (Metal)"),
    ),
    Setting(
        "backend",
        "auto",
        str,
        "Inference engine: auto uses OpenVINO on CPUs when it is installed (fastest), else torch.",
        ("auto", "torch", "openvino"),
        label="Inference engine",
        choice_labels=("Automatic", "PyTorch", "OpenVINO"),
    ),
    Setting(
        "pack",
        "",
        str,
        "Model pack id to use; empty means the official pack if installed, else the bundled one.",
        user_visible=False,
    ),
    Setting(
        "bridge_enabled",
        True,
        bool,
        "Allow GIMP to use InstructIR (local bridge on 127.0.0.1, protected by a per-user token).",
    ),
    Setting(
        "min_confidence",
        DEFAULT_MIN_CONFIDENCE,
        float,
        "Below this intent confidence the chat offers the seven tasks instead of guessing.",
        minimum=0.0,
        maximum=1.0,
        label="Ask me when the model is less sure than",
        percent=True,
    ),
    Setting(
        "split_messages",
        True,
        bool,
        'Split a message that asks for several fixes ("too dark and grainy") into one layer '
        "per fix, in the order written.",
    ),
    Setting(
        "reassess_layers",
        False,
        bool,
        "After each new layer, look at the photo again and say what is still worth fixing "
        '("the noise is gone; it is still blurry").',
        label="Say what is still wrong after each fix",
    ),
    Setting(
        "preview_edge",
        1280,
        int,
        "Longest edge in pixels of the fast preview rendered before the full resolution.",
        minimum=64,
        maximum=8192,
        label="Quick preview size (longest edge)",
        unit=" px",
    ),
    Setting(
        "tile",
        0,
        int,
        "Tile size in pixels for the model (0 = chosen automatically for the device).",
        minimum=0,
        maximum=4096,
        label="Tile size",
        unit=" px",
        special="Automatic",
    ),
    Setting(
        "cache_mb",
        2048,
        int,
        "Memory kept for rendered layers so undo, redo and strength changes are instant.",
        minimum=64,
        maximum=65536,
        label="Memory for instant undo",
        unit=" MB",
    ),
    Setting(
        "autosave_seconds",
        60,
        int,
        "How often unsaved work is saved for recovery after a crash (0 = never).",
        minimum=0,
        maximum=3600,
        label="Save for crash recovery every",
        unit=" s",
        special="Never",
    ),
    Setting(
        "export_quality",
        95,
        int,
        "JPEG/WebP export quality.",
        minimum=1,
        maximum=100,
        label="JPEG and WebP quality",
    ),
    Setting(
        "export_bit_depth",
        0,
        int,
        "Export bit depth (0 = as the source).",
        minimum=0,
        maximum=16,
        user_visible=False,
    ),
    Setting("recent_files", [], list, "Recently opened photos and projects.", user_visible=False),
    Setting("recent_recipes", [], list, "Recently saved or used recipes.", user_visible=False),
    Setting("last_folder", "", str, "Folder of the last open/save dialog.", user_visible=False),
    Setting("window_geometry", b"", bytes, "Main window geometry.", user_visible=False),
    Setting("window_state", b"", bytes, "Dock and toolbar layout.", user_visible=False),
)
SETTINGS: dict[str, Setting] = {s.name: s for s in _DECLARED}
MAX_RECENT = 10


def settings_file() -> Path:
    """The INI file holding the settings."""
    return config_dir() / "settings.ini"


class Settings(QObject):
    """Typed access to the declared settings; emits ``changed(name, value)`` on every change."""

    changed = Signal(str, object)

    def __init__(self, path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path) if path is not None else settings_file()
        self._store = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._values: dict[str, Any] = {}
        self.problems: list[str] = []
        for setting in SETTINGS.values():
            self._values[setting.name] = self._load(setting)

    def _load(self, setting: Setting) -> Any:
        if not self._store.contains(setting.name):
            return _copy(setting.default)
        raw = self._store.value(setting.name)
        try:
            return setting.validate(raw)
        except (TypeError, ValueError) as exc:
            # A bad value (hand edit, older version) must not stop the app from starting.
            self.problems.append(str(exc))
            return _copy(setting.default)

    def get(self, name: str) -> Any:
        """The current value of a declared setting."""
        return _copy(self._values[_declared(name).name])

    def set(self, name: str, value: Any) -> None:
        """Validate, store and announce a new value (ValueError when it is not valid)."""
        setting = _declared(name)
        value = setting.validate(value)
        if self._values.get(name) == value:
            return
        self._values[name] = value
        self._store.setValue(name, QByteArray(value) if setting.type is bytes else value)
        self.changed.emit(name, _copy(value))

    def reset(self, name: str) -> None:
        """Return one setting to its default."""
        self.set(name, SETTINGS[name].default)

    def add_recent(self, path: Path) -> None:
        """Put a file at the top of the recent-files list."""
        entry = str(Path(path).absolute())
        recent = [p for p in self.get("recent_files") if p != entry]
        self.set("recent_files", [entry, *recent][:MAX_RECENT])

    def sync(self) -> None:
        """Write pending changes to disk now."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._store.sync()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in SETTINGS:
            raise AttributeError(name)
        return self.get(name)


def _declared(name: str) -> Setting:
    if name not in SETTINGS:
        raise KeyError(f"Unknown setting '{name}'")
    return SETTINGS[name]


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
