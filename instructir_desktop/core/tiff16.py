"""16-bit TIFF: read through tifffile when it is installed (Pillow reads TIFFs at 8 bits),
written by a small baseline TIFF writer that also carries the EXIF tags, the resolution and
the XMP packet. Also what any TIFF's first IFD says about it: its resolution and XMP
(``tiff_dpi``, ``tiff_xmp``) and, for a whole file InstructIR cannot read, the sample format
that is the reason (``unreadable_samples``).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

__all__ = [
    "DESCRIPTIVE_TAGS",
    "SUB_IFDS",
    "Decoded",
    "encode_tiff16",
    "load_tiff_only",
    "first_ifd",
    "read_tiff16",
    "tiff_dpi",
    "tiff_exif",
    "tiff_xmp",
    "unreadable_samples",
]

# IFD0 tags that describe the photo rather than its pixel layout: the only ones carried
# between TIFF files and EXIF blocks (strip offsets and the like would be wrong elsewhere).
DESCRIPTIVE_TAGS = {270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 33432, 34665, 34853}
SUB_IFDS = (0x8769, 0x8825)
XMP_TAG = 700  # XMLPacket: the XMP packet, bytes
_RESOLUTION_UNITS = {2: 1.0, 3: 2.54}  # inch, centimetre -> factor to dots per inch
_TIFF_HEADERS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic TIFF and BigTIFF
# samples (H x W x 1..4, uint8/uint16, as stored), bit depth, ICC, EXIF, format
Decoded = tuple[np.ndarray, int, bytes | None, bytes | None, str]


def tiff_exif(im: Image.Image) -> bytes | None:
    """The descriptive tags of a TIFF opened by Pillow, as an EXIF block (or None)."""
    source = im.getexif()
    exif = Image.Exif()
    for tag in DESCRIPTIVE_TAGS.intersection(source):
        exif[tag] = source.get_ifd(tag) if tag in SUB_IFDS else source[tag]
    return exif.tobytes() if len(exif) else None


def tiff_dpi(tags: Mapping[int, Any]) -> tuple[float, float] | None:
    """(x, y) dots per inch from a TIFF IFD's resolution tags; None when the file states none
    (or only an aspect ratio: ResolutionUnit 1) or nonsense."""
    x, y, unit = tags.get(282), tags.get(283), tags.get(296, 2)  # the unit defaults to inch
    if x is None or y is None or unit not in _RESOLUTION_UNITS:
        return None
    scale = _RESOLUTION_UNITS[unit]
    try:
        dpi = (float(_first(x)) * scale, float(_first(y)) * scale)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    return dpi if all(math.isfinite(d) and d > 0 for d in dpi) else None


def tiff_xmp(tags: Mapping[int, Any]) -> bytes | None:
    """The XMP packet a TIFF IFD holds (tag 700), as bytes."""
    value = tags.get(XMP_TAG)
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif isinstance(value, tuple) and all(isinstance(v, int) and 0 <= v < 256 for v in value):
        value = bytes(value)
    return bytes(value) if isinstance(value, (bytes, bytearray)) and value else None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def first_ifd(fp: BinaryIO) -> TiffImagePlugin.ImageFileDirectory_v2 | None:
    """The first IFD's tags of a TIFF (Pillow's parser, which needs no pixel format it
    knows), or None when the file is not a TIFF or its header is unreadable."""
    fp.seek(0)
    head = fp.read(8)
    if head[:4] not in _TIFF_HEADERS:
        return None
    if head[2] == 43:  # BigTIFF: 16-byte header
        head += fp.read(8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Possibly corrupt EXIF data" and the like
            ifd = TiffImagePlugin.ImageFileDirectory_v2(head)
            fp.seek(ifd.next)
            ifd.load(fp)
    except Exception:  # noqa: BLE001 - a damaged header: the caller says the file is damaged
        return None
    return ifd


def unreadable_samples(fp: BinaryIO) -> str | None:
    """What the samples of a whole TIFF InstructIR cannot read are, e.g. "32-bit floating
    point" or "unsigned 32-bit integer"; None when they are a kind it reads (unsigned integers of
    1 to 16 bits), when the file is not a TIFF or when its pixel data does not fit in the file
    (then it is damaged, whatever its samples)."""
    ifd = first_ifd(fp)
    if ifd is None:
        return None
    formats = set(_tuple(ifd.get(339, 1)))  # SampleFormat: 1 unsigned, 2 signed, 3 float...
    bits = set(_tuple(ifd.get(258, 1)))
    if not formats or not bits or not all(isinstance(b, int) for b in bits):
        return None
    if formats <= {1, 4} and bits <= {1, 2, 4, 8, 16}:  # 4: "undefined", read as unsigned
        return None
    if not _data_fits(ifd, fp):
        return None
    width = max(bits)
    if 3 in formats:
        return f"{width}-bit floating point"
    if formats & {5, 6}:
        return f"{width}-bit complex numbers"
    if 2 in formats:
        return f"signed {width}-bit integer"
    if formats <= {1, 2, 4}:
        return f"unsigned {width}-bit integer"
    return None  # a sample format no TIFF reader knows: damaged


def _tuple(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _data_fits(ifd: TiffImagePlugin.ImageFileDirectory_v2, fp: BinaryIO) -> bool:
    """Whether every strip (or tile) the IFD lists lies inside the file."""
    size = fp.seek(0, os.SEEK_END)
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        if offsets_tag in ifd:
            offsets, counts = _tuple(ifd[offsets_tag]), _tuple(ifd.get(counts_tag, ()))
            return len(offsets) == len(counts) > 0 and all(
                0 < o and 0 <= c and o + c <= size for o, c in zip(offsets, counts, strict=True)
            )
    return False


def _tifffile():  # the tifffile module, or None when it is not installed
    try:
        import tifffile
    except ImportError:
        return None
    return tifffile


def read_tiff16(fp: BinaryIO) -> np.ndarray | None:
    """Samples of a 16-bit TIFF via tifffile, or None to let Pillow decode it (at 8 bits)."""
    if (tifffile := _tifffile()) is None:
        return None
    fp.seek(0)
    try:
        with tifffile.TiffFile(fp) as tif:
            return _tiff_samples(tif.pages.first)
    except Exception:  # noqa: BLE001 - e.g. LZW without imagecodecs; Pillow reads it at 8 bits
        return None


def _tiff_samples(page) -> np.ndarray | None:  # page: a tifffile.TiffPage
    if page.dtype != np.uint16 or int(page.photometric) not in (1, 2):
        return None
    data = page.asarray()
    axes = page.axes
    if axes == "YX":
        data = data[..., None]
    elif axes == "SYX":
        data = np.moveaxis(data, 0, -1)
    return np.ascontiguousarray(data) if data.ndim == 3 and data.shape[2] <= 4 else None


def load_tiff_only(fp: BinaryIO, check_size: Callable[[int, int], None]) -> Decoded | None:
    """TIFF layouts Pillow cannot open (planar 16-bit RGB) through tifffile, if installed.

    ``check_size(width, height)`` raises when the photo is too large to decode."""
    fp.seek(0)
    if fp.read(4) not in (b"II*\0", b"MM\0*") or (tifffile := _tifffile()) is None:
        return None
    fp.seek(0)
    with tifffile.TiffFile(fp) as tif:
        page = tif.pages.first
        check_size(page.imagewidth, page.imagelength)
        samples = _tiff_samples(page)
        exif = Image.Exif()
        for tag in page.tags.values():
            if tag.code in DESCRIPTIVE_TAGS and isinstance(tag.value, (str, int)):
                exif[tag.code] = tag.value
        icc = page.iccprofile
    if samples is None:
        return None
    return samples, 16, icc, exif.tobytes() if len(exif) else None, "TIFF"


def encode_tiff16(
    samples: np.ndarray,
    icc: bytes | None,
    exif: bytes | None,
    *,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
) -> bytes:
    """Uncompressed baseline TIFF, 16 bits per sample, with EXIF tags, ICC profile, XMP
    packet and resolution: ``dpi`` when given, else the EXIF's, else 72 dpi."""
    height, width, channels = samples.shape
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    ifd[282], ifd[283], ifd[296] = 72.0, 72.0, 2
    if exif:
        source = Image.Exif()
        source.load(exif)
        for tag in DESCRIPTIVE_TAGS.intersection(source):
            ifd[tag] = source.get_ifd(tag) if tag in SUB_IFDS else source[tag]
    if dpi:
        ifd[282], ifd[283], ifd[296] = float(dpi[0]), float(dpi[1]), 2
    if xmp:
        ifd[XMP_TAG] = xmp
    row_bytes = width * channels * 2
    rows_per_strip = max(1, (1 << 20) // row_bytes)
    starts = range(0, height, rows_per_strip)
    counts = [min(rows_per_strip, height - y) * row_bytes for y in starts]
    layout = {
        256: width, 257: height, 258: (16,) * channels, 259: 1, 262: 2 if channels > 2 else 1,
        274: 1,
        277: channels, 278: rows_per_strip, 284: 1, 339: (1,) * channels,
    }  # fmt: skip
    for tag, value in layout.items():
        ifd[tag] = value
    for tag, value in ((273, tuple(y * row_bytes for y in starts)), (279, tuple(counts))):
        ifd[tag] = value
        ifd.tagtype[tag] = TiffTags.LONG  # strip offsets are relative to the pixel data
    if channels in (2, 4):
        ifd[338] = (2,)  # unassociated alpha
    if icc:
        ifd[34675] = icc
    out = io.BytesIO()
    ifd.save(out)  # header + IFD; strip offsets are shifted to start right after it
    out.write(np.ascontiguousarray(samples, "<u2").tobytes())
    return out.getvalue()
