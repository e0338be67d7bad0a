"""Synthetic degradations for training and evaluation, one function per task.

Each takes a clean image tensor [3, H, W] in [0, 1] and a numpy Generator and returns the
degraded image (same size, clamped to [0, 1]). Parameters are drawn from ranges that cover
what amateur photos show; evaluation fixes them through the keyword arguments.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "add_noise",
    "motion_blur",
    "defocus_blur",
    "blur",
    "add_rain",
    "add_haze",
    "darken",
    "downscale",
    "damage_colour",
    "DEGRADERS",
]


def _conv_same(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    k = kernel.shape[-1]
    pad = k // 2
    x = F.pad(img[None], (pad, pad, pad, pad), mode="reflect")
    weight = kernel[None, None].expand(3, 1, k, k).to(img.dtype)
    return F.conv2d(x, weight, groups=3)[0]


def add_noise(
    img: torch.Tensor, rng: np.random.Generator, sigma: float | None = None
) -> torch.Tensor:
    """Gaussian noise (sigma in 0..255 units, up to 50), sometimes Poisson-Gaussian."""
    if sigma is None:
        sigma = float(rng.uniform(5, 50))
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    out = img
    if rng.random() < 0.3:
        peak = float(rng.uniform(30, 300))
        out = torch.poisson(img.clamp(0, 1) * peak, generator=gen) / peak
        sigma = sigma * 0.5
    noise = torch.randn(img.shape, generator=gen) * (sigma / 255.0)
    return (out + noise).clamp(0, 1)


def add_gaussian_noise(img: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Plain AWGN with a fixed seed (evaluation at sigma=25)."""
    gen = torch.Generator().manual_seed(seed)
    return (img + torch.randn(img.shape, generator=gen) * (sigma / 255.0)).clamp(0, 1)


def motion_kernel(length: int, angle_deg: float) -> torch.Tensor:
    size = length if length % 2 else length + 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    a = math.radians(angle_deg)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, length * 3):
        x = int(round(c + t * math.cos(a)))
        y = int(round(c + t * math.sin(a)))
        k[y, x] = 1.0
    return torch.from_numpy(k / k.sum())


def disk_kernel(radius: float) -> torch.Tensor:
    r = int(math.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = (xx**2 + yy**2 <= radius**2 + 0.5).astype(np.float32)
    return torch.from_numpy(k / k.sum())


def motion_blur(
    img: torch.Tensor, rng: np.random.Generator, length: int | None = None
) -> torch.Tensor:
    length = int(rng.integers(5, 22)) if length is None else length
    return _conv_same(img, motion_kernel(length, float(rng.uniform(0, 180)))).clamp(0, 1)


def defocus_blur(
    img: torch.Tensor, rng: np.random.Generator, radius: float | None = None
) -> torch.Tensor:
    radius = float(rng.uniform(1.5, 5.0)) if radius is None else radius
    return _conv_same(img, disk_kernel(radius)).clamp(0, 1)


def blur(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    out = motion_blur(img, rng) if rng.random() < 0.6 else defocus_blur(img, rng)
    if rng.random() < 0.5:  # real blurry shots also carry a little sensor noise
        out = (out + torch.randn(out.shape) * float(rng.uniform(0, 3)) / 255.0).clamp(0, 1)
    return out


def add_rain(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Rain streaks: sparse drops smeared along one direction, screened over the photo."""
    _, h, w = img.shape
    density = float(rng.uniform(0.002, 0.02))
    drops = (rng.random((h, w)) < density).astype(np.float32)
    drops *= rng.uniform(0.5, 1.0, (h, w)).astype(np.float32)
    length = int(rng.integers(9, 31))
    angle = float(rng.uniform(60, 120))
    streak = _conv_same(
        torch.from_numpy(drops)[None].expand(3, h, w).contiguous(), motion_kernel(length, angle)
    )
    streak = (streak * length * float(rng.uniform(0.25, 0.6))).clamp(0, 1)
    if rng.random() < 0.5:
        streak = _conv_same(streak, disk_kernel(1.0))
    brightness = float(rng.uniform(0.7, 1.0))
    return (1 - (1 - img) * (1 - streak * brightness)).clamp(0, 1)


def _smooth_noise(h: int, w: int, rng: np.random.Generator, cells: int = 4) -> torch.Tensor:
    coarse = torch.from_numpy(rng.random((1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0, 0]


def plausible_depth(h: int, w: int, rng: np.random.Generator) -> torch.Tensor:
    """Far at the top (sky, horizon), near at the bottom, with smooth random variation."""
    ramp = torch.linspace(1.0, 0.0, h)[:, None].expand(h, w)
    tilt = torch.linspace(-1, 1, w)[None, :] * float(rng.uniform(-0.2, 0.2))
    depth = 0.7 * ramp + 0.3 * _smooth_noise(h, w, rng) + tilt
    return depth.clamp(0, 1.2)


def add_haze(
    img: torch.Tensor, rng: np.random.Generator, beta: float | None = None
) -> torch.Tensor:
    """Atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d)."""
    _, h, w = img.shape
    beta = float(rng.uniform(0.6, 2.5)) if beta is None else beta
    depth = plausible_depth(h, w, rng) + 0.15
    t = torch.exp(-beta * depth)[None]
    a = float(rng.uniform(0.75, 1.0))
    airlight = torch.tensor([a, a, a]) + torch.from_numpy(
        rng.uniform(-0.04, 0.04, 3).astype(np.float32)
    )
    return (img * t + airlight[:, None, None] * (1 - t)).clamp(0, 1)


def darken(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Under-exposure: a gamma curve, a gain cut, and the noise that comes with it."""
    gamma = float(rng.uniform(1.2, 2.2))
    gain = float(rng.uniform(0.05, 0.35))
    out = img.clamp(0, 1) ** gamma * gain
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    peak = float(rng.uniform(200, 1500))
    out = torch.poisson(out * peak, generator=gen) / peak
    out = out + torch.randn(img.shape, generator=gen) * float(rng.uniform(0.5, 3)) / 255.0
    return out.clamp(0, 1)


def downscale(
    img: torch.Tensor, rng: np.random.Generator, factor: float | None = None
) -> torch.Tensor:
    """Low resolution: bicubic down by x2..x4 (antialiased), then bicubic back up."""
    _, h, w = img.shape
    factor = float(rng.uniform(2, 4)) if factor is None else factor
    small = F.interpolate(
        img[None],
        size=(max(4, round(h / factor)), max(4, round(w / factor))),
        mode="bicubic",
        antialias=True,
        align_corners=False,
    )
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def damage_colour(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flat, washed-out or colour-cast versions of a good photo."""
    out = img
    gains = torch.from_numpy(rng.uniform(0.8, 1.2, 3).astype(np.float32))
    out = out * (gains / gains.mean())[:, None, None]
    grey = out.mean(0, keepdim=True)
    out = grey + (out - grey) * float(rng.uniform(0.3, 0.85))
    lo, hi = float(rng.uniform(0.0, 0.2)), float(rng.uniform(0.75, 1.0))
    out = lo + out.clamp(0, 1) * (hi - lo)
    gamma = float(rng.uniform(0.7, 1.4))
    return out.clamp(1e-6, 1) ** gamma


DEGRADERS = {
    "denoise": add_noise,
    "deblur": blur,
    "derain": add_rain,
    "dehaze": add_haze,
    "lowlight": darken,
    "superres": downscale,
    "enhance": damage_colour,
}
