"""Project files (``.instructir``): a zip with a JSON manifest and the source photo's bytes.

The manifest holds a format version, the pack id and the layers (instruction, strength,
visibility, and the name of the layer's mask: a 16-bit greyscale PNG under ``masks/``, so a
mask reopens sample for sample); the photo is stored byte for byte as it was opened, so
reopening a project decodes the same pixels and renders the same composite. Saving is atomic.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from instructir_desktop import __version__
from instructir_desktop.core.atomic import atomic_write_bytes
from instructir_desktop.core.errors import InstructIRError
from instructir_desktop.core.masks import mask_from_png
from instructir_desktop.core.memory import MEMORY_BUDGET_ENV, memory_budget, photo_file_budget
from instructir_desktop.core.recipe import mask_png

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
MAX_LAYERS = 10_000
MAX_EXTRA_DEPTH = 16
_CHUNK = 1 << 20
_LAYER_FIELDS = {
    "id": str,
    "strength": (int, float),
    "visible": bool,
    "task": str,
    "confidence": (int, float),
    "adjust": (int, float),
    "mask": str,
}
MAX_MASK_BYTES = 1 << 30
_EXTRA_TEXT = ("title", "project_path")


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
        "layers": [_layer_entry(i, layer) for i, layer in enumerate(data.layers, 1)],
        **({"extra": data.extra} if data.extra else {}),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        # mimetype first and stored, like ODF, so tools can sniff the file type.
        zf.writestr("mimetype", "application/x-instructir-project", zipfile.ZIP_STORED)
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
        # Photos are already compressed; storing them keeps saving fast.
        zf.writestr(member, data.source_bytes, zipfile.ZIP_STORED)
        for i, layer in enumerate(data.layers, 1):
            if layer.mask is not None:  # 16-bit PNG: lossless for the uint16 mask
                zf.writestr(_mask_member(i), mask_png(layer.mask), zipfile.ZIP_STORED)
    return out.getvalue()


def _mask_member(index: int) -> str:
    return f"masks/layer-{index}.png"


def _layer_entry(index: int, layer: Layer) -> dict:
    """A layer's manifest entry; ``mask`` names its PNG inside the project (or is null)."""
    return {**layer.to_dict(), "mask": None if layer.mask is None else _mask_member(index)}


def save_project(data: ProjectData, path: str | Path) -> Path:
    """Write atomically: a temp file in the same folder, flushed, then renamed over."""
    target = Path(path).absolute()
    if target.suffix.lower() != PROJECT_SUFFIX:
        target = target.with_name(target.name + PROJECT_SUFFIX)
    payload = encode_project(data)
    try:
        # A new project is readable by this user alone (it holds the whole photo); saving
        # over an existing one keeps the mode its owner gave it.
        atomic_write_bytes(target, payload, mode=None if target.exists() else 0o600)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ProjectError(f"The project '{target.name}' could not be saved: {reason}.") from exc
    return target


def load_project(path: str | Path) -> ProjectData:
    """Read and check a project file; raises ProjectError with a message for the user.

    Nothing in the file is trusted: the layer list and ``extra`` are type-checked, and the
    photo entry is inflated in chunks, refused as soon as it grows past its declared size or
    the memory budget (``core.memory``), whatever its zip header says.
    """
    path = Path(path)
    name = path.name
    damaged = f"The project '{name}' is damaged and cannot be opened"
    try:
        with zipfile.ZipFile(path) as zf:
            too_big = f"{damaged} (its description is too large)."
            raw = _read_member(zf, MANIFEST, MAX_MANIFEST_BYTES, too_big)
            try:
                manifest = json.loads(raw.decode("utf-8"))
            except RecursionError as exc:
                raise ProjectError(f"{damaged} (its description is nested too deeply).") from exc
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise ProjectError(f"'{name}' is not an InstructIR project.")
            version = manifest.get("version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ProjectError(
                    f"'{name}' was saved by a newer InstructIR (project format {version}); "
                    "update the app to open it."
                )
            source = manifest.get("source")
            if not isinstance(source, dict) or not isinstance(source.get("file"), str):
                raise ProjectError(f"{damaged} (the photo entry is missing or malformed).")
            layers = _layers(manifest.get("layers", []), damaged)
            layers = _with_masks(zf, manifest["layers"], layers, damaged)
            extra = _extra(manifest.get("extra", {}), damaged)
            source_bytes = _read_photo(zf, source, name, damaged)
    except FileNotFoundError as exc:
        raise ProjectError(f"The project '{name}' was not found.") from exc
    except PermissionError as exc:
        raise ProjectError(f"The project '{name}' cannot be read (permission denied).") from exc
    except InstructIRError:  # ProjectError, or a memory budget set wrong
        raise
    except zipfile.BadZipFile as exc:
        raise ProjectError(f"{damaged} (it is not a valid project archive).") from exc
    except KeyError as exc:
        raise ProjectError(f"{damaged} (missing {exc.args[0]}).") from exc
    except (ValueError, TypeError, UnicodeDecodeError, zipfile.LargeZipFile) as exc:
        raise ProjectError(f"{damaged} ({exc}).") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise ProjectError(f"{damaged} ({exc}).") from exc
    except MemoryError as exc:
        raise ProjectError(f"There is not enough memory to open the project '{name}'.") from exc
    ids = [layer.id for layer in layers]
    if len(set(ids)) != len(ids):
        raise ProjectError(f"{damaged} (two layers share an id).")
    shown, pack = source.get("name"), manifest.get("pack")
    return ProjectData(
        source_bytes=source_bytes,
        source_name=shown
        if isinstance(shown, str) and shown
        else PurePosixPath(source["file"]).name,
        layers=layers,
        pack=pack if isinstance(pack, str) else "",
        extra=extra,
    )


def _layers(raw: object, damaged: str) -> list[Layer]:
    """The layer list, each entry a mapping with the fields a layer needs, of their types."""
    if not isinstance(raw, list) or len(raw) > MAX_LAYERS:
        raise ProjectError(f"{damaged} (its layer list is malformed).")
    layers = []
    for i, d in enumerate(raw, 1):
        if not isinstance(d, dict) or not isinstance(d.get("instruction"), str):
            raise ProjectError(f"{damaged} (layer {i} is malformed).")
        for key, types in _LAYER_FIELDS.items():
            if key in d and d[key] is not None and not isinstance(d[key], types):
                raise ProjectError(f"{damaged} (layer {i} has a malformed {key}).")
        try:
            layers.append(Layer.from_dict(d))
        except (ValueError, TypeError, OverflowError) as exc:
            raise ProjectError(f"{damaged} (layer {i}: {exc}).") from exc
    return layers


def _with_masks(zf: zipfile.ZipFile, raw: list, layers: list[Layer], damaged: str) -> list:
    """The layers with the masks their entries name, read from the project's PNGs."""
    out = []
    for i, (d, layer) in enumerate(zip(raw, layers), 1):
        member = d.get("mask")
        if member is not None:
            data = _read_member(zf, member, MAX_MASK_BYTES, f"{damaged} (a mask is too large).")
            try:
                plane = mask_from_png(data, member)
            except InstructIRError as exc:
                raise ProjectError(f"{damaged} (layer {i}'s mask: {exc})") from exc
            layer = dataclasses.replace(layer, mask=plane)
        out.append(layer)
    return out


def _extra(raw: object, damaged: str) -> dict:
    """``extra`` (the app's own notes: title, project path...): a mapping of plain values."""
    if not isinstance(raw, dict) or _depth(raw) > MAX_EXTRA_DEPTH:
        raise ProjectError(f"{damaged} (its extra information is malformed).")
    for key in _EXTRA_TEXT:
        if key in raw and not isinstance(raw[key], str):
            raise ProjectError(f"{damaged} (its {key.replace('_', ' ')} is not text).")
    return dict(raw)


def _depth(value: object, limit: int = MAX_EXTRA_DEPTH + 1) -> int:
    """Nesting depth of JSON data, counted no further than ``limit`` (no recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return level
        deepest = max(deepest, level)
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _read_photo(zf: zipfile.ZipFile, source: dict, name: str, damaged: str) -> bytes:
    """The photo's bytes, no larger than the size the manifest declares nor the budget."""
    member = _source_member(source["file"])
    budget = memory_budget()
    declared = source.get("size")
    if not isinstance(declared, int) or isinstance(declared, bool) or declared < 0:
        raise ProjectError(f"{damaged} (the photo's size is missing or malformed).")
    if declared > photo_file_budget(budget):
        raise ProjectError(
            f"The project '{name}' cannot be opened: its photo file takes "
            f"{_gb(declared)}, more than the memory budget of {_gb(budget)} allows "
            f"(photo files up to {_gb(photo_file_budget(budget))}; {MEMORY_BUDGET_ENV} sets "
            "the budget)."
        )
    return _read_member(zf, member, declared, f"{damaged} (its photo is larger than declared).")


def _gb(n: int) -> str:
    return f"{n / (1 << 30):.2f} GB"


def _read_member(zf: zipfile.ZipFile, member: str, limit: int, too_big: str) -> bytes:
    """Inflate ``member`` in chunks, refused (``too_big``) once it passes ``limit`` bytes:
    the zip header's size is checked first but not trusted."""
    info = zf.getinfo(member)
    if info.file_size > limit:
        raise ProjectError(too_big)
    chunks = []
    total = 0
    with zf.open(info) as fh:
        while chunk := fh.read(min(_CHUNK, limit + 1 - total)):
            total += len(chunk)
            if total > limit:
                raise ProjectError(too_big)
            chunks.append(chunk)
    return b"".join(chunks)
