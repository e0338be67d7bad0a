"""Project files (``.instructir``): a zip with a JSON manifest and the source photo's bytes.

The manifest holds a format version, the pack id and the layers (instruction, strength,
visibility); the photo is stored byte for byte as it was opened, so reopening a project
decodes the same pixels and renders the same composite. Saving is atomic.
"""

from __future__ import annotations

import json
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from instructir_desktop import __version__
from instructir_desktop.core.atomic import atomic_write_bytes
from instructir_desktop.core.errors import InstructIRError

from .document import Layer

__all__ = [
    "PROJECT_SUFFIX",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ProjectError",
    "ProjectData",
    "save_project",
    "load_project",
    "is_project",
]

PROJECT_SUFFIX = ".instructir"
FORMAT_NAME = "instructir-project"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 << 20


class ProjectError(InstructIRError):
    """A project file cannot be read or written; the message says why, for the user."""


@dataclass
class ProjectData:
    """What a project holds."""

    source_bytes: bytes
    source_name: str
    layers: list[Layer]
    pack: str = ""
    extra: dict = field(default_factory=dict)


def is_project(path: str | Path) -> bool:
    return Path(path).suffix.lower() == PROJECT_SUFFIX


def _source_member(name: str) -> str:
    # Only the base name, so a crafted name cannot point outside "source/".
    base = PurePosixPath(name.replace("\\", "/")).name or "photo"
    return f"source/{base}"


def encode_project(data: ProjectData) -> bytes:
    """The project as zip bytes (for tests and autosave)."""
    import io

    member = _source_member(data.source_name)
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "app_version": __version__,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pack": data.pack,
        "source": {"name": data.source_name, "file": member, "size": len(data.source_bytes)},
        "layers": [layer.to_dict() for layer in data.layers],
        **({"extra": data.extra} if data.extra else {}),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        # mimetype first and stored, like ODF, so tools can sniff the file type.
        zf.writestr("mimetype", "application/x-instructir-project", zipfile.ZIP_STORED)
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
        # Photos are already compressed; storing them keeps saving fast.
        zf.writestr(member, data.source_bytes, zipfile.ZIP_STORED)
    return out.getvalue()


def save_project(data: ProjectData, path: str | Path) -> Path:
    """Write atomically: a temp file in the same folder, flushed, then renamed over."""
    target = Path(path).absolute()
    if target.suffix.lower() != PROJECT_SUFFIX:
        target = target.with_name(target.name + PROJECT_SUFFIX)
    payload = encode_project(data)
    try:
        # Readable by this user alone: a project (and an autosave) holds the whole photo.
        atomic_write_bytes(target, payload, mode=0o600)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ProjectError(f"The project '{target.name}' could not be saved: {reason}.") from exc
    return target


def load_project(path: str | Path) -> ProjectData:
    """Read and check a project file; raises ProjectError with a message for the user."""
    path = Path(path)
    name = path.name
    damaged = f"The project '{name}' is damaged and cannot be opened"
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(MANIFEST)
            if info.file_size > MAX_MANIFEST_BYTES:
                raise ProjectError(f"{damaged} (its description is too large).")
            manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise ProjectError(f"'{name}' is not an InstructIR project.")
            version = manifest.get("version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ProjectError(
                    f"'{name}' was saved by a newer InstructIR (project format {version}); "
                    "update the app to open it."
                )
            source = manifest["source"]
            source_bytes = zf.read(_source_member(str(source["file"])))
            layers = [Layer.from_dict(d) for d in manifest.get("layers", [])]
    except FileNotFoundError as exc:
        raise ProjectError(f"The project '{name}' was not found.") from exc
    except PermissionError as exc:
        raise ProjectError(f"The project '{name}' cannot be read (permission denied).") from exc
    except ProjectError:
        raise
    except zipfile.BadZipFile as exc:
        raise ProjectError(f"{damaged} (it is not a valid project archive).") from exc
    except KeyError as exc:
        raise ProjectError(f"{damaged} (missing {exc.args[0]}).") from exc
    except (ValueError, TypeError, UnicodeDecodeError, zipfile.LargeZipFile) as exc:
        raise ProjectError(f"{damaged} ({exc}).") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise ProjectError(f"{damaged} ({exc}).") from exc
    ids = [layer.id for layer in layers]
    if len(set(ids)) != len(ids):
        raise ProjectError(f"{damaged} (two layers share an id).")
    return ProjectData(
        source_bytes=source_bytes,
        source_name=str(source.get("name") or PurePosixPath(str(source["file"])).name),
        layers=layers,
        pack=str(manifest.get("pack", "")),
        extra=dict(manifest.get("extra", {})),
    )
