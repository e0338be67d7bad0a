"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2…), developed with LibRaw (rawpy).

A RAW file holds the sensor's mosaic, not a picture. It is developed once, when it is opened:
demosaiced (AHD), the white balance the camera recorded, the camera's colour matrix to sRGB,
LibRaw's automatic brightness and the sRGB curve, at 16 bits per channel, with the camera's
orientation applied. From then on it is a photo like any other. A RAW file is never written:
results are saved as 16-bit TIFF unless another type is asked for. Camera, lens and exposure
EXIF travel to the results when the RAW file is TIFF-based (DNG, CR2, NEF, ARW, ORF, PEF…).

The file is recognised by its extension: the TIFF structure most RAW files share would
otherwise open as the small preview the camera stored beside the sensor data.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from instructir_desktop.core.errors import UnsupportedImageError

__all__ = ["RAW_EXTENSIONS", "is_raw_name", "raw_size", "develop"]

RAW_EXTENSIONS: dict[str, str] = {
    ".dng": "DNG",
    ".cr2": "Canon CR2",
    ".cr3": "Canon CR3",
    ".crw": "Canon CRW",
    ".nef": "Nikon NEF",
    ".nrw": "Nikon NRW",
    ".arw": "Sony ARW",
    ".srf": "Sony SRF",
    ".sr2": "Sony SR2",
    ".raf": "Fujifilm RAF",
    ".orf": "Olympus ORF",
    ".rw2": "Panasonic RW2",
    ".pef": "Pentax PEF",
    ".srw": "Samsung SRW",
    ".x3f": "Sigma X3F",
    ".3fr": "Hasselblad 3FR",
    ".iiq": "Phase One IIQ",
    ".erf": "Epson ERF",
    ".kdc": "Kodak KDC",
    ".mrw": "Minolta MRW",
    ".rwl": "Leica RWL",
}

# EXIF kept from a RAW file's first IFD (the rest of it describes the sensor data): make,
# model, date, artist, copyright, and the EXIF and GPS sub-IFDs (exposure, lens, place).
_KEPT_IFD0 = (0x010F, 0x0110, 0x0132, 0x013B, 0x8298)
_SUB_IFDS = (0x8769, 0x8825)


def is_raw_name(name: str) -> bool:
    """Whether a file name has a camera RAW extension."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in RAW_EXTENSIONS


def _kind(name: str) -> str:
    return RAW_EXTENSIONS.get(name[name.rfind(".") :].lower(), "RAW")


def _rawpy(name: str):
    try:
        import rawpy
    except ImportError as exc:
        raise UnsupportedImageError(
            f"'{name}' is a camera RAW file ({_kind(name)}); opening it needs the rawpy "
            "package (pip install rawpy)."
        ) from exc
    return rawpy


def _read(data: bytes, name: str):
    rawpy = _rawpy(name)
    try:
        return rawpy.imread(io.BytesIO(data))
    except rawpy.LibRawFileUnsupportedError as exc:
        raise UnsupportedImageError(
            f"'{name}' is not a {_kind(name)} file this version of LibRaw "
            f"({'.'.join(map(str, rawpy.libraw_version))}) can read: a camera newer than it, "
            "or not a RAW file. Develop it in your RAW software and open the TIFF or JPEG."
        ) from exc
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise UnsupportedImageError(
            f"'{name}' is damaged or truncated and cannot be opened."
        ) from exc


def _output_size(raw) -> tuple[int, int]:
    """(width, height) of the developed picture, from the header: nothing decoded yet."""
    sizes = raw.sizes
    w, h = int(sizes.width), int(sizes.height)
    return (h, w) if sizes.flip in (5, 6) else (w, h)


def raw_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) a RAW file develops to (raises UnsupportedImageError)."""
    with _read(data, name) as raw:
        return _output_size(raw)


def develop(
    data: bytes, name: str, check_size: Callable[[tuple[int, int]], None]
) -> tuple[np.ndarray, bytes | None]:
    """H x W x 3 uint16 sRGB samples (orientation applied) and the EXIF worth keeping.

    ``check_size`` sees the developed size before anything is decoded and may raise (the
    memory budget, the pixel limit)."""
    rawpy = _rawpy(name)
    with _read(data, name) as raw:
        check_size(_output_size(raw))
        try:
            samples = raw.postprocess(
                use_camera_wb=True,
                output_color=rawpy.ColorSpace.sRGB,
                output_bps=16,
                gamma=(2.4, 12.92),  # the sRGB curve (LibRaw's default is BT.709's)
                demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
            )
        except MemoryError as exc:
            raise UnsupportedImageError(f"There is not enough memory to open '{name}'.") from exc
        except (rawpy.LibRawError, ValueError) as exc:
            raise UnsupportedImageError(
                f"'{name}' is damaged or truncated and cannot be opened."
            ) from exc
    if samples.ndim != 3 or samples.shape[2] != 3:
        raise UnsupportedImageError(f"'{name}' holds no colour picture InstructIR can edit.")
    return np.ascontiguousarray(samples, dtype=np.uint16), _exif(data)


def _exif(data: bytes) -> bytes | None:
    """The camera's EXIF as "Exif\\0\\0" + TIFF, Orientation 1 (the picture is upright)."""
    if not data.startswith((b"II*\0", b"MM\0*")):
        return None  # CR3, RAF, ORF, RW2… have their own containers
    with contextlib.suppress(Exception):  # EXIF is a bonus: a RAW file without it still opens
        source = Image.Exif()
        source.load(data)  # IFD0 of the TIFF structure; sub-IFDs are read on demand
        kept = Image.Exif()
        for tag in _KEPT_IFD0:
            if tag in source:
                kept[tag] = source[tag]
        for pointer in _SUB_IFDS:
            sub = source.get_ifd(pointer)
            if sub:
                kept.get_ifd(pointer).update(sub)
        if not len(kept) and not any(kept.get_ifd(p) for p in _SUB_IFDS):
            return None
        kept[0x0112] = 1
        return kept.tobytes()  # "Exif\0\0" and the TIFF structure
    return None
