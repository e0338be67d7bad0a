"""Render the bundled sample photo (a synthetic mountain lake at dusk), made here: CC0.

python scripts/make_sample.py resources/sample/sample.jpg
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image, ImageFilter


def fractal_line(n: int, rng: np.random.Generator, octaves: int = 7, rough: float = 0.55):
    out = np.zeros(n)
    amp = 1.0
    for o in range(octaves):
        k = 2 ** (o + 1)
        pts = rng.standard_normal(k + 1)
        out += amp * np.interp(np.linspace(0, k, n), np.arange(k + 1), pts)
        amp *= rough
    return out


def fractal_field(h: int, w: int, rng: np.random.Generator, octaves: int = 6) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for o in range(octaves):
        k = 2 ** (o + 2)
        small = rng.standard_normal((k, k)).astype(np.float32)
        im = Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)
        out += amp * np.asarray(im)
        amp *= 0.5
    return out


def render(w: int = 1200, h: int = 800, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    horizon = 0.58
    # Sky: warm near the horizon, deep blue above, a soft sun glow.
    top = np.array([0.16, 0.28, 0.55])
    low = np.array([0.98, 0.72, 0.45])
    t = np.clip(y / horizon, 0, 1)[..., None]
    img = top * (1 - t**1.6) + low * t**1.6
    img = np.broadcast_to(img, (h, w, 3)).copy()
    sun = np.exp(-(((x - 0.68) ** 2) * 40 + ((y - 0.47) ** 2) * 90))[..., None]
    img += sun * np.array([0.5, 0.35, 0.15])
    clouds = fractal_field(h, w, rng)
    cloud_mask = np.clip((clouds - 0.6) * 0.8, 0, 1) * (y < horizon * 0.8)
    img = img * (1 - 0.5 * cloud_mask[..., None]) + 0.5 * cloud_mask[..., None] * np.array(
        [1.0, 0.85, 0.8]
    )
    # Three mountain ridges, further ones hazier and bluer.
    for i, (base, height, colour) in enumerate(
        [
            (0.50, 0.16, [0.42, 0.45, 0.6]),
            (0.55, 0.14, [0.26, 0.3, 0.38]),
            (0.6, 0.10, [0.14, 0.2, 0.16]),
        ]
    ):
        ridge = base - height * (0.5 + 0.35 * fractal_line(w, rng, rough=0.5 + 0.05 * i))
        mask = (y > ridge[None, :]).astype(np.float32)
        tex = fractal_field(h, w, rng, octaves=7) * 0.05 * (i + 1)
        shade = np.clip(1.0 - (y - ridge[None, :]) * (1.5 - 0.4 * i), 0.5, 1.0)
        layer = np.array(colour)[None, None, :] * (shade + tex)[..., None]
        img = img * (1 - mask[..., None]) + layer * mask[..., None]
    # Lake: the sky and ridges mirrored, darker, with ripples.
    lake_top = int(h * 0.66)
    mirror = img[lake_top - 1 :: -1][: h - lake_top]
    ripple = np.sin(np.arange(h - lake_top)[:, None] ** 1.3 * 0.9 + x * 40) * 0.03
    lake = mirror * 0.7 + ripple[..., None]
    img[lake_top:] = lake
    # Foreground grass bank with fine texture, so denoising has detail to keep.
    bank = 0.9 - 0.05 * fractal_line(w, rng, rough=0.6)
    mask = (y > bank[None, :]).astype(np.float32)
    grass = 0.15 + 0.12 * rng.random((h, w)) + 0.08 * fractal_field(h, w, rng)
    g = np.stack([grass * 0.7, grass * 1.1, grass * 0.45], -1)
    img = img * (1 - mask[..., None]) + g * mask[..., None]
    out = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return out.filter(ImageFilter.UnsharpMask(radius=1.2, percent=60, threshold=1))


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "resources/sample/sample.jpg"
    render().save(target, quality=92, subsampling=0)
