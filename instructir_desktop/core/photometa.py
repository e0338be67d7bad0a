"""What a photo file says besides its pixels: print resolution, XMP packet, JPEG comment, EXIF
orientation, WebP losslessness; read from files Pillow opened and written back as Pillow's save
options. Nothing here stops a photo from opening: metadata that cannot be read is left out.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, PngImagePlugin

from instructir_desktop.core.png16 import png_metadata, xmp_itxt_body
from instructir_desktop.core.tiff16 import XMP_TAG, first_ifd, tiff_dpi, tiff_xmp

log = logging.getLogger(__name__)

_JPEG_XMP_LIMIT = 65504  # one APP1 segment less its namespace (longer packets are "extended")
_MAX_DPI = 65535.0  # JFIF's density field; more is nonsense anyway
# tiff:Orientation as an attribute or an element of an XMP packet: the digit is group 2
_XMP_ORIENTATION = (
    re.compile(rb"""(\btiff:Orientation\s*=\s*["'])\s*(\d+)\s*(["'])"""),
    re.compile(rb"(<tiff:Orientation>)\s*(\d+)\s*(</tiff:Orientation>)"),
)
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Extras:
    """What a file says besides its pixels, EXIF and ICC profile (see ``Photo``)."""

    dpi: tuple[float, float] | None = None  # as stored, before the orientation is applied
    xmp: bytes | None = None
    comment: bytes | None = None
    lossless_webp: bool = False


def read_extras(im: Image.Image, fp: BinaryIO, fmt: str) -> Extras:
    """Resolution, XMP packet, JPEG comment and WebP losslessness of a file Pillow opened.
    Metadata never stops a photo from opening: what cannot be read is left out."""
    info = im.info
    try:
        comment = None
        if fmt == "JPEG":  # JFIF's density, else the EXIF's resolution (not Pillow's 72 guess)
            dpi = _jfif_dpi(info) or tiff_dpi(im.getexif())
            xmp, comment = info.get("xmp"), info.get("comment")
        elif fmt == "PNG":  # also the chunks after the pixels, which Pillow may not have met
            dpi, xmp = png_metadata(fp)
        elif fmt == "TIFF":  # Pillow says 1 dpi for a TIFF without resolution tags
            dpi, xmp = tiff_dpi(im.tag_v2), tiff_xmp(im.tag_v2)
        else:
            dpi, xmp = info.get("dpi") if fmt == "BMP" else None, info.get("xmp")
        lossless = fmt == "WEBP" and _webp_lossless(fp)
    except Exception as exc:  # noqa: BLE001
        log.debug("metadata of a %s photo left out: %s", fmt, exc)
        return Extras()
    return Extras(clean_dpi(dpi), _as_bytes(xmp), _as_bytes(comment), lossless)


def tiff_only_extras(fp: BinaryIO) -> Extras:
    """Resolution and XMP of a TIFF only tifffile decodes, from its first IFD."""
    ifd = first_ifd(fp)
    if ifd is None:
        return Extras()
    return Extras(clean_dpi(tiff_dpi(ifd)), tiff_xmp(ifd))


def _jfif_dpi(info: dict) -> tuple[float, float] | None:
    unit, density = info.get("jfif_unit"), info.get("jfif_density")
    if unit not in (1, 2) or not density:
        return None  # unit 0: an aspect ratio, no resolution
    return (density[0] * 2.54, density[1] * 2.54) if unit == 2 else density


def clean_dpi(dpi: object) -> tuple[float, float] | None:
    """Two finite, positive dpi values, within a hair of a whole number snapped to it (PNG
    stores whole pixels per metre, 0.0127 dpi apart: 300 dpi reads back as 299.9994 and 350 as
    350.012); None for anything else."""
    try:
        x, y = (float(d) for d in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(d) and 0 < d <= _MAX_DPI for d in (x, y)):
        return None
    x, y = (float(round(d)) if abs(d - round(d)) < 0.02 else d for d in (x, y))
    return x, y


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return bytes(value) if isinstance(value, (bytes, bytearray)) and value else None


def upright_xmp(xmp: bytes | None) -> bytes | None:
    """An XMP packet whose tiff:Orientation (if any) says 1, as the pixels are written
    upright; its length is kept when the old value was one digit (packets carry padding)."""
    if not xmp:
        return None
    for pattern in _XMP_ORIENTATION:
        xmp = pattern.sub(rb"\g<1>1\g<3>", xmp)
    return xmp


def _webp_lossless(fp: BinaryIO) -> bool:
    """Whether a WebP's (first frame's) bitstream is lossless: a VP8L chunk, not "VP8 "."""
    fp.seek(0)
    head = fp.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return False
    for _ in range(64):  # VP8X, ICCP, ANIM, ANMF (whose frame chunks follow its header)...
        chunk = fp.read(8)
        if len(chunk) < 8:
            return False
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind in (b"VP8L", b"VP8 "):
            return kind == b"VP8L"
        if kind == b"ANMF":
            fp.seek(16, os.SEEK_CUR)  # the frame's position, size, duration and flags
        else:
            fp.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    return False


def with_exif_header(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    return exif if exif.startswith(b"Exif\0\0") else b"Exif\0\0" + exif


def reset_orientation(exif: bytes | None) -> tuple[bytes | None, int]:
    """Read IFD0's Orientation and patch it to 1 in place, leaving every other byte alone."""
    if not exif:
        return exif, 1
    try:
        tiff = 6
        order = {b"II": "<", b"MM": ">"}[exif[tiff : tiff + 2]]
        ifd = tiff + struct.unpack_from(order + "I", exif, tiff + 4)[0]
        for i in range(struct.unpack_from(order + "H", exif, ifd)[0]):
            entry = ifd + 2 + 12 * i
            tag, kind = struct.unpack_from(order + "HH", exif, entry)
            if tag == ORIENTATION_TAG and kind == 3:
                value = struct.unpack_from(order + "H", exif, entry + 8)[0]
                patched = bytearray(exif)
                struct.pack_into(order + "H", patched, entry + 8, 1)
                return bytes(patched), value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass  # malformed EXIF: keep it as it is, unrotated
    return exif, 1


def xmp_save_options(fmt: str, xmp: bytes | None, exif: bytes | None) -> dict[str, object]:
    """Pillow's save options that write an XMP packet in ``fmt`` (none where it cannot)."""
    if not xmp:
        return {}
    if fmt == "PNG":  # an iTXt chunk, as the XMP specification asks
        info = PngImagePlugin.PngInfo()
        info.add(b"iTXt", xmp_itxt_body(xmp))
        return {"pnginfo": info}
    if fmt == "TIFF":  # tag 700 in IFD0, written with the EXIF's tags
        tags = Image.Exif()
        if exif:
            tags.load(exif)
        tags[XMP_TAG] = xmp
        return {"exif": tags}
    if fmt == "JPEG" and len(xmp) > _JPEG_XMP_LIMIT:
        return {}  # only an "extended XMP" could hold it: not written
    return {"xmp": xmp}
