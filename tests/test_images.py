"""Tests for core.images: formats, metadata, alpha, bad files, atomic saves (16-bit precision:
tests/test_images_16bit.py)."""

from __future__ import annotations

import errno
import importlib.util
import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from instructir_desktop.core.errors import (
    ImageTooLargeError,
    ImageWriteError,
    UnsupportedImageError,
)
from instructir_desktop.core.images import (
    SUPPORTED_EXTENSIONS,
    Photo,
    encode_image,
    format_for_path,
    load_image,
    load_image_bytes,
    save_image,
    to_uint8,
    to_uint16,
)

MAKE = "InstructIR Test Camera"
DATE = "2024:05:01 10:00:00"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
GREY_ICC = SRGB[:16] + b"GRAY" + SRGB[20:]  # only the header's colour space matters here
# Reading 16-bit RGB TIFFs at full precision needs tifffile (Pillow reads them at 8 bits).
needs_tifffile = pytest.mark.skipif(
    importlib.util.find_spec("tifffile") is None, reason="tifffile is not installed"
)


def smooth_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 image: gradients plus mild noise (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.dstack([x / width, y / height, (x + y) / (width + height)]) * 200 + 20
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def make_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[271] = MAKE
    exif[272] = "Model 1"
    if orientation is not None:
        exif[274] = orientation
    exif[0x8769] = {0x9003: DATE}
    return exif.tobytes()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def photo_from_uint16(samples: np.ndarray, **meta: object) -> Photo:
    pixels = samples[..., :3].astype(np.float32) / 65535
    alpha = samples[..., 3].astype(np.float32) / 65535 if samples.shape[2] == 4 else None
    fields = {"exif": None, "icc_profile": None, "format": "PNG", **meta}
    return Photo(pixels=pixels, alpha=alpha, bit_depth=16, **fields)  # type: ignore[arg-type]


def random16(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    samples = np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)
    samples[0, 0] = 0x1234  # low bits set for sure
    return samples


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "options", "min_psnr"),
    [
        (".png", {}, None),
        (".tif", {}, None),
        (".bmp", {}, None),
        (".webp", {"quality": 100}, None),
        (".webp", {"quality": 90}, 30.0),
        (".jpg", {"quality": 95}, 35.0),
        (".jpg", {"quality": 70}, 30.0),
    ],
)
def test_round_trip_each_format(
    tmp_path: Path, suffix: str, options: dict, min_psnr: float
) -> None:
    source = smooth_rgb()
    src_path = tmp_path / "source.png"
    Image.fromarray(source).save(src_path)
    photo = load_image(src_path)
    assert photo.pixels.dtype == np.float32 and photo.pixels.flags["C_CONTIGUOUS"]
    assert photo.pixels.shape == (48, 64, 3) and photo.alpha is None and photo.bit_depth == 8
    out = save_image(photo, tmp_path / f"out{suffix}", **options)
    back = load_image(out)
    assert back.format == format_for_path(out)
    got = to_uint8(back.pixels)
    if min_psnr is None:
        np.testing.assert_array_equal(got, source)
    else:
        assert psnr(got, source) > min_psnr


def test_jpeg_uses_444_subsampling_at_high_quality(tmp_path: Path) -> None:
    from PIL import JpegImagePlugin

    photo = load_image_bytes(encode_image(_plain_photo(), "PNG"))
    high = Image.open(io.BytesIO(encode_image(photo, "JPEG", quality=95)))
    low = Image.open(io.BytesIO(encode_image(photo, "JPEG", quality=60)))
    assert JpegImagePlugin.get_sampling(high) == 0
    assert JpegImagePlugin.get_sampling(low) == 2


def _plain_photo(alpha: bool = False) -> Photo:
    rgb = smooth_rgb().astype(np.float32) / 255
    plane = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64) if alpha else None
    return Photo(pixels=rgb, alpha=plane, bit_depth=8, exif=None, icc_profile=None, format="PNG")


def test_webp_quality_100_is_lossless_and_lower_is_smaller() -> None:
    photo = _plain_photo()
    lossless = encode_image(photo, "WEBP", quality=100)
    lossy = encode_image(photo, "WEBP", quality=80)
    assert len(lossy) < len(lossless)
    np.testing.assert_array_equal(
        to_uint8(load_image_bytes(lossless).pixels), to_uint8(photo.pixels)
    )


# --- EXIF orientation and metadata -------------------------------------------------------


def test_jpeg_orientation_6_is_applied_and_reset(tmp_path: Path) -> None:
    source = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 tall
    source[:5, :5] = (255, 0, 0)  # red marker top-left of the stored pixels
    path = tmp_path / "rotated.jpg"
    Image.fromarray(source).save(path, exif=make_exif(orientation=6), quality=95)
    photo = load_image(path)
    assert (photo.width, photo.height) == (20, 40)  # rotated 90 degrees clockwise
    marker = to_uint8(photo.pixels)[:5, -5:]  # top-left goes to top-right
    assert marker[..., 0].mean() > 200 and marker[..., 1].mean() < 60
    kept = Image.Exif()
    kept.load(photo.exif)
    assert kept[274] == 1 and kept[271] == MAKE
    out = save_image(photo, tmp_path / "out.jpg")
    saved = Image.open(out)
    assert saved.size == (20, 40)
    exif = saved.getexif()
    assert exif[274] == 1 and exif[271] == MAKE
    assert exif.get_ifd(0x8769)[0x9003] == DATE
    assert load_image(out).width == 20  # not rotated a second time


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "JPEG"])
def test_every_orientation_matches_pillow(orientation: int, fmt: str) -> None:
    source = smooth_rgb(6, 9, seed=orientation)
    buf = io.BytesIO()
    options = {"lossless": True} if fmt == "WEBP" else {"quality": 100} if fmt == "JPEG" else {}
    Image.fromarray(source).save(buf, fmt, exif=make_exif(orientation), **options)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    photo = load_image_bytes(buf.getvalue())
    np.testing.assert_array_equal(to_uint8(photo.pixels), expected)
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif[274] == 1 and exif[271] == MAKE


@pytest.mark.parametrize(
    ("suffix", "bit_depth"),
    [
        (".jpg", 8),
        (".png", 8),
        (".tif", 8),
        (".webp", 8),
        (".png", 16),
        pytest.param(".tif", 16, marks=needs_tifffile),
    ],
)
def test_exif_and_icc_are_carried_to_exports(tmp_path: Path, suffix: str, bit_depth: int) -> None:
    src = tmp_path / "source.jpg"
    Image.fromarray(smooth_rgb()).save(src, exif=make_exif(orientation=1), icc_profile=SRGB)
    photo = load_image(src)
    assert photo.icc_profile == SRGB
    out = save_image(photo, tmp_path / f"out{suffix}", bit_depth=bit_depth)
    with Image.open(out) as saved:
        assert saved.info.get("icc_profile") == SRGB
        exif = saved.getexif()
        assert exif[271] == MAKE
        assert exif.get_ifd(0x8769)[0x9003] == DATE
    back = load_image(out)
    assert back.icc_profile == SRGB and back.bit_depth == bit_depth
    exif = Image.Exif()
    exif.load(back.exif)
    assert exif[271] == MAKE


def test_formats_without_metadata_or_alpha_still_save(tmp_path: Path) -> None:
    photo = _plain_photo(alpha=True)
    photo.exif, photo.icc_profile = make_exif(), SRGB
    out = save_image(photo, tmp_path / "out.bmp")
    back = load_image(out)
    assert back.alpha is None and back.exif is None and back.format == "BMP"


# --- alpha and colour modes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "options"), [(".png", {}), (".webp", {"quality": 100}), (".tif", {})]
)
def test_alpha_is_kept(tmp_path: Path, suffix: str, options: dict) -> None:
    photo = _plain_photo(alpha=True)
    back = load_image(save_image(photo, tmp_path / f"alpha{suffix}", **options))
    assert back.alpha is not None and back.alpha.dtype == np.float32
    np.testing.assert_array_equal(to_uint8(back.alpha), to_uint8(photo.alpha))
    np.testing.assert_array_equal(to_uint8(back.pixels), to_uint8(photo.pixels))


def test_jpeg_drops_alpha_without_compositing(tmp_path: Path) -> None:
    photo = _plain_photo(alpha=True)
    photo.alpha[:] = 0.0  # fully transparent: compositing over white would give white
    back = load_image(save_image(photo, tmp_path / "flat.jpg", quality=95))
    assert back.alpha is None
    assert psnr(to_uint8(back.pixels), to_uint8(photo.pixels)) > 35


@pytest.mark.parametrize(
    ("mode", "has_alpha"), [("L", False), ("LA", True), ("P", False), ("CMYK", False), ("1", False)]
)
def test_other_modes_become_rgb(tmp_path: Path, mode: str, has_alpha: bool) -> None:
    rgb = Image.fromarray(smooth_rgb(10, 12))
    im = rgb.convert(mode) if mode != "LA" else rgb.convert("L").convert("LA")
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    im.save(path)
    photo = load_image(path)
    assert photo.pixels.shape == (10, 12, 3) and (photo.alpha is not None) == has_alpha
    expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(to_uint8(photo.pixels), expected)
    assert photo.grey == (mode in ("L", "LA", "1"))


# --- greyscale photos stay greyscale -----------------------------------------------------


def _grey_photo(tmp_path: Path, mode: str) -> Photo:
    grey = Image.fromarray(smooth_rgb(10, 12)).convert("L")
    im = grey.convert("LA") if mode == "LA" else grey
    if mode == "LA":
        im.putalpha(Image.fromarray(np.arange(120, dtype=np.uint8).reshape(10, 12)))
    path = tmp_path / f"grey-{mode}.png"
    im.save(path, icc_profile=GREY_ICC)
    return load_image(path)


@pytest.mark.parametrize(
    ("suffix", "mode", "expected"),
    [
        (".png", "L", "L"), (".png", "LA", "LA"), (".tif", "LA", "LA"), (".jpg", "L", "L"),
        (".jpg", "LA", "L"), (".bmp", "L", "L"), (".webp", "L", "RGB"),
    ],
)  # fmt: skip
def test_greyscale_photos_are_exported_greyscale(
    tmp_path: Path, suffix: str, mode: str, expected: str
) -> None:
    photo = _grey_photo(tmp_path, mode)
    assert photo.grey and photo.icc_profile == GREY_ICC
    tinted = photo.pixels * np.array([1.0, 0.9, 0.8], np.float32)  # e.g. a model's colour cast
    out = save_image(photo.with_pixels(tinted), tmp_path / f"out{suffix}", quality=100)
    with Image.open(out) as im:
        assert im.mode == expected
        if expected != "RGB":
            luma = tinted @ np.array([0.299, 0.587, 0.114], np.float32)
            got = np.asarray(im.getchannel(0), dtype=np.float32) / 255.0
            assert np.abs(got - luma).max() <= (2 if suffix == ".jpg" else 0.51) / 255.0
            assert (im.info.get("icc_profile") == GREY_ICC) == (suffix in (".png", ".tif", ".jpg"))
        else:
            assert im.info.get("icc_profile") is None  # a grey profile cannot describe RGB
    if mode == "LA" and expected == "LA":
        np.testing.assert_array_equal(to_uint8(load_image(out).alpha), to_uint8(photo.alpha))


@pytest.mark.parametrize(
    ("suffix", "channels"), [(".png", 1), (".png", 2), (".tif", 1), (".tif", 2)]
)
def test_16bit_greyscale_round_trip_is_exact(tmp_path: Path, suffix: str, channels: int) -> None:
    if suffix == ".tif":
        pytest.importorskip("tifffile")
    samples = random16((9, 11, channels), seed=channels)
    rgb = np.repeat(samples[..., :1], 3, axis=2)
    photo = photo_from_uint16(np.dstack([rgb, samples[..., 1:]]), grey=True)
    out = save_image(photo, tmp_path / f"deep{suffix}")
    back = load_image(out)
    assert back.grey and back.bit_depth == 16
    np.testing.assert_array_equal(to_uint16(back.pixels), rgb)
    if channels == 2:
        np.testing.assert_array_equal(to_uint16(back.alpha), samples[..., 1])
    if suffix == ".png":
        assert out.read_bytes()[24:26] == bytes([16, 0 if channels == 1 else 4])


def test_palette_transparency_becomes_alpha(tmp_path: Path) -> None:
    im = Image.fromarray(smooth_rgb(8, 8)).convert("P", palette=Image.Palette.ADAPTIVE)
    im.info["transparency"] = 0
    path = tmp_path / "pal.png"
    im.save(path, transparency=0)
    photo = load_image(path)
    assert photo.alpha is not None
    np.testing.assert_array_equal(photo.alpha == 0, np.asarray(im) == 0)


# --- bad files ---------------------------------------------------------------------------


def _png_claiming(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's first bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(100_000, 100_000))
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="100000 x 100000"):
        load_image(path)
    assert time.perf_counter() - start < 1.0
    assert Image.MAX_IMAGE_PIXELS == before  # only changed during the call


@pytest.mark.parametrize("max_pixels", [10_000, 50_000, 89_000])
def test_small_limit_refuses_real_image(tmp_path: Path, max_pixels: int) -> None:
    # 90,000 pixels: over 2x the first limit (Pillow error), over the second (Pillow warning),
    # just over the third (our own check).
    before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "big.png"
    Image.new("1", (300, 300)).save(path)
    with pytest.raises(ImageTooLargeError, match="300 x 300"):
        load_image(path, max_pixels=max_pixels)
    assert Image.MAX_IMAGE_PIXELS == before
    assert load_image(path, max_pixels=90_000).width == 300


def test_limit_above_pillows_default_is_allowed(tmp_path: Path) -> None:
    # 90 MP is under our 200 MP limit but over Pillow's default (which would warn): it is not
    # refused as too large, but as damaged, since no pixel data follows.
    path = tmp_path / "claims.png"
    path.write_bytes(_png_claiming(9_500, 9_500, depth=1, colour=0))
    with pytest.raises(UnsupportedImageError, match="damaged") as info:
        load_image(path)
    assert not isinstance(info.value, ImageTooLargeError)


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb(64, 64)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_bytes(deep: bool = False) -> bytes:
    if deep:
        return encode_image(photo_from_uint16(random16((40, 40, 3))), "PNG", bit_depth=16)
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb(64, 64)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.jpg", b"", "empty"),
        ("notes.jpg", b"These are my holiday notes, not a photo.\n", "not a photo"),
        ("half.jpg", _jpeg_bytes()[: len(_jpeg_bytes()) // 2], "damaged or truncated"),
        ("half.png", _png_bytes()[: len(_png_bytes()) // 2], "damaged or truncated"),
        ("half16.png", _png_bytes(True)[: len(_png_bytes(True)) // 2], "damaged or truncated"),
        ("flipped.png", _png_bytes()[:100] + b"\xff" * 50 + _png_bytes()[150:], "damaged"),
        ("flip16.png", _png_bytes(True)[:100] + b"\xff" * 50 + _png_bytes(True)[150:], "damaged"),
        ("header.tif", b"II*\x00\x08\x00\x00\x00\x05", "damaged or truncated"),
    ],
)
@pytest.mark.filterwarnings("error")
def test_bad_files_are_refused(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnsupportedImageError, match=message) as info:
        load_image(path)
    assert f"'{name}'" in str(info.value)
    with pytest.raises(UnsupportedImageError, match=name):
        load_image_bytes(data, name=name)


@pytest.mark.parametrize(
    ("dtype", "shape", "what"),
    [
        ("float32", (6, 5, 3), "32-bit floating point"),
        ("float32", (6, 5, 4), "32-bit floating point"),
        ("float16", (6, 5), "16-bit floating point"),
        ("float16", (6, 5, 3), "16-bit floating point"),
        ("float64", (6, 5), "64-bit floating point"),
        ("uint32", (6, 5, 3), "unsigned 32-bit integer"),
        ("int16", (6, 5, 3), "signed 16-bit integer"),
    ],
)
def test_valid_tiffs_of_unsupported_sample_formats(
    tmp_path: Path, dtype: str, shape: tuple[int, ...], what: str
) -> None:
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "scan.tif"
    value = 0.5 if dtype.startswith("float") else 7
    photometric = "rgb" if len(shape) == 3 else "minisblack"
    extra = {"extrasamples": ["unassalpha"]} if shape[-1] == 4 else {}
    tifffile.imwrite(path, np.full(shape, value, dtype), photometric=photometric, **extra)
    data = path.read_bytes()
    for load in (lambda: load_image(path), lambda: load_image_bytes(data, name="scan.tif")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UnsupportedImageError) as info:
                load()
        message = str(info.value)
        assert type(info.value) is UnsupportedImageError  # the CLI exits as for any bad input
        assert message.startswith("'scan.tif' is a valid TIFF file, but its sample format")
        assert f"({what}) is not supported" in message and "damaged" not in message
        assert "Convert it to an 8- or 16-bit TIFF or PNG" in message
    assert path.read_bytes() == data  # the user's file is untouched
    # The same file with its last pixels cut off (the tags intact) is damaged, not "valid".
    with tifffile.TiffFile(path) as tif:  # tifffile writes the pixels last
        page = tif.pages.first
        assert page.dataoffsets[-1] + page.databytecounts[-1] == len(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnsupportedImageError, match="'cut.tif' is damaged or truncated"):
            load_image_bytes(data[:-8], name="cut.tif")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImageError, match="'gone.jpg' was not found"):
        load_image(tmp_path / "gone.jpg")
    with pytest.raises(UnsupportedImageError, match="folder"):
        load_image(tmp_path)


# --- saving ------------------------------------------------------------------------------


def test_failed_save_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = _plain_photo()
    target = tmp_path / "out.png"

    def disk_full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ImageWriteError, match="disk is full"):
        save_image(photo, target)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.jpg"
    target.write_bytes(b"previous export")

    def denied(fd: int) -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "fsync", denied)
    with pytest.raises(ImageWriteError, match="permission denied"):
        save_image(_plain_photo(), target)
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]


def test_save_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="does not exist"):
        save_image(_plain_photo(), tmp_path / "nowhere" / "out.png")


def test_saved_file_has_normal_permissions(tmp_path: Path) -> None:
    out = save_image(_plain_photo(), tmp_path / "out.png")
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_refuses_to_overwrite_the_original(tmp_path: Path) -> None:
    path = tmp_path / "original.png"
    Image.fromarray(smooth_rgb()).save(path)
    before = path.read_bytes()
    photo = load_image(path)
    assert photo.path == path
    for same in (path, tmp_path / "." / "original.png"):
        with pytest.raises(ImageWriteError, match="would overwrite the original"):
            save_image(photo.with_pixels(1 - photo.pixels), same)
    assert path.read_bytes() == before
    save_image(photo.with_pixels(1 - photo.pixels), path, overwrite_source=True)
    np.testing.assert_array_equal(to_uint8(load_image(path).pixels), 255 - smooth_rgb())


def test_unknown_format_and_bit_depth() -> None:
    photo = _plain_photo()
    with pytest.raises(ImageWriteError, match=".xyz"):
        format_for_path("photo.xyz")
    with pytest.raises(ImageWriteError, match="12"):
        encode_image(photo, "PNG", bit_depth=12)


# --- helpers and the Photo type ----------------------------------------------------------


def test_format_for_path_and_extensions() -> None:
    assert format_for_path("a.jpg") == format_for_path("B.JPEG") == "JPEG"
    assert format_for_path(Path("x.tif")) == format_for_path("x.tiff") == "TIFF"
    assert format_for_path("x.webp") == "WEBP" and format_for_path("x.png") == "PNG"
    assert format_for_path("x.bmp") == "BMP"
    for ext in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"):
        assert ext in SUPPORTED_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in SUPPORTED_EXTENSIONS)


def test_to_uint_helpers_round_and_clip() -> None:
    values = np.array([-0.5, 0.0, 0.51 / 255, 0.49 / 255, 1.0, 1.7, np.nan], np.float32)
    assert to_uint8(values).tolist() == [0, 0, 1, 0, 255, 255, 0]
    assert to_uint16(values).tolist()[:2] == [0, 0] and to_uint16(values)[4] == 65535
    exact = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(to_uint16(exact.astype(np.float32) / 65535), exact)


def test_photo_properties_and_with_pixels() -> None:
    photo = _plain_photo(alpha=True)
    photo.exif, photo.icc_profile = make_exif(), SRGB
    assert (photo.width, photo.height) == (64, 48)
    assert photo.megapixels == pytest.approx(64 * 48 / 1e6)
    same = photo.with_pixels(photo.pixels.astype(np.float64) * 0.5)
    assert same.pixels.dtype == np.float32 and same.exif == photo.exif
    assert same.icc_profile == SRGB and same.alpha is photo.alpha
    bigger = photo.with_pixels(np.zeros((96, 128, 3), np.float32))
    assert bigger.alpha is not None and bigger.alpha.shape == (96, 128)
    with pytest.raises(ValueError):
        photo.with_pixels(np.zeros((4, 4), np.float32))


@pytest.mark.parametrize(
    ("suffix", "frames"), [(".gif", 3), (".webp", 3), (".tif", 2), (".png", 1)]
)
def test_animations_and_multi_page_files_count_their_frames(
    tmp_path: Path, suffix: str, frames: int
) -> None:
    first = Image.fromarray(smooth_rgb(16, 24))
    path = tmp_path / f"many{suffix}"
    flips = [Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM]
    more = [first.transpose(f) for f in flips[: frames - 1]]
    first.save(path, save_all=frames > 1, append_images=more)
    photo = load_image(path)
    assert photo.frames == frames and photo.pixels.shape == (16, 24, 3)
    if suffix in (".tif", ".png"):  # lossless; GIF quantises, WebP is lossy
        np.testing.assert_array_equal(to_uint8(photo.pixels), np.asarray(first))


def test_a_png_whose_header_claims_more_pixels_than_it_can_hold_is_damaged(tmp_path):
    """A whole zlib stream that is far too short: Pillow fills the missing rows with black
    without a word (a 69-byte file would become a 1 x 100,000 photo to restore)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 100_000, 8, 2, 0, 0, 0)  # 1 x 100000, 8-bit RGB
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    data += chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")
    (tmp_path / "thin.png").write_bytes(data)
    with pytest.raises(UnsupportedImageError, match="far more than its size can contain"):
        load_image(tmp_path / "thin.png")
    # A real photo of one flat colour compresses about 1000:1 and opens.
    for mode in ("RGB", "P", "1"):
        Image.new(mode, (3000, 2000)).save(tmp_path / f"flat-{mode}.png", optimize=True)
        assert load_image(tmp_path / f"flat-{mode}.png").width == 3000
