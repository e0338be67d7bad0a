"""Where the results of a batch go: one output path per input, decided before any work.

The rules (the command line and batch recipes share them): one input and an output that
names a file → that file; otherwise the output is a folder and each result is
``<folder>/<input name without extension>.<ext>`` (ext from ``fmt``, else the input's).
An output never lands on any input (not only its own), two inputs never share an output, and
an output folder that is a file, or sits under one, is refused: every problem is found here,
before the model starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import InstructIRError, UnsupportedImageError
from .images import READABLE_EXTENSIONS, SUPPORTED_EXTENSIONS, format_for_path
from .rawfiles import RAW_EXTENSIONS

__all__ = ["OutputPathError", "collect_inputs", "default_suffix", "names_folder", "plan_outputs"]


class OutputPathError(InstructIRError):
    """The output location cannot be used (it would overwrite an input, two results would
    share a name, or a folder in its path is a file)."""


def collect_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """The image files named, each once, with folders expanded to the images directly inside
    them (not hidden files such as the "._photo.jpg" that macOS leaves on memory cards)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(
                sorted(
                    q
                    for q in p.iterdir()
                    if q.suffix.lower() in READABLE_EXTENSIONS
                    and not q.name.startswith(".")
                    and q.is_file()
                )
            )
        elif p.exists():
            found.append(p)
        else:
            raise UnsupportedImageError(f"'{raw}' not found.")
    if not found:
        raise UnsupportedImageError("No images found in the given inputs.")
    unique: dict[str, Path] = {}
    for p in found:  # a file named twice (or in a folder also named) is restored once
        unique.setdefault(os.path.normcase(os.path.realpath(p)), p)
    return list(unique.values())


def names_folder(raw: str) -> bool:
    """Whether an output written as ``raw`` names a folder: 'out/', an existing folder, or a
    new name without an extension (no image type has none)."""
    seps = tuple(s for s in (os.sep, os.altsep) if s)
    p = Path(raw)
    return raw.endswith(seps) or p.is_dir() or (not p.exists() and not p.suffix)


def default_suffix(src: Path | str) -> str:
    """The extension a result of ``src`` gets when no type is asked for: the input's own when
    InstructIR writes that type, else the nearest one it writes."""
    suffix = Path(src).suffix
    if suffix.lower() in SUPPORTED_EXTENSIONS:
        return suffix
    if suffix.lower() in RAW_EXTENSIONS:
        return ".tif"  # a developed RAW file: 16-bit TIFF keeps what it holds
    if suffix.lower() in (".heic", ".heif"):
        return ".jpg"  # a phone photo, without pillow-heif's encoder
    return ".png"  # e.g. a GIF or TGA input: saved losslessly in a type we can write


def _extension(src: Path, fmt: str | None) -> str:
    if fmt:
        return ".jpg" if fmt.lower() == "jpeg" else f".{fmt.lower()}"
    return default_suffix(src)


def _key(path: Path) -> str:
    """One spelling per file: absolute, symlinks resolved, case folded where the OS does."""
    return os.path.normcase(os.path.realpath(path))


def _file_in_the_way(folder: Path) -> Path | None:
    """The first existing non-folder on the way to ``folder`` (itself included)."""
    for part in [folder, *folder.parents]:
        if part.exists():
            return None if part.is_dir() else part
    return None


def plan_outputs(
    inputs: Sequence[Path], output: str | Path, fmt: str | None = None
) -> list[tuple[Path, Path]]:
    """(input, output) pairs; raises OutputPathError or UnsupportedImageError up front.

    Creates the output folder when the output is one (so that a folder the user cannot
    create is found now, not after the first restore).
    """
    raw = str(output)
    target = Path(output)
    into_folder = len(inputs) > 1 or names_folder(raw)
    blocker = _file_in_the_way(target if into_folder else target.parent)
    if blocker is not None:
        what = "is a file, not a folder"
        if blocker == target:
            what += "; with several inputs -o must be a folder"
        raise OutputPathError(f"'{blocker}' {what}")
    if into_folder:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(
                f"cannot create the output folder '{target}': {exc.strerror or exc}"
            ) from None
    elif not target.parent.exists():
        raise OutputPathError(f"the output folder '{target.parent}' does not exist")
    folder = target if into_folder else target.parent
    if not os.access(folder, os.W_OK | os.X_OK):  # found now, not after the first restore
        raise OutputPathError(f"cannot write into the folder '{folder}': permission denied")
    plans = []
    for src in inputs:
        dst = target / f"{src.stem}{_extension(src, fmt)}" if into_folder else target
        kind = format_for_path(dst)  # an output type we cannot write is refused now
        if fmt and not into_folder and kind != format_for_path(f"x{_extension(src, fmt)}"):
            raise OutputPathError(
                f"'{dst.name}' is a {kind} file name but --format asks for {fmt.upper()}; "
                "change the extension or leave --format out"
            )
        plans.append((src, dst))
    _refuse_clashes(plans)
    return plans


def _refuse_clashes(plans: list[tuple[Path, Path]]) -> None:
    inputs = {_key(src): src for src, _ in plans}
    claimed: dict[str, Path] = {}
    for src, dst in plans:
        key = _key(dst)
        original = inputs.get(key)
        if original is None and dst.exists():
            original = next((s for s, _ in plans if _same_file(s, dst)), None)
        if original is not None:
            raise OutputPathError(
                f"the result of '{src}' would overwrite the original '{original}'; choose "
                "another output folder or --format (originals are never overwritten)"
            )
        if key in claimed:
            raise OutputPathError(
                f"'{claimed[key]}' and '{src}' would both be saved as '{dst}'; restore them "
                "into separate output folders (or with separate --format)"
            )
        claimed[key] = src


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and other spellings of one file
    except OSError:
        return False
