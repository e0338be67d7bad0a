"""Photo loading and saving with Pillow.

Keeps what a photographer cares about: EXIF orientation is applied (and reset to 1 in the kept
EXIF and XMP), EXIF and ICC bytes, the XMP packet (ratings, keywords), the print resolution
(dpi) and a JPEG's comment travel to every export that can hold them (and are dropped where it
cannot), a lossless WebP stays lossless as WebP, alpha passes through as its own plane, and
16-bit PNG/TIFF keep 16 bits (``core.png16`` and ``core.tiff16``: Pillow only handles 8-bit
RGB). Camera RAW files are developed by ``core.rawfiles`` and never written.
``core.photometa`` reads and writes the metadata; ``core.imagewrite`` puts the encoded bytes
on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError, features

from instructir_desktop.core.errors import (
    ImageTooLargeError,
    ImageWriteError,
    InstructIRError,
    UnsupportedImageError,
)
from instructir_desktop.core.imagewrite import same_file, write_image_file
from instructir_desktop.core.memory import check_photo_memory
from instructir_desktop.core.photometa import (
    ORIENTATION_TAG,
    read_extras,
    reset_orientation,
    tiff_only_extras,
    upright_xmp,
    with_exif_header,
    xmp_save_options,
)
from instructir_desktop.core.png16 import (
    PNG_SIGNATURE,
    encode_png16,
    read_png16,
)
from instructir_desktop.core.rawfiles import RAW_EXTENSIONS, develop, is_raw_name, raw_size
from instructir_desktop.core.tiff16 import (
    encode_tiff16,
    load_tiff_only,
    read_tiff16,
    tiff_exif,
    unreadable_samples,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 200_000_000

# pillow-heif reads and writes HEIC; pi-heif (a dependency: the same decoder without the
# encoder, so without its GPL part) reads it.
_HEIF_AVAILABLE = importlib.util.find_spec("pillow_heif") is not None
_HEIF_READABLE = _HEIF_AVAILABLE or importlib.util.find_spec("pi_heif") is not None
_AVIF_AVAILABLE = "avif" in features.get_supported_modules()  # Pillow >= 11.2
_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP",
    **({".heic": "HEIF", ".heif": "HEIF"} if _HEIF_AVAILABLE else {}),
    **({".avif": "AVIF"} if _AVIF_AVAILABLE else {}),
}  # fmt: skip
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_EXTENSION_FORMATS)  # read and written
# Read only: camera RAW files are developed when opened (``core.rawfiles``).
READABLE_EXTENSIONS: tuple[str, ...] = (
    *SUPPORTED_EXTENSIONS,
    *((".heic", ".heif") if _HEIF_READABLE and not _HEIF_AVAILABLE else ()),
    *RAW_EXTENSIONS,
)
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "HEIC": "HEIF", "MPO": "JPEG"}
_METADATA_FORMATS = {"JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF"}
_ALPHA_FORMATS = {"PNG", "TIFF", "WEBP", "HEIF", "AVIF"}
_GREY_FORMATS = {"PNG", "TIFF", "JPEG", "BMP"}
_DPI_FORMATS = {"JPEG", "PNG", "TIFF", "BMP"}  # WebP, HEIF and AVIF state no resolution
_XMP_FORMATS = {"JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF"}
_JPEG_COMMENT_LIMIT = 65533  # one COM segment
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as Pillow's "L"
_OPEN_LOCK = threading.Lock()
_heif_registered = False
_heif_tried = False


@dataclass(eq=False)
class Photo:
    """A decoded photo: float RGB pixels, an optional alpha plane and the source metadata."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    exif: bytes | None  # "Exif\0\0" + TIFF structure, Orientation already reset to 1
    icc_profile: bytes | None
    format: str
    path: Path | None = None
    grey: bool = False  # a greyscale source: exported as greyscale (luma of the RGB pixels)
    frames: int = 1  # an animation or multi-page file: only the first frame is edited
    dpi: tuple[float, float] | None = None  # print resolution (x, y) of the upright pixels
    xmp: bytes | None = None  # the XMP packet (ratings, keywords...), tiff:Orientation reset to 1
    comment: bytes | None = None  # a JPEG's comment (COM segment): written to JPEG exports
    lossless_webp: bool = False  # a lossless (VP8L) WebP source: WebP exports stay lossless

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        """Return a copy with new RGB pixels, keeping metadata and alpha (resized if needed)."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"pixels must be H x W x 3, got {pixels.shape}")
        alpha = self.alpha
        if alpha is not None and alpha.shape != pixels.shape[:2]:
            plane = Image.fromarray(alpha.astype(np.float32), mode="F")
            size = (pixels.shape[1], pixels.shape[0])
            alpha = np.asarray(plane.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
        return dataclasses.replace(self, pixels=pixels, alpha=alpha)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round float values in [0, 1] to uint8 (out-of-range values are clipped, NaN is 0)."""
    return np.rint(np.clip(np.nan_to_num(pixels), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(pixels: np.ndarray) -> np.ndarray:
    """Round float values in [0, 1] to uint16 (out-of-range values are clipped, NaN is 0)."""
    return np.rint(np.clip(np.nan_to_num(pixels), 0.0, 1.0) * 65535.0).astype(np.uint16)


def format_for_path(path: str | Path) -> str:
    """Pillow format name for an export path's extension, e.g. ".jpg" -> "JPEG"."""
    ext = Path(path).suffix.lower()
    if ext in _EXTENSION_FORMATS:
        return _EXTENSION_FORMATS[ext]
    if ext in (".heic", ".heif"):
        raise ImageWriteError("Saving HEIC photos needs the optional pillow-heif package.")
    raise ImageWriteError(
        f"InstructIR cannot save '{ext or Path(path).name}' files; use .jpg, .png, .tif or .webp."
    )


def load_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a photo file; raises UnsupportedImageError or ImageTooLargeError."""
    path = Path(path)
    try:
        with open(path, "rb") as fp:
            photo = _load(fp, path.name, max_pixels)
    except FileNotFoundError as exc:
        raise UnsupportedImageError(f"'{path.name}' was not found.") from exc
    except IsADirectoryError as exc:
        raise UnsupportedImageError(f"'{path.name}' is a folder, not a photo.") from exc
    except PermissionError as exc:
        raise UnsupportedImageError(f"'{path.name}' cannot be read (permission denied).") from exc
    except InstructIRError:
        raise
    except OSError as exc:
        raise UnsupportedImageError(f"'{path.name}' cannot be read: {exc.strerror}.") from exc
    photo.path = path
    return photo


def check_fits(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse, from the header alone, a photo too large to open (the bomb limit or the memory
    budget), so that a batch can say so before the model loads. A file that cannot be read
    is left to ``load_image``, which names what is wrong with it."""
    path = Path(path)
    size = header_size(path)
    if size is not None:  # a file that cannot be read is reported when the photo is loaded
        _check_size(path.name, size, max_pixels)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(w, h) of the photo a file holds, from its header, without decoding; None when the file
    cannot be read. A RAW file's is the developed picture's, not its stored preview's."""
    path = Path(path)
    try:
        if is_raw_name(path.name):
            return raw_size(path.read_bytes(), path.name)
        with open(path, "rb") as fp, _pillow_limit(None), Image.open(fp) as im:
            return im.size
    except Exception:  # noqa: BLE001 - the decoder reports the problem properly
        return None


def load_image_bytes(data: bytes, *, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a photo held in memory; `name` only appears in error messages."""
    return _load(io.BytesIO(data), name or "the image", max_pixels)


def save_image(
    photo: Photo,
    path: str | Path,
    *,
    format: str | None = None,
    quality: int = 95,
    bit_depth: int | None = None,
    overwrite_source: bool = False,
) -> Path:
    """Encode and write atomically (temp file in the target folder, then replace)."""
    target = Path(path).absolute()
    fmt = _normalise_format(format) if format else format_for_path(target)
    if photo.path is not None and not overwrite_source and same_file(target, photo.path):
        raise ImageWriteError(
            f"Saving to '{target.name}' would overwrite the original photo; "
            "choose another name or allow overwriting the original."
        )
    write_image_file(target, encode_image(photo, fmt, bit_depth=bit_depth, quality=quality))
    return target


def encode_image(
    photo: Photo, format: str = "PNG", *, bit_depth: int | None = None, quality: int = 95
) -> bytes:
    """Encode to bytes; 16 bits only for PNG and TIFF, alpha only where the format has it, and
    each piece of metadata where the format holds it (a lossless WebP source stays lossless)."""
    fmt = _normalise_format(format)
    depth = bit_depth or photo.bit_depth
    if depth not in (8, 16):
        raise ImageWriteError(f"A bit depth of {depth} is not supported; use 8 or 16.")
    alpha = photo.alpha if fmt in _ALPHA_FORMATS else None
    meta = fmt in _METADATA_FORMATS
    exif, icc = (photo.exif, photo.icc_profile) if meta else (None, None)
    dpi = photo.dpi if fmt in _DPI_FORMATS else None
    xmp = upright_xmp(photo.xmp) if fmt in _XMP_FORMATS else None
    grey = photo.grey and fmt in _GREY_FORMATS
    pixels = photo.pixels
    if grey:
        pixels = (photo.pixels @ LUMA)[..., None]
    elif icc is not None and _icc_space(icc) != b"RGB ":
        icc = None  # a grey source's profile does not describe RGB pixels
    if depth == 16 and fmt == "PNG":
        return encode_png16(_samples16(pixels, alpha), icc, exif, dpi=dpi, xmp=xmp)
    if depth == 16 and fmt == "TIFF":
        return encode_tiff16(_samples16(pixels, alpha), icc, exif, dpi=dpi, xmp=xmp)
    rgb = to_uint8(pixels)
    if alpha is not None:
        rgb = np.dstack([rgb, to_uint8(alpha)])
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[rgb.shape[2]]
    if rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    options: dict[str, object] = {}
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    if dpi:
        options["dpi"] = dpi
    options.update(xmp_save_options(fmt, xmp, exif))
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if photo.comment and len(photo.comment) <= _JPEG_COMMENT_LIMIT:
            options["comment"] = photo.comment
    elif fmt == "WEBP":
        lossless = quality >= 100 or photo.lossless_webp
        options.update(quality=quality, lossless=lossless, exact=True)
    elif fmt in ("HEIF", "AVIF"):
        options["quality"] = quality
    if fmt == "HEIF" and not (_HEIF_AVAILABLE and _register_heif()):
        raise ImageWriteError("Saving HEIC photos needs the optional pillow-heif package.")
    out = io.BytesIO()
    try:
        Image.fromarray(rgb, mode).save(out, fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageWriteError(f"The photo could not be encoded as {fmt}: {exc}") from exc
    return out.getvalue()


def _normalise_format(name: str) -> str:
    fmt = name.upper().lstrip(".")
    return _FORMAT_ALIASES.get(fmt, fmt)


def _register_heif() -> bool:
    """Teach Pillow HEIC: pillow-heif (reads and writes) where installed, else pi-heif."""
    global _heif_registered, _heif_tried
    if not _heif_tried and _HEIF_READABLE:
        _heif_tried = True
        try:
            if _HEIF_AVAILABLE:
                import pillow_heif as heif
            else:
                import pi_heif as heif
            heif.register_heif_opener()
            _heif_registered = True
        except (ImportError, OSError) as exc:  # e.g. its libheif cannot load: said once
            log.warning("HEIC support cannot load: %s", exc)
    return _heif_registered


@contextlib.contextmanager
def _pillow_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow's bomb limit set to ours for one open (a process-wide setting, hence the lock)."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": we report damage ourselves
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _too_large(name: str, size: tuple[int, int] | None, max_pixels: int) -> ImageTooLargeError:
    what = f"{size[0]} x {size[1]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels)"
    return ImageTooLargeError(
        f"'{name}' is {what if size else 'too large'}; InstructIR opens photos of up to "
        f"{max_pixels / 1e6:.0f} megapixels, to protect your computer's memory."
    )


def _check_size(name: str, size: tuple[int, int], max_pixels: int) -> None:
    """Called with the header's size, before any pixel is decoded."""
    if size[0] * size[1] > max_pixels:
        raise _too_large(name, size, max_pixels)
    check_photo_memory(name, size)


def _open(fp: BinaryIO, name: str, max_pixels: int) -> Image.Image:
    try:
        with _pillow_limit(max_pixels):
            return Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        try:
            fp.seek(0)
            with _pillow_limit(None), Image.open(fp) as im:
                size: tuple[int, int] | None = im.size  # header only, no pixels decoded
        except Exception:  # noqa: BLE001 - the message just leaves the size out
            size = None
        raise _too_large(name, size, max_pixels) from exc


def _unidentified(fp: BinaryIO, name: str) -> UnsupportedImageError:
    fp.seek(0)
    head = fp.read(12)
    if head[4:8] == b"ftyp" and not _heif_registered:
        return UnsupportedImageError(
            f"'{name}' is a HEIC photo; opening it needs the pi-heif package (pip install pi-heif)."
        )
    signatures = (b"\xff\xd8\xff", PNG_SIGNATURE, b"II*\0", b"MM\0*", b"BM", b"RIFF")
    if head.startswith(signatures):
        return _damaged(fp, name)
    return UnsupportedImageError(
        f"'{name}' is not a photo InstructIR can open (unknown or unsupported format)."
    )


# Deflate packs at most 1032 bytes into one; a PNG far smaller than its pixels' least size
# over that cannot hold them (Pillow fills the missing rows with black without a word).
_DEFLATE_MAX_RATIO = 1100
_PNG_LEAST_BITS = {"RGB": 24, "RGBA": 32, "LA": 16, "PA": 16, "I": 16, "I;16": 16}


def _check_png_size(im: Image.Image, fp: BinaryIO, name: str) -> None:
    width, height = im.size
    bits = _PNG_LEAST_BITS.get(im.mode, 1)  # "1", "P" and "L" may be 1 bit deep
    least = height * (1 + (width * bits + 7) // 8)  # a filter byte starts every row
    if least > _DEFLATE_MAX_RATIO * max(1, fp.seek(0, os.SEEK_END)):
        raise UnsupportedImageError(
            f"'{name}' is damaged: it says it holds {width} x {height} pixels, far more than "
            "its size can contain."
        )


def _damaged(fp: BinaryIO, name: str) -> UnsupportedImageError:
    """The error for a file of a known format that cannot be decoded: damaged, unless it is a
    whole TIFF whose samples are of a kind InstructIR does not read (e.g. floating point)."""
    try:
        samples = unreadable_samples(fp)
    except Exception:  # noqa: BLE001 - then it is damaged after all
        samples = None
    if samples:
        return UnsupportedImageError(
            f"'{name}' is a valid TIFF file, but its sample format ({samples}) is not "
            "supported; InstructIR opens 8- and 16-bit photos. Convert it to an 8- or 16-bit "
            "TIFF or PNG and open that."
        )
    return UnsupportedImageError(f"'{name}' is damaged or truncated and cannot be opened.")


def _load(fp: BinaryIO, name: str, max_pixels: int) -> Photo:
    if fp.seek(0, os.SEEK_END) == 0:
        raise UnsupportedImageError(f"'{name}' is empty and cannot be opened.")
    fp.seek(0)
    if is_raw_name(name):
        return _load_raw(fp.read(), name, max_pixels)
    _register_heif()
    try:
        try:
            im = _open(fp, name, max_pixels)
        except UnidentifiedImageError as exc:
            frames = 1
            if (
                decoded := load_tiff_only(fp, lambda w, h: _check_size(name, (w, h), max_pixels))
            ) is None:
                raise _unidentified(fp, name) from exc
            extras = tiff_only_extras(fp)
        else:
            with im:
                _check_size(name, im.size, max_pixels)
                fmt = _FORMAT_ALIASES.get(im.format or "", im.format or "")
                frames = max(1, int(getattr(im, "n_frames", 1) or 1))
                if fmt == "PNG":
                    _check_png_size(im, fp, name)
                decoded = (*_decode(im, fp), fmt)
                extras = read_extras(im, fp, fmt)
    except InstructIRError:
        raise
    except MemoryError as exc:
        raise UnsupportedImageError(f"There is not enough memory to open '{name}'.") from exc
    except Exception as exc:  # noqa: BLE001
        # Decoders raise OSError, SyntaxError, ValueError, struct.error, zlib.error... on bad
        # data; the user only needs to know the file cannot be read (or why it cannot).
        raise _damaged(fp, name) from exc
    samples, depth, icc, exif, fmt = decoded
    exif, orientation = reset_orientation(exif)
    samples = _orient(samples, orientation)
    if extras.dpi and orientation in (5, 6, 7, 8):  # turned a quarter: x and y swap
        extras = dataclasses.replace(extras, dpi=extras.dpi[::-1])
    scale = np.float32(65535.0 if depth == 16 else 255.0)
    channels = samples.shape[2]
    rgb = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=2)
    alpha = samples[..., -1] if channels in (2, 4) else None
    grey = channels in (1, 2)
    if icc is not None and _icc_space(icc) != (b"GRAY" if grey else b"RGB "):
        icc = None  # e.g. a CMYK profile would misdescribe the RGB pixels we keep
    return Photo(
        pixels=np.divide(rgb, scale, dtype=np.float32, order="C"),
        alpha=None if alpha is None else np.divide(alpha, scale, dtype=np.float32, order="C"),
        bit_depth=depth,
        exif=exif,
        icc_profile=icc,
        format=fmt,
        grey=grey,
        frames=frames,
        dpi=extras.dpi,
        xmp=upright_xmp(extras.xmp),
        comment=extras.comment,
        lossless_webp=extras.lossless_webp,
    )


def _load_raw(data: bytes, name: str, max_pixels: int) -> Photo:
    """A camera RAW file, developed to 16-bit sRGB (``core.rawfiles``)."""
    try:
        samples, exif = develop(data, name, lambda size: _check_size(name, size, max_pixels))
    except InstructIRError:
        raise
    except MemoryError as exc:
        raise UnsupportedImageError(f"There is not enough memory to open '{name}'.") from exc
    return Photo(
        pixels=np.divide(samples, np.float32(65535.0), dtype=np.float32),
        alpha=None,
        bit_depth=16,
        exif=exif,
        icc_profile=None,  # developed to sRGB
        format="RAW",
    )


def _icc_space(icc: bytes) -> bytes:
    """An ICC profile's data colour space signature, e.g. b"RGB " or b"GRAY"."""
    return icc[16:20]


def _decode(im: Image.Image, fp: BinaryIO) -> tuple[np.ndarray, int, bytes | None, bytes | None]:
    """Samples (H x W x 1..4, uint8 or uint16, file orientation), depth, ICC and raw EXIF."""
    icc = im.info.get("icc_profile") or None
    if im.format == "PNG":
        fp.seek(24)
        if fp.read(1) == b"\x10":
            samples, png_icc, png_exif = read_png16(fp)
            exif = png_exif or im.info.get("exif")
            return samples, 16, icc or png_icc, with_exif_header(exif)
    if im.format == "TIFF":
        exif = tiff_exif(im)
        if 16 in (im.tag_v2.get(258) or ()):
            samples = read_tiff16(fp)
            if samples is not None:
                return samples, 16, icc, exif
        im.load()
        if ORIENTATION_TAG not in im.tag_v2:  # recent Pillow rotates TIFFs itself while loading
            exif = reset_orientation(exif)[0]
    else:
        im.load()  # some formats (PNG) only meet their EXIF chunk while decoding
        exif = with_exif_header(im.info.get("exif"))
    if im.mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)[..., None], 16, icc, exif
    if im.mode in ("I", "F"):
        scale = 65535.0 if im.mode == "F" else 1.0
        grey = np.clip(np.asarray(im, dtype=np.float64) * scale, 0, 65535)
        return np.rint(grey).astype(np.uint16)[..., None], 16, icc, exif
    if im.mode == "1":
        im = im.convert("L")
    if im.mode == "CMYK" and icc:
        with contextlib.suppress(ImageCms.PyCMSError, OSError):
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
            icc = srgb.tobytes()
    if im.mode not in ("RGB", "RGBA", "L", "LA") or "transparency" in im.info:
        palette_alpha = im.mode == "P" and im.palette is not None and im.palette.mode[-1] == "A"
        has_alpha = im.mode in ("La", "PA", "RGBa") or "transparency" in im.info or palette_alpha
        im = im.convert("RGBA" if has_alpha else "RGB")
    samples = np.asarray(im, dtype=np.uint8)
    return (samples[..., None] if samples.ndim == 2 else samples), 8, icc, exif


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an H x W x C array, as ImageOps.exif_transpose does."""
    if orientation in (5, 6, 7, 8):
        a = a.swapaxes(0, 1)  # transpose; then flip to get the rotations
    flips = {2: (1,), 3: (0, 1), 4: (0,), 6: (1,), 7: (0, 1), 8: (0,)}.get(orientation, ())
    return np.flip(a, flips) if flips else a


def _samples16(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """H x W x (1..3 colour + alpha) uint16 samples."""
    rgb = to_uint16(pixels)
    return rgb if alpha is None else np.dstack([rgb, to_uint16(alpha)])
