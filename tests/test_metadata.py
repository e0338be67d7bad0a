"""Metadata beyond EXIF and ICC in core.images: the print resolution (dpi), the XMP packet
(ratings, keywords) and a JPEG's comment travel from the photo to every export that can hold
them, upright (tiff:Orientation 1, x and y resolution swapped with a quarter turn), and are
dropped where the format cannot; a lossless WebP stays lossless as WebP. Files are written
and read back with Pillow and tifffile, independently of core's own readers."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import test_images
from PIL import Image, PngImagePlugin

from instructir_desktop.core.images import (
    encode_image,
    load_image,
    load_image_bytes,
    save_image,
    to_uint8,
)
from instructir_desktop.core.png16 import png_metadata

smooth_rgb = test_images.smooth_rgb
make_exif = test_images.make_exif
random16 = test_images.random16
photo_from_uint16 = test_images.photo_from_uint16
needs_tifffile = test_images.needs_tifffile
SRGB = test_images.SRGB
MAKE = test_images.MAKE


def lightroom_xmp(orientation: int | None = None, *, element: bool = False) -> bytes:
    """An XMP packet like Lightroom's: a star rating, keywords, padding, maybe an orientation."""
    attribute = f' tiff:Orientation="{orientation}"' if orientation and not element else ""
    child = f"<tiff:Orientation>{orientation}</tiff:Orientation>" if orientation and element else ""
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        f'   xmp:Rating="4"{attribute}>\n'
        f"   {child}\n"
        "   <dc:subject><rdf:Bag><rdf:li>Île de Ré</rdf:li><rdf:li>harbour</rdf:li>"
        "</rdf:Bag></dc:subject>\n"
        "  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n" + " " * 200 + '\n<?xpacket end="w"?>'
    )
    return body.encode("utf-8")


XMP = lightroom_xmp()
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
COMMENT = b"Shot on the harbour wall, 2024"


def lightroom_jpeg(path: Path, *, dpi=(300, 300), xmp: bytes = XMP, orientation: int = 1) -> Path:
    """A JPEG as Lightroom exports it: dpi in JFIF, EXIF, ICC, an XMP packet and a comment."""
    Image.fromarray(smooth_rgb()).save(
        path,
        quality=95,
        dpi=dpi,
        exif=make_exif(orientation=orientation),
        icc_profile=SRGB,
        xmp=xmp,
        comment=COMMENT,
    )
    return path


def _rating(xmp: bytes) -> str | None:
    """xmp:Rating of a packet, parsed as XML (it must still be well-formed)."""
    description = ElementTree.fromstring(xmp).find(f".//{{{RDF}}}Description")
    return None if description is None else description.get(f"{{{XMP_NS}}}Rating")


def _png_text_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of a PNG's chunks, read independently of core.png16."""
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _webp_bitstream(data: bytes) -> bytes:
    """The first VP8/VP8L chunk type of a WebP file, walking its RIFF chunks."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if kind in (b"VP8 ", b"VP8L"):
            return kind
        pos += 8 + (16 if kind == b"ANMF" else size + (size & 1))
    raise AssertionError("no VP8/VP8L chunk")


# --- JPEG to JPEG: what QA saw -----------------------------------------------------------


def test_jpeg_keeps_dpi_xmp_and_comment(tmp_path: Path) -> None:
    photo = load_image(lightroom_jpeg(tmp_path / "lr.jpg"))
    assert photo.dpi == (300.0, 300.0) and photo.xmp == XMP and photo.comment == COMMENT
    out = save_image(photo.with_pixels(photo.pixels * 0.9), tmp_path / "out.jpg")
    with Image.open(out) as im:
        assert im.info["dpi"] == (300, 300) and im.info["jfif_unit"] == 1
        assert im.info["xmp"] == XMP
        assert im.info["comment"] == COMMENT
        assert _rating(im.info["xmp"]) == "4"
        assert im.info["icc_profile"] == SRGB and im.getexif()[271] == MAKE  # as before


# --- every output format -----------------------------------------------------------------


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_gets_phys_and_itxt_xmp(tmp_path: Path, bit_depth: int) -> None:
    photo = load_image(lightroom_jpeg(tmp_path / "lr.jpg", dpi=(300, 240)))
    out = save_image(photo, tmp_path / "out.png", bit_depth=bit_depth)
    data = out.read_bytes()
    assert data[24] == bit_depth
    chunks = dict(_png_text_chunks(data))
    x, y, unit = struct.unpack(">IIB", chunks[b"pHYs"])
    assert (round(x * 0.0254), round(y * 0.0254), unit) == (300, 240, 1)
    # iTXt: keyword, uncompressed, no language, no translated keyword, the packet as it was
    assert chunks[b"iTXt"] == b"XML:com.adobe.xmp\0\0\0\0\0" + XMP
    assert b"tEXt" not in chunks and b"zTXt" not in chunks  # the JPEG comment is not carried
    with Image.open(out) as im:
        im.load()
        assert im.info["dpi"] == pytest.approx((300, 240), abs=0.02)
        assert im.info["xmp"] == XMP
    back = load_image(out)
    assert back.dpi == (300.0, 240.0) and back.xmp == XMP and back.comment is None


@needs_tifffile
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_tiff_gets_resolution_and_xmp_tag(tmp_path: Path, bit_depth: int) -> None:
    import tifffile

    photo = load_image(lightroom_jpeg(tmp_path / "lr.jpg", dpi=(300, 240)))
    out = save_image(photo, tmp_path / "out.tif", bit_depth=bit_depth)
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages.first.tags
        assert tags["BitsPerSample"].value in (bit_depth, (bit_depth,) * 3)
        assert tags["XResolution"].value == (300, 1)
        assert tags["YResolution"].value == (240, 1)
        assert tags["ResolutionUnit"].value == 2  # inch, not NONE
        assert bytes(tags["XMP"].value) == XMP
    with Image.open(out) as im:
        assert im.info["dpi"] == (300, 240) and im.info["xmp"] == XMP
        assert im.info["icc_profile"] == SRGB and im.getexif()[271] == MAKE
    back = load_image(out)
    assert back.dpi == (300.0, 240.0) and back.xmp == XMP and back.bit_depth == bit_depth


@pytest.mark.parametrize("quality", [80, 100])
def test_webp_gets_xmp_but_no_resolution(tmp_path: Path, quality: int) -> None:
    photo = load_image(lightroom_jpeg(tmp_path / "lr.jpg"))
    out = save_image(photo, tmp_path / "out.webp", quality=quality)
    data = out.read_bytes()
    assert b"XMP " in data and XMP in data
    with Image.open(out) as im:
        assert im.info["xmp"] == XMP and "dpi" not in im.info and "comment" not in im.info
        assert im.info["icc_profile"] == SRGB
    back = load_image(out)
    assert back.xmp == XMP and back.dpi is None


def test_bmp_keeps_the_resolution_only(tmp_path: Path) -> None:
    photo = load_image(lightroom_jpeg(tmp_path / "lr.jpg", dpi=(300, 240)))
    out = save_image(photo, tmp_path / "out.bmp")
    with Image.open(out) as im:
        assert im.info["dpi"] == pytest.approx((300, 240), abs=0.02)
    assert XMP not in out.read_bytes() and COMMENT not in out.read_bytes()


# --- other sources -----------------------------------------------------------------------


@pytest.mark.parametrize("after_idat", [False, True])
def test_png_source_resolution_and_xmp(tmp_path: Path, after_idat: bool) -> None:
    src = tmp_path / "src.png"
    if after_idat:  # compressed, after the pixels (Pillow meets it only while decoding)
        body = b"XML:com.adobe.xmp\0\1\0\0\0" + zlib.compress(XMP)
        crc = struct.pack(">I", zlib.crc32(b"iTXt" + body))
        itxt = struct.pack(">I", len(body)) + b"iTXt" + body + crc
        buf = io.BytesIO()
        Image.fromarray(smooth_rgb()).save(buf, "PNG", dpi=(350, 350))
        data = buf.getvalue()
        src.write_bytes(data[:-12] + itxt + data[-12:])  # just before IEND
    else:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode("utf-8"))
        Image.fromarray(smooth_rgb()).save(src, dpi=(350, 350), pnginfo=info)
    data = src.read_bytes()
    assert (data.index(b"iTXt") > data.index(b"IDAT")) == after_idat
    photo = load_image(src)
    assert photo.dpi == (350.0, 350.0) and photo.xmp == XMP
    with src.open("rb") as fp:
        assert png_metadata(fp) == (pytest.approx((350, 350), abs=0.02), XMP)
    with Image.open(save_image(photo, tmp_path / "out.jpg")) as im:
        assert im.info["dpi"] == (350, 350) and im.info["xmp"] == XMP


def test_16bit_png_source_resolution_and_xmp(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode("utf-8"))
    src = tmp_path / "grey16.png"
    Image.fromarray(random16((9, 7))).save(src, dpi=(600, 600), pnginfo=info)
    photo = load_image(src)
    assert photo.bit_depth == 16 and photo.dpi == (600.0, 600.0) and photo.xmp == XMP


@needs_tifffile
@pytest.mark.parametrize(
    ("unit", "resolution", "dpi"),
    [("INCH", (300, 300), (300.0, 300.0)), ("CENTIMETER", (100, 50), (254.0, 127.0))],
)
@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_tiff_source_resolution_and_xmp(
    tmp_path: Path, unit: str, resolution: tuple, dpi: tuple, planar: str
) -> None:
    import tifffile

    samples = random16((12, 10, 3), seed=7)
    data = np.moveaxis(samples, -1, 0) if planar == "separate" else samples
    src = tmp_path / "src.tif"
    tifffile.imwrite(
        src,
        data,
        photometric="rgb",
        planarconfig=planar,
        resolution=resolution,
        resolutionunit=unit,
        extratags=[(700, 1, len(XMP), XMP, True)],
    )
    photo = load_image(src)  # planar 16-bit RGB: only tifffile decodes it
    assert photo.bit_depth == 16 and photo.dpi == dpi and photo.xmp == XMP
    with Image.open(save_image(photo, tmp_path / "out.png")) as im:
        im.load()
        assert im.info["dpi"] == pytest.approx(dpi, abs=0.02) and im.info["xmp"] == XMP


def test_no_resolution_is_invented(tmp_path: Path) -> None:
    # Pillow reads 72 dpi into a JPEG whose EXIF has no resolution, and 1 dpi into a TIFF
    # without resolution tags: neither is the photo's, and neither may reach the export.
    jpeg = tmp_path / "plain.jpg"
    Image.fromarray(smooth_rgb()).save(jpeg, exif=make_exif())
    tiff = tmp_path / "plain.tif"
    Image.fromarray(smooth_rgb()).save(tiff)
    for src in (jpeg, tiff):
        photo = load_image(src)
        assert photo.dpi is None and photo.xmp is None and photo.comment is None
        data = save_image(photo, tmp_path / f"{src.stem}.png").read_bytes()
        assert b"pHYs" not in data and b"iTXt" not in data
    with Image.open(save_image(load_image(tiff), tmp_path / "again.tif")) as im:
        assert 282 not in im.tag_v2


# --- upright: orientation in XMP and resolution ------------------------------------------


@pytest.mark.parametrize("element", [False, True])
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_xmp_orientation_agrees_with_upright_pixels(
    tmp_path: Path, suffix: str, element: bool
) -> None:
    xmp = lightroom_xmp(orientation=6, element=element)
    src = lightroom_jpeg(tmp_path / "turned.jpg", dpi=(300, 200), xmp=xmp, orientation=6)
    photo = load_image(src)
    assert (photo.width, photo.height) == (48, 64)  # turned upright
    assert photo.dpi == (200.0, 300.0)  # x and y follow the pixels
    out = save_image(photo, tmp_path / f"out{suffix}")
    with Image.open(out) as im:
        im.load()
        assert im.getexif().get(274, 1) == 1
        written = im.info["xmp"]
        if suffix != ".webp":
            assert im.info["dpi"] == pytest.approx((200, 300), abs=0.02)
    expected = xmp.replace(b'Orientation="6"', b'Orientation="1"').replace(
        b"<tiff:Orientation>6<", b"<tiff:Orientation>1<"
    )
    assert written == expected and len(written) == len(xmp) and b"Orientation" in written
    assert b"6" not in written.split(b"Orientation")[1][:4]
    assert _rating(written) == "4"


# --- what a format cannot hold is dropped ------------------------------------------------


def test_xmp_too_long_for_one_jpeg_segment_is_dropped(tmp_path: Path) -> None:
    photo = load_image_bytes(encode_image(test_images._plain_photo(), "PNG"))
    photo.xmp = XMP + b" " * 70_000  # only "extended XMP" could hold it
    photo.dpi, photo.comment = (300.0, 300.0), COMMENT
    with Image.open(save_image(photo, tmp_path / "out.jpg")) as im:
        assert "xmp" not in im.info and im.info["dpi"] == (300, 300)
        assert im.info["comment"] == COMMENT
    data = save_image(photo, tmp_path / "out.png").read_bytes()
    assert photo.xmp in data and COMMENT not in data  # PNG holds it; the comment is JPEG's


# --- lossless WebP stays lossless --------------------------------------------------------


@pytest.mark.parametrize("alpha", [False, True])
@pytest.mark.parametrize("animated", [False, True])
def test_lossless_webp_stays_lossless(tmp_path: Path, alpha: bool, animated: bool) -> None:
    first = Image.fromarray(smooth_rgb())
    if alpha:
        first.putalpha(Image.fromarray(np.arange(48 * 64, dtype=np.uint8).reshape(48, 64)))
    src = tmp_path / "src.webp"
    more = {"save_all": True, "append_images": [first.transpose(0)]} if animated else {}
    first.save(src, lossless=True, xmp=XMP, **more)
    assert _webp_bitstream(src.read_bytes()) == b"VP8L"
    photo = load_image(src)
    assert photo.lossless_webp and photo.xmp == XMP
    restored = photo.with_pixels(photo.pixels)  # --strength 0: the pixels come back as they were
    for quality in (95, 80):  # the CLI's default, and a lower setting: both ignored
        out = save_image(restored, tmp_path / f"out{quality}.webp", quality=quality)
        assert _webp_bitstream(out.read_bytes()) == b"VP8L"
        back = load_image(out)
        np.testing.assert_array_equal(to_uint8(back.pixels), to_uint8(photo.pixels))
        if alpha:
            np.testing.assert_array_equal(to_uint8(back.alpha), to_uint8(photo.alpha))
    # other formats are unaffected; a JPEG is as lossy as ever
    assert not load_image(save_image(photo, tmp_path / "out.png")).lossless_webp


def test_lossy_webp_stays_lossy(tmp_path: Path) -> None:
    src = tmp_path / "lossy.webp"
    Image.fromarray(smooth_rgb()).save(src, quality=90)
    assert _webp_bitstream(src.read_bytes()) == b"VP8 "
    photo = load_image(src)
    assert not photo.lossless_webp
    out = save_image(photo, tmp_path / "out.webp", quality=90)
    assert _webp_bitstream(out.read_bytes()) == b"VP8 "
    out = save_image(photo, tmp_path / "max.webp", quality=100)  # 100 still means lossless
    assert _webp_bitstream(out.read_bytes()) == b"VP8L"


def test_metadata_survives_with_pixels_and_16bit_png_round_trip() -> None:
    photo = photo_from_uint16(random16((6, 5, 3)), xmp=XMP, dpi=(300.0, 300.0))
    assert photo.with_pixels(photo.pixels).xmp == XMP
    data = encode_image(photo, "PNG", bit_depth=16)
    back = load_image_bytes(data)
    assert back.bit_depth == 16 and back.xmp == XMP and back.dpi == (300.0, 300.0)
    # the chunk walk stops at a cut-off file with what it found before the cut
    with io.BytesIO(data[: data.index(b"IDAT") + 20]) as fp:
        assert png_metadata(fp) == ((pytest.approx(300, abs=0.02),) * 2, XMP)
    with io.BytesIO(b"not a png") as fp:
        assert png_metadata(fp) == (None, None)
