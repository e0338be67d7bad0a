"""16-bit PNG, read and written here because Pillow only handles 8-bit RGB.

Reading parses the chunks, inflates the data and undoes Adam7 interlacing; Pillow's C code
reverses the row filters on 8-bit slices of the 16-bit rows. Writing filters every row "Up"
and deflates on all cores. ``png_file`` and ``png_chunk`` also build plain 8/16-bit PNGs for
the GIMP bridge. ``png_metadata`` reads the resolution (pHYs) and XMP packet of any PNG, and
``phys_chunk``/``xmp_chunk`` write them.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np
from PIL import PngImagePlugin

__all__ = [
    "PNG_SIGNATURE",
    "XMP_KEYWORD",
    "encode_png16",
    "phys_chunk",
    "png_chunk",
    "png_file",
    "png_metadata",
    "read_png16",
    "xmp_chunk",
    "xmp_itxt_body",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
          (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # fmt: skip
XMP_KEYWORD = b"XML:com.adobe.xmp"  # the text chunk keyword of an XMP packet (XMP spec, part 3)
_INCH = 0.0254  # metres
_TEXT_LIMIT = 16 << 20  # a text chunk larger than this is not read (nor its XMP kept)


def read_png16(fp: BinaryIO) -> tuple[np.ndarray, bytes | None, bytes | None]:
    """H x W x C uint16 samples (tRNS becomes an alpha plane), ICC profile and raw EXIF."""
    fp.seek(0)
    if fp.read(8) != PNG_SIGNATURE:
        raise ValueError("not a PNG")
    chunks: dict[bytes, list[bytes]] = {}
    while True:
        length, kind = struct.unpack(">I4s", fp.read(8))
        body, crc = fp.read(length), fp.read(4)
        if len(crc) != 4 or zlib.crc32(body, zlib.crc32(kind)) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"damaged PNG chunk {kind!r}")
        chunks.setdefault(kind, []).append(body)
        if kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    channels = _PNG_CHANNELS[colour]
    bpp = 2 * channels
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    shapes = [(-(-(height - y0) // dy), -(-(width - x0) // dx)) for x0, y0, dx, dy in passes]
    expected = sum(h * (1 + w * bpp) for h, w in shapes if h and w)
    raw = zlib.decompressobj().decompress(b"".join(chunks[b"IDAT"]), expected)
    if depth != 16 or len(raw) < expected:
        raise ValueError("unsupported or truncated PNG data")
    out = np.empty((height, width, channels), np.uint16)
    buf = np.frombuffer(raw, np.uint8)
    for (x0, y0, dx, dy), (h, w) in zip(passes, shapes, strict=True):
        if h and w:
            rows, buf = buf[: h * (1 + w * bpp)].reshape(h, -1), buf[h * (1 + w * bpp) :]
            data = _unfilter(rows[:, 0], rows[:, 1:], bpp)
            out[y0::dy, x0::dx] = data.view(">u2").reshape(h, w, channels)
    if b"tRNS" in chunks and colour in (0, 2):
        key = np.frombuffer(chunks[b"tRNS"][0][: 2 * channels], ">u2")
        alpha = np.where((out == key).all(axis=2), 0, 65535).astype(np.uint16)
        out = np.dstack([out, alpha])
    icc = None
    if b"iCCP" in chunks:
        profile = chunks[b"iCCP"][0]
        icc = zlib.decompress(profile[profile.index(b"\0") + 2 :])
    exif = chunks.get(b"eXIf", [None])[0]
    return out, icc, exif


def png_metadata(fp: BinaryIO) -> tuple[tuple[float, float] | None, bytes | None]:
    """The resolution in dpi (a pHYs chunk in pixels per metre) and the XMP packet (an iTXt
    chunk, or the tEXt/zTXt some older writers use) of a PNG; None for what it lacks.

    Walks the chunk headers only (the pixel data is skipped), so it costs little on any PNG;
    a damaged tail just ends the walk with what was found before it."""
    dpi, xmp = None, None
    fp.seek(0)
    if fp.read(8) != PNG_SIGNATURE:
        return None, None
    while len(head := fp.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            break
        wanted = kind == b"pHYs" or (kind in (b"iTXt", b"tEXt", b"zTXt") and xmp is None)
        if not wanted or length > _TEXT_LIMIT:
            fp.seek(length + 4, os.SEEK_CUR)
            continue
        body = fp.read(length)
        fp.seek(4, os.SEEK_CUR)  # the CRC
        if len(body) != length:
            break
        if kind == b"pHYs" and length == 9 and body[8] == 1:  # unit 1: the metre
            x, y = struct.unpack(">II", body[:8])
            dpi = (x * _INCH, y * _INCH) if x and y else None
        elif kind != b"pHYs" and body.startswith(XMP_KEYWORD + b"\0"):
            xmp = _text_value(kind, body[len(XMP_KEYWORD) + 1 :])
    return dpi, xmp


def _text_value(kind: bytes, rest: bytes) -> bytes | None:
    """The text of a tEXt, zTXt or iTXt chunk, given what follows its keyword's NUL."""
    try:
        if kind == b"tEXt":
            return rest
        if kind == b"zTXt":
            return _inflate(rest[1:]) if rest[0] == 0 else None
        compressed, method = rest[0], rest[1]
        rest = rest[2:]
        rest = rest[rest.index(b"\0") + 1 :]  # the language tag
        rest = rest[rest.index(b"\0") + 1 :]  # the translated keyword
        if not compressed:
            return rest
        return _inflate(rest) if method == 0 else None
    except (IndexError, ValueError, zlib.error):
        return None


def _inflate(data: bytes) -> bytes | None:
    """zlib data inflated, or None when it would exceed the text limit (a zip bomb)."""
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, _TEXT_LIMIT)
    return None if inflater.unconsumed_tail else text


def phys_chunk(dpi: tuple[float, float]) -> bytes:
    """A pHYs chunk stating ``dpi`` (x, y) in pixels per metre."""
    x, y = (min(max(1, round(d / _INCH)), 0x7FFFFFFF) for d in dpi)
    return png_chunk(b"pHYs", struct.pack(">IIB", x, y, 1))


def xmp_chunk(xmp: bytes) -> bytes:
    """An uncompressed iTXt chunk holding an XMP packet, as the XMP specification asks."""
    return png_chunk(b"iTXt", xmp_itxt_body(xmp))


def xmp_itxt_body(xmp: bytes) -> bytes:
    """The body of ``xmp_chunk``: keyword, no compression, no language, no translation."""
    return XMP_KEYWORD + b"\0\0\0\0\0" + xmp


def _unfilter(kinds: np.ndarray, rows: np.ndarray, bpp: int) -> np.ndarray:
    """Reverse the PNG filters (None, Sub, Up, Average, Paeth) of (H, row bytes) uint8 rows.

    Average and Paeth are sequential along a row, far too slow in numpy for a 24 MP photo,
    so Pillow's C decoder does it. Every filter works byte by byte with the left neighbour
    `bpp` bytes back, so each 2, 3 or 4-byte slice of a 16-bit pixel is a valid 8-bit LA,
    RGB or RGBA PNG with the same row filters, which Pillow reverses exactly.
    """
    height, nbytes = rows.shape
    width = nbytes // bpp
    group, colour = {2: (2, 4), 4: (4, 6), 6: (3, 2), 8: (4, 6)}[bpp]
    pixels = rows.reshape(height, width, bpp)
    out = np.empty_like(pixels)
    for first in range(0, bpp, group):
        raw = np.empty((height, 1 + width * group), np.uint8)
        raw[:, 0] = kinds
        raw[:, 1:].reshape(height, width, group)[...] = pixels[:, :, first : first + group]
        png = png_file(width, height, 8, colour, zlib.compress(raw, 0))
        # The plug-in class itself, not Image.open: the photo's size was checked against
        # the user's limit already, and Image.open would apply Pillow's own (a global).
        with PngImagePlugin.PngImageFile(io.BytesIO(png)) as im:
            out[:, :, first : first + group] = np.asarray(im).reshape(height, width, group)
    return out.reshape(height, nbytes)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    crc = zlib.crc32(body, zlib.crc32(kind))
    return b"".join([struct.pack(">I4s", len(body), kind), body, struct.pack(">I", crc)])


def png_file(width: int, height: int, depth: int, colour: int, idat: bytes, *extra: bytes) -> bytes:
    """A whole PNG from its zlib-compressed, filtered rows; ``extra`` chunks go before IDAT."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    step = 1 << 24
    idats = [png_chunk(b"IDAT", idat[i : i + step]) for i in range(0, len(idat), step)]
    return b"".join([PNG_SIGNATURE, ihdr, *extra, *idats, png_chunk(b"IEND", b"")])


def encode_png16(
    samples: np.ndarray,
    icc: bytes | None,
    exif: bytes | None,
    *,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
) -> bytes:
    """A 16-bit PNG of H x W x 1..4 uint16 samples, with the ICC profile, EXIF, resolution
    (dpi) and XMP packet."""
    height, width, channels = samples.shape
    rows = np.ascontiguousarray(samples, ">u2").view(np.uint8).reshape(height, -1)
    up = rows.copy()
    up[1:] -= rows[:-1]  # filter "Up" on every row: vectorised and decent on photos
    filtered = np.hstack([np.full((height, 1), 2, np.uint8), up])
    extra = []
    if icc:
        extra.append(png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc)))
    if exif:
        extra.append(png_chunk(b"eXIf", exif.removeprefix(b"Exif\0\0")))
    if dpi:
        extra.append(phys_chunk(dpi))
    if xmp:
        extra.append(xmp_chunk(xmp))
    idat = _deflate(memoryview(filtered).cast("B"))
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    return png_file(width, height, 16, colour, idat, *extra)


def _deflate(data: memoryview, piece: int = 8 << 20) -> bytes:
    """A zlib stream deflated in pieces on all cores, as pigz does (zlib releases the GIL).

    16-bit photos barely compress (the low bytes are noise), so level 1 costs little size
    and is several times faster than the default level.
    """
    starts = range(0, len(data), piece)

    def deflate(start: int) -> bytes:
        squeezer = zlib.compressobj(1, zlib.DEFLATED, -15)
        last = start + piece >= len(data)
        body = squeezer.compress(data[start : start + piece])
        return body + squeezer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1) or 1) as pool:
        body = b"".join(pool.map(deflate, starts))
    return b"\x78\x01" + body + struct.pack(">I", zlib.adler32(data))
