"""16-bit photos in core.images: PNG (every filter type, Adam7, greyscale) and TIFF round trips
that keep every bit, orientation, and what happens without tifffile; checked against a
reference PNG writer independent of ours."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import test_images
from PIL import Image

from instructir_desktop.core.images import (
    encode_image,
    load_image,
    load_image_bytes,
    save_image,
    to_uint8,
    to_uint16,
)

# Helpers shared with tests/test_images.py.
make_exif = test_images.make_exif
photo_from_uint16 = test_images.photo_from_uint16
random16 = test_images.random16
needs_tifffile = test_images.needs_tifffile
SRGB = test_images.SRGB


# --- a reference 16-bit PNG writer with every filter type and Adam7 (independent of ours) --


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filter(rows: list[list[int]], bpp: int, first_kind: int) -> bytes:
    out = bytearray()
    prev = [0] * len(rows[0])
    for y, row in enumerate(rows):
        kind = (first_kind + y) % 5
        out.append(kind)
        for x, value in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            out.append((value - pred) % 256)
        prev = row
    return bytes(out)


def reference_png16(samples: np.ndarray, colour: int, interlace: bool = False) -> bytes:
    height, width, channels = samples.shape
    bpp = 2 * channels
    passes = (
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2)]
        + [(0, 1, 1, 2)]
        if interlace
        else [(0, 0, 1, 1)]
    )
    data = b""
    for i, (x0, y0, dx, dy) in enumerate(passes):
        sub = samples[y0::dy, x0::dx]
        if sub.size:
            raw = np.ascontiguousarray(sub, ">u2").view(np.uint8).reshape(sub.shape[0], -1)
            data += _filter(raw.tolist(), bpp, first_kind=i)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, int(interlace))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(data))
        + chunk(b"IEND", b"")
    )


# --- 16-bit precision --------------------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_png_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    samples = random16((23, 31, channels))
    photo = photo_from_uint16(samples, exif=make_exif(), icc_profile=SRGB)
    out = save_image(photo, tmp_path / "deep.png", bit_depth=16)
    back = load_image(out)
    assert back.bit_depth == 16 and back.format == "PNG"
    np.testing.assert_array_equal(to_uint16(back.pixels), samples[..., :3])
    if channels == 4:
        np.testing.assert_array_equal(to_uint16(back.alpha), samples[..., 3])
    # Pillow reads 16-bit RGB PNGs at 8 bits: it must see our high bytes.
    with Image.open(out) as im:
        assert im.mode == ("RGBA" if channels == 4 else "RGB")
        np.testing.assert_array_equal(np.asarray(im), (samples >> 8).astype(np.uint8))
    assert to_uint16(load_image(save_image(back, tmp_path / "again.png")).pixels).tolist() == (
        samples[..., :3].tolist()
    )


@pytest.mark.parametrize(("colour", "channels"), [(0, 1), (2, 3), (4, 2), (6, 4)])
@pytest.mark.parametrize("shape", [(11, 13), (1, 1), (2, 3), (9, 1)])
@pytest.mark.parametrize("interlace", [False, True])
def test_16bit_png_decoder_handles_all_filters(
    colour: int, channels: int, shape: tuple[int, int], interlace: bool
) -> None:
    samples = random16((*shape, channels), seed=colour)
    photo = load_image_bytes(reference_png16(samples, colour, interlace), name="ref.png")
    assert photo.bit_depth == 16
    grey = channels in (1, 2)
    rgb = np.repeat(samples[..., :1], 3, axis=2) if grey else samples[..., :3]
    np.testing.assert_array_equal(to_uint16(photo.pixels), rgb)
    if channels in (2, 4):
        np.testing.assert_array_equal(to_uint16(photo.alpha), samples[..., -1])
    else:
        assert photo.alpha is None


def test_16bit_greyscale_png_from_pillow(tmp_path: Path) -> None:
    grey = random16((17, 19))
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    photo = load_image(path)
    assert photo.bit_depth == 16
    np.testing.assert_array_equal(to_uint16(photo.pixels[..., 1]), grey)


def test_16bit_png_orientation_is_applied(tmp_path: Path) -> None:
    samples = random16((4, 6, 3))
    photo = photo_from_uint16(samples, exif=make_exif(orientation=8))
    back = load_image_bytes(encode_image(photo, "PNG", bit_depth=16))
    np.testing.assert_array_equal(to_uint16(back.pixels), np.rot90(samples))


@needs_tifffile
@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_tiff_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    samples = random16((21, 33, channels), seed=3)
    photo = photo_from_uint16(samples, format="TIFF", exif=make_exif(), icc_profile=SRGB)
    out = save_image(photo, tmp_path / "deep.tif")  # keeps the photo's 16 bits by default
    back = load_image(out)
    assert back.bit_depth == 16 and back.format == "TIFF"
    np.testing.assert_array_equal(to_uint16(back.pixels), samples[..., :3])
    if channels == 4:
        np.testing.assert_array_equal(to_uint16(back.alpha), samples[..., 3])
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(out), samples)


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_16bit_tiff_written_by_tifffile(tmp_path: Path, planar: str) -> None:
    tifffile = pytest.importorskip("tifffile")
    samples = random16((12, 10, 3), seed=5)
    path = tmp_path / "other.tif"
    data = np.moveaxis(samples, -1, 0) if planar == "separate" else samples
    tifffile.imwrite(path, data, photometric="rgb", planarconfig=planar, iccprofile=SRGB)
    photo = load_image(path)
    assert photo.bit_depth == 16 and photo.icc_profile == SRGB and photo.format == "TIFF"
    np.testing.assert_array_equal(to_uint16(photo.pixels), samples)


def test_16bit_tiff_without_tifffile_falls_back_to_8_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = random16((8, 9, 3))
    out = save_image(photo_from_uint16(samples), tmp_path / "deep.tif", bit_depth=16)
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import now raises ImportError
    photo = load_image(out)
    assert photo.bit_depth == 8
    assert np.abs(to_uint16(photo.pixels).astype(int) - samples).max() <= 257


def test_16bit_greyscale_tiff_from_pillow(tmp_path: Path) -> None:
    grey = random16((7, 5), seed=9)
    path = tmp_path / "grey16.tif"
    Image.fromarray(grey).save(path)
    photo = load_image(path)
    assert photo.bit_depth == 16
    np.testing.assert_array_equal(to_uint16(photo.pixels[..., 2]), grey)


def test_16bit_to_8bit_formats_quantises(tmp_path: Path) -> None:
    photo = photo_from_uint16(random16((6, 7, 3)))
    back = load_image(save_image(photo, tmp_path / "small.webp", quality=100, bit_depth=16))
    assert back.bit_depth == 8
    np.testing.assert_array_equal(to_uint8(back.pixels), to_uint8(photo.pixels))
