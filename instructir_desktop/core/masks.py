"""Layer masks: reading a mask file, fitting it to a photo, and the pixel operations of the
app's mask tools (all on float32 H x W planes in [0, 1]: 1 applies the fix, 0 keeps the
original). Blending through a mask is ``core.recipe.blend`` (the strength space)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from .recipe import RecipeMaskError, read_small_file

__all__ = [
    "read_mask",
    "fit_mask",
    "mask_from_png",
    "mask_plane",
    "apply_mask",
    "paint_rect",
    "paint_ellipse",
    "linear_gradient",
    "brightness_range",
    "feather",
    "combine",
]

MAX_MASK_PIXELS = 200_000_000
MAX_MASK_FILE = 256 << 20
# Mean spread between a pixel's channels (0..255) above which a "mask" is a colour photo:
# a painted mask has none; the photos of the training set have 7 or more.
COLOUR_PICTURE = 6.0


def mask_from_png(data: bytes, name: str = "mask") -> np.ndarray:
    """PNG bytes as float32 H x W in [0, 1] (``mask_plane``). Raises RecipeMaskError (one
    line for the user) when the data is not a readable PNG or is a colour picture."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise RecipeMaskError(f"The mask '{name}' is not a PNG file.")
            w, h = im.size
            if w * h > MAX_MASK_PIXELS:
                raise RecipeMaskError(f"The mask '{name}' is too large.")
            plane = mask_plane(im, name)
    except RecipeMaskError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError):
        raise RecipeMaskError(f"The mask '{name}' cannot be read (damaged PNG).") from None
    return np.clip(plane, 0.0, 1.0).astype(np.float32, copy=False)


def mask_plane(im: Image.Image, name: str = "mask") -> np.ndarray:
    """A mask image's values in [0, 1]: its brightness (8 or 16 bits grey, or black and white
    painted in colour channels); for a file with transparency that varies (a selection
    exported from an editor), its alpha. A colour picture is refused: it is a photo, not a
    mask."""
    if im.mode in ("I;16", "I;16B", "I", "I;16L"):
        return np.asarray(im, np.float32) / np.float32(65535.0)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        alpha = np.asarray(im.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            return alpha.astype(np.float32) / np.float32(255.0)
    if im.mode in ("RGB", "RGBA", "P", "PA"):
        rgb = np.asarray(im.convert("RGB"), np.int16)
        if float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) > COLOUR_PICTURE:
            raise RecipeMaskError(
                f"The mask '{name}' is a colour picture, not a mask: paint it in black and "
                "white (white applies the fix, black keeps the original) or export the "
                "selection's transparency."
            )
    return np.asarray(im.convert("L"), np.float32) / np.float32(255.0)


def read_mask(path: str | Path) -> np.ndarray:
    """The mask file at ``path`` as float32 H x W in [0, 1] (see ``mask_from_png``)."""
    path = Path(path)
    data = read_small_file(path, MAX_MASK_FILE, RecipeMaskError, f"The mask '{path}'")
    return mask_from_png(data, path.name)


def fit_mask(mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """``mask`` (H x W) at ``size`` (w, h), bilinear; and whether it had to be scaled."""
    w, h = size
    if mask.shape[:2] == (h, w):
        return mask, False
    scaled = Image.fromarray(np.asarray(mask, np.float32), "F").resize(
        (w, h), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(scaled, np.float32), 0.0, 1.0), True


def apply_mask(original: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``restored`` where the mask is 1, ``original`` where it is 0, blended in between in the
    strength space (``core.recipe.blend``). Fully masked and unmasked pixels are copied, so
    they equal the restore and the original exactly."""
    from .recipe import blend

    weight = np.asarray(mask, np.float32)[..., None]
    out = blend(original, restored, weight)
    np.copyto(out, restored, where=weight >= 1.0)
    np.copyto(out, original, where=weight <= 0.0)
    return out


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def paint_rect(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """A plane of ``shape`` (h, w): 1 inside ``box`` (x0, y0, x1, y1 in pixels), 0 outside."""
    x0, y0, x1, y1 = box
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    ys, xs = _grid(shape)
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return inside.astype(np.float32)


def paint_ellipse(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """A plane of ``shape`` (h, w): 1 inside the ellipse inscribed in ``box``, 0 outside."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5
    rx, ry = max(abs(x1 - x0) / 2, 0.5), max(abs(y1 - y0) / 2, 0.5)
    ys, xs = _grid(shape)
    inside = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
    return inside.astype(np.float32)


def linear_gradient(
    shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float]
) -> np.ndarray:
    """1 at ``start`` (x, y) falling linearly to 0 at ``end``, constant beyond both ends
    (a sky-to-horizon mask is a drag from the sky down to the horizon)."""
    (sx, sy), (ex, ey) = start, end
    dx, dy = ex - sx, ey - sy
    length2 = dx * dx + dy * dy
    if length2 < 1e-6:
        return np.ones(shape, np.float32)
    ys, xs = _grid(shape)
    t = ((xs - sx) * dx + (ys - sy) * dy) / np.float32(length2)
    return np.clip(1.0 - t, 0.0, 1.0).astype(np.float32)


# Luminance bands of the brightness-range tool: (low, high) in linear [0, 1] of the display
# value, each with a soft edge of SOFT_EDGE on both sides.
BANDS = {"shadows": (0.0, 0.33), "midtones": (0.33, 0.67), "highlights": (0.67, 1.0)}
SOFT_EDGE = 0.1


def brightness_range(image: np.ndarray, band: str, soft: float = SOFT_EDGE) -> np.ndarray:
    """A mask selecting the shadows, midtones or highlights of ``image`` (float H x W x 3 in
    [0, 1]) by Rec. 709 luma, with a linear soft edge ``soft`` wide on each side."""
    low, high = BANDS[band]
    luma = image[..., 0] * 0.2126 + image[..., 1] * 0.7152 + image[..., 2] * 0.0722
    soft = max(float(soft), 1e-3)
    rise = np.ones_like(luma) if low <= 0.0 else np.clip((luma - low) / soft + 0.5, 0.0, 1.0)
    fall = np.ones_like(luma) if high >= 1.0 else np.clip((high - luma) / soft + 0.5, 0.0, 1.0)
    return np.minimum(rise, fall).astype(np.float32)


def _blur(plane: np.ndarray, r: int) -> np.ndarray:
    """Three box blurs of width 2r+1 along each axis, edges extended (torch's pooling runs
    on every core; a 24 MP mask takes about a second)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        x = torch.from_numpy(np.array(plane, np.float32))[None, None]  # a writable copy
        for kernel, pad in (((1, 2 * r + 1), (r, r, 0, 0)), ((2 * r + 1, 1), (0, 0, r, r))):
            for _ in range(3):
                x = F.avg_pool2d(F.pad(x, pad, mode="replicate"), kernel, stride=1)
        return x[0, 0].numpy()


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` softened by ``radius`` full-resolution pixels: three box blurs per axis, a
    close approximation of a Gaussian of that sigma in time linear in the pixels."""
    if radius <= 0:
        return mask
    plane = np.asarray(mask, np.float32)
    k = int(radius)  # blur a smaller copy: the result is smooth at any scale anyway
    if k >= 2 and min(plane.shape) // k >= 8:
        h, w = plane.shape
        im = Image.fromarray(plane, "F").resize((w // k, h // k), Image.Resampling.BOX)
        small = feather(np.asarray(im, np.float32), radius / k)
        back = Image.fromarray(small, "F").resize((w, h), Image.Resampling.BILINEAR)
        return np.clip(np.asarray(back, np.float32), 0.0, 1.0)
    # three boxes of width w have the variance of a Gaussian: 3 * (w^2 - 1) / 12 = sigma^2
    r = max(1, round((np.sqrt(4.0 * radius * radius + 1.0) - 1.0) / 2.0))
    return np.clip(_blur(plane, r), 0.0, 1.0)


def combine(mask: np.ndarray, shape: np.ndarray, opacity: float, erase: bool) -> np.ndarray:
    """``mask`` with ``shape`` (a 0..1 coverage plane) painted in at ``opacity``: towards 1
    when painting, towards 0 when erasing."""
    cover = np.asarray(shape, np.float32) * np.float32(opacity)
    if erase:
        return mask * (1.0 - cover)
    return mask + (1.0 - mask) * cover
