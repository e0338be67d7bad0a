"""What the screen shows: a photo's pixels in its own colour profile, converted to sRGB.

A photo tagged with a wide-gamut profile (Display P3 from phones, Adobe RGB from cameras)
holds values that look dull and shifted when painted as if they were sRGB, as Qt paints an
untagged image. The editor keeps, restores and exports the pixels as they are, with their
profile; only what is painted (the canvas and its before/after, the chat, layer and batch
thumbnails) goes through :func:`screen_transform`. Photos without a profile, with an sRGB
one, or with a profile that cannot be read are shown as they are.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

import numpy as np
from PIL import Image, ImageCms

__all__ = ["ScreenTransform", "screen_transform"]

log = logging.getLogger(__name__)

# littleCMS constants (ImageCms.Intent and ImageCms.Flags in recent Pillow). No one-pixel cache:
# the transform is used from several threads at once.
RELATIVE_COLORIMETRIC, NOCACHE = 1, 0x0040
STRIP_ROWS = 512  # rows converted at a time: bounds the temporary copies of a 24 MP photo


class ScreenTransform:
    """Converts 8-bit RGB in a photo's profile to 8-bit sRGB (relative colorimetric)."""

    def __init__(self, transform: ImageCms.ImageCmsTransform, description: str) -> None:
        self._transform = transform
        self.description = description

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """An H x W x 3 uint8 array in the photo's profile, as sRGB (a new array)."""
        out = np.empty_like(rgb)
        for top in range(0, rgb.shape[0], STRIP_ROWS):
            strip = np.ascontiguousarray(rgb[top : top + STRIP_ROWS])
            converted = ImageCms.applyTransform(Image.fromarray(strip, "RGB"), self._transform)
            out[top : top + STRIP_ROWS] = np.asarray(converted)
        return out

    def __repr__(self) -> str:
        return f"ScreenTransform({self.description!r})"


def screen_transform(icc: bytes | None, grey: bool = False) -> ScreenTransform | None:
    """The conversion for a photo with this ICC profile, or None to show it as it is."""
    if not icc or grey or icc[16:20] != b"RGB ":
        return None
    return _build(bytes(icc))


# One grid of test colours: a profile whose transform moves none of them by more than one level
# is sRGB under another name (cameras and phones write their own copies of it).
_PROBE = np.stack(np.meshgrid(*[np.linspace(0, 255, 6)] * 3, indexing="ij"), -1)
_PROBE = np.ascontiguousarray(_PROBE.reshape(1, -1, 3).astype(np.uint8))


@lru_cache(maxsize=8)
def _build(icc: bytes) -> ScreenTransform | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        transform = ImageCms.buildTransform(
            source,
            srgb,
            "RGB",
            "RGB",
            renderingIntent=RELATIVE_COLORIMETRIC,
            flags=NOCACHE,
        )
        description = (ImageCms.getProfileDescription(source) or "").strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        log.info("the photo's colour profile cannot be used, shown as sRGB: %s", exc)
        return None
    screen = ScreenTransform(transform, description or "embedded profile")
    moved = np.abs(screen(_PROBE).astype(np.int16) - _PROBE).max()
    return screen if moved > 1 else None
