"""File work done on the I/O thread: decode a photo or project, prepare its levels, export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from instructir_desktop.core.images import (
    SUPPORTED_EXTENSIONS,
    Photo,
    format_for_path,
    load_image_bytes,
    save_image,
)
from instructir_desktop.core.tiling import QUICK_EDGE

from .display import screen_transform
from .document import Layer, Source
from .project import ProjectData, ProjectError, is_project, load_project
from .render import Level
from .stack import Pyramid, build_pyramid, level_fingerprint, preview_size, resize_rgb

__all__ = ["Opened", "open_file", "open_bytes", "prepare", "export_photo", "export_target"]

# Longest edge of the first, smallest render of an instruction: a result within a fraction of
# a second. 496 px plus the engine's 8 px of mirrored border on each side is one 512-px tile;
# the engine runs it in a standard tile shape where that saves a compile (core/tiling.py).
FIRST_EDGE = QUICK_EDGE
# A first level is only worth its render when the next level is this much larger.
FIRST_GAIN = 1.5

# What an export without a known extension gets, per format.
FORMAT_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}


@dataclass
class Opened:
    """Everything the GUI thread needs to show a newly opened photo or project."""

    source: Source
    levels: list[Level]
    pyramid: Pyramid
    layers: list[Layer]
    project_path: Path | None
    pack: str = ""
    extra: dict | None = None


def prepare(source: Source, preview_edge: int) -> tuple[list[Level], Pyramid]:
    """The levels, smallest first: ``first`` (FIRST_EDGE, when the next level is FIRST_GAIN
    times larger), ``preview`` (when the photo is bigger than ``preview_edge``) and ``full``;
    and the source pyramid."""
    photo = source.photo
    full = Level(
        "full", photo.pixels, level_fingerprint(source.fingerprint, (photo.height, photo.width))
    )
    levels = [full]
    for name, edge in (("preview", preview_edge), ("first", FIRST_EDGE)):
        next_edge = max(levels[0].size)
        if name == "first" and next_edge < FIRST_GAIN * edge:
            continue
        size = preview_size(photo.width, photo.height, edge)
        if size is not None:
            base = resize_rgb(levels[0].base, size)  # from the next level: cheaper, as sharp
            fp = level_fingerprint(source.fingerprint, (size[1], size[0]))
            levels.insert(0, Level(name, base, fp))
    to_screen = screen_transform(photo.icc_profile, photo.grey)
    return levels, build_pyramid(photo.pixels, photo.width, full.fingerprint, to_screen=to_screen)


def open_bytes(data: bytes, name: str, preview_edge: int, path: Path | None = None) -> Opened:
    """Decode photo bytes (raises UnsupportedImageError with a message for the user)."""
    photo: Photo = load_image_bytes(data, name=name)
    photo.path = path  # lets save_image refuse to overwrite the original photo by accident
    source = Source(photo, data, name, path)
    levels, pyramid = prepare(source, preview_edge)
    return Opened(source, levels, pyramid, [], None)


def open_file(path: Path, preview_edge: int) -> Opened:
    """Open a photo or an ``.instructir`` project."""
    path = Path(path)
    if is_project(path):
        project = load_project(path)
        try:
            opened = open_bytes(project.source_bytes, project.source_name, preview_edge)
        except Exception as exc:  # noqa: BLE001 - reported as a damaged project
            raise ProjectError(
                f"The photo inside the project '{path.name}' cannot be opened: {exc}"
            ) from exc
        opened.layers = project.layers
        opened.project_path = path
        opened.pack = project.pack
        opened.extra = project.extra
        return opened
    from instructir_desktop.core.errors import UnsupportedImageError

    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise UnsupportedImageError(f"'{path.name}' was not found.") from exc
    except IsADirectoryError as exc:
        raise UnsupportedImageError(f"'{path.name}' is a folder, not a photo.") from exc
    except OSError as exc:
        raise UnsupportedImageError(f"'{path.name}' cannot be read: {exc.strerror}.") from exc
    return open_bytes(data, path.name, preview_edge, path)


def export_target(path: Path, format: str | None = None) -> tuple[Path, str]:
    """The file and format an export writes: a known extension decides the format (a file
    named ``out.jpg`` holds JPEG bytes whatever ``format`` says); a name without one gets
    the extension of ``format`` (PNG when none is given)."""
    path = Path(path)
    if path.suffix.lower() in SUPPORTED_EXTENSIONS:
        return path, format_for_path(path)
    fmt = (format or "PNG").upper()
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt, fmt)
    ext = FORMAT_EXTENSIONS.get(fmt)
    if ext is None:
        format_for_path(path)  # raises the message that names the supported extensions
    return path.with_name(path.name + ext), fmt


def export_photo(
    source: Source,
    pixels,
    path: Path,
    *,
    format: str | None = None,
    quality: int = 95,
    bit_depth: int | None = None,
) -> Path:
    """Write the full-resolution composite with the source's alpha, EXIF and ICC (atomic).

    The file's extension decides the format (see ``export_target``); a bit depth the format
    cannot hold falls back to 8 bits."""
    path, fmt = export_target(path, format)
    if fmt not in ("PNG", "TIFF"):
        bit_depth = 8
    photo = source.photo.with_pixels(pixels)
    return save_image(photo, path, format=fmt, quality=quality, bit_depth=bit_depth or None)


def project_data(source: Source, layers: list[Layer], pack: str, extra: dict | None = None):
    """What ``save_project`` needs, from the current document."""
    return ProjectData(source.data, source.name, list(layers), pack, dict(extra or {}))
