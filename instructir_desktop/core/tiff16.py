"""16-bit TIFF: read through tifffile when it is installed (Pillow reads TIFFs at 8 bits),
written by a small baseline TIFF writer that also carries the EXIF tags.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

__all__ = [
    "DESCRIPTIVE_TAGS",
    "SUB_IFDS",
    "Decoded",
    "encode_tiff16",
    "load_tiff_only",
    "read_tiff16",
    "tiff_exif",
]

# IFD0 tags that describe the photo rather than its pixel layout: the only ones carried
# between TIFF files and EXIF blocks (strip offsets and the like would be wrong elsewhere).
DESCRIPTIVE_TAGS = {270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 33432, 34665, 34853}
SUB_IFDS = (0x8769, 0x8825)
# samples (H x W x 1..4, uint8/uint16, as stored), bit depth, ICC, EXIF, format
Decoded = tuple[np.ndarray, int, bytes | None, bytes | None, str]


def tiff_exif(im: Image.Image) -> bytes | None:
    """The descriptive tags of a TIFF opened by Pillow, as an EXIF block (or None)."""
    source = im.getexif()
    exif = Image.Exif()
    for tag in DESCRIPTIVE_TAGS.intersection(source):
        exif[tag] = source.get_ifd(tag) if tag in SUB_IFDS else source[tag]
    return exif.tobytes() if len(exif) else None


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


def encode_tiff16(samples: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    """Uncompressed baseline TIFF, 16 bits per sample, with EXIF tags and ICC profile."""
    height, width, channels = samples.shape
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    ifd[282], ifd[283], ifd[296] = 72.0, 72.0, 2
    if exif:
        source = Image.Exif()
        source.load(exif)
        for tag in DESCRIPTIVE_TAGS.intersection(source):
            ifd[tag] = source.get_ifd(tag) if tag in SUB_IFDS else source[tag]
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
