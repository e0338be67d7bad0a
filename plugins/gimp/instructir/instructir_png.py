"""Pixels between GIMP and the bridge for the InstructIR plug-in: a small PNG codec (stdlib
only: GIMP's Python has no Pillow or numpy) and the layer/selection arithmetic."""

from __future__ import annotations

import array
import struct
import sys
import zlib
from typing import Any

__all__ = [
    "PNGError",
    "intersect_rect",
    "is_high_bit_depth",
    "babl_format",
    "encode_png",
    "decode_png",
    "gegl_to_png_samples",
    "png_samples_to_gegl",
]


class PNGError(Exception):
    """The bridge's PNG cannot be read."""


def intersect_rect(mask_intersect: Any) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) in drawable coordinates from ``drawable.mask_intersect()``: the whole
    drawable without a selection, the selection's bounds inside it otherwise; None when the
    selection misses the drawable."""
    values = tuple(mask_intersect)
    ok, rect = (values[0], values[1:]) if len(values) == 5 else (True, values)
    x, y, w, h = (int(v) for v in rect)
    if not ok or w <= 0 or h <= 0:
        return None
    return x, y, w, h


def is_high_bit_depth(precision: Any) -> bool:
    """True for 16/32-bit integer and half/float/double images (``Gimp.Precision``)."""
    name = str(getattr(precision, "value_name", None) or precision).upper()
    return "U8" not in name


def babl_format(high_bit_depth: bool) -> str:
    """Gamma-encoded RGBA, as the model was trained; babl converts from the image's space."""
    return "R'G'B'A u16" if high_bit_depth else "R'G'B'A u8"


def gegl_to_png_samples(data: bytes, bit_depth: int) -> bytes:
    """Gegl gives native-endian u16; PNG stores big-endian."""
    if bit_depth == 16 and sys.byteorder == "little":
        samples = array.array("H")
        samples.frombytes(data)
        samples.byteswap()
        return samples.tobytes()
    return bytes(data)


def png_samples_to_gegl(samples: bytes, bit_depth: int, channels: int, pixels: int) -> bytes:
    """PNG samples (grey, grey+alpha, RGB or RGBA) → native-endian RGBA for Gegl."""
    values = array.array("H" if bit_depth == 16 else "B")
    values.frombytes(samples)
    if bit_depth == 16 and sys.byteorder == "little":
        values.byteswap()
    if channels == 4:
        return values.tobytes()
    out = array.array(values.typecode, bytes(pixels * 4 * values.itemsize))
    for c in range(3):
        out[c::4] = values[(c if channels == 3 else 0) :: channels]
    if channels == 2:
        out[3::4] = values[1::2]
    else:
        out[3::4] = array.array(values.typecode, [(1 << bit_depth) - 1]) * pixels
    return out.tobytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(width: int, height: int, samples: bytes, bit_depth: int, channels: int = 4) -> bytes:
    """A PNG of big-endian ``samples`` (rows top to bottom), filter 0, fast deflate."""
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    stride = width * channels * bit_depth // 8
    if len(samples) != stride * height:
        raise ValueError("sample data does not match the image size")
    rows = b"".join(b"\x00" + samples[y * stride : (y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows, 1))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(width, height, bit depth, channels, big-endian samples) of a non-interlaced 8/16-bit
    grey/RGB(A) PNG. Filter-0 rows are fast; other filters work, slowly (pure Python)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise PNGError("The InstructIR bridge did not send a PNG image.")
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise PNGError("The PNG from the InstructIR bridge has no header.")
    width, height, depth, colour_type, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour_type)
    if channels is None or depth not in (8, 16) or interlace:
        raise PNGError("The PNG from the InstructIR bridge is in an unexpected format.")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        raise PNGError("The PNG from the InstructIR bridge is damaged.") from None
    bpp = channels * depth // 8
    stride = width * bpp
    if len(raw) < (stride + 1) * height:
        raise PNGError("The PNG from the InstructIR bridge is truncated.")
    filters = raw[:: stride + 1][:height]
    if not any(filters):
        rows = b"".join(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)] for y in range(height))
        return width, height, depth, channels, rows
    return width, height, depth, channels, _unfilter(raw, height, stride, bpp)


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> bytes:
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            elif kind != 0:
                raise PNGError("The PNG from the InstructIR bridge is damaged.")
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return bytes(out)
