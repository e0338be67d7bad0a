"""Classical estimators of what is wrong with a photo, each read at the scale where it shows.

Noise, blur, resolution and rain live in the finest pixels, so they are measured at full
resolution on a grid of crops; exposure, haze and colour are properties of the whole frame, so
they are measured on a thumbnail. Everything is plain numpy and costs a few tens of
milliseconds on a 12-megapixel photo: only the crops and a strided thumbnail are ever touched.

``measure(image)`` returns a ``Measures``: a fixed-order feature vector for the classifier in
``core.assess`` plus the named quantities its evidence sentences quote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FEATURE_NAMES", "Measures", "measure"]

CROP = 128  # full-resolution analysis window (pixels)
MAX_CROPS = 12  # a 3 x 4 grid
THUMB = 256  # longest side of the exposure/haze/colour thumbnail
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
LUMA_NOISE = float(np.sqrt((LUMA**2).sum()))  # sigma of luminance per unit channel sigma
# Radial frequency bands of the crop spectra, in cycles per pixel (0.5 is Nyquist).
BANDS = ((0.03, 0.08), (0.08, 0.16), (0.16, 0.25), (0.25, 0.34), (0.34, 0.42), (0.42, 0.5))

FEATURE_NAMES: tuple[str, ...] = (
    # exposure (thumbnail)
    "l_mean",
    "l_p50",
    "l_p95",
    "l_p99",
    "frac_below_10",
    "frac_above_90",
    "l_std",
    # haze (thumbnail)
    "dc_mean",
    "dc_p10",
    "dc_rel",
    "dc_top_minus_bottom",
    "sat_mean",
    "sat_p90",
    "local_contrast",
    # colour / tone (thumbnail)
    "cast",
    "l_range",
    "entropy",
    # noise (crops)
    "sigma",
    "sigma_median",
    "sigma_chroma",
    # blur / resolution (crops)
    "wav_r12_max",
    "wav_r12_med",
    "wav_r23_med",
    "spec_s2",
    "spec_s3",
    "spec_s4",
    "spec_s5",
    "spec_s6",
    "spec_s4_max",
    "spec_s6_max",
    "spec_clean_s4",
    "spec_clean_s5",
    "anisotropy",
    "anisotropy_low",
    "coherence",
    # rain (crops)
    "hp_skew",
    "streak_ratio",
    "streak_vertical",
    "bright_sparse",
)


@dataclass(frozen=True)
class Measures:
    """The feature vector (``FEATURE_NAMES`` order) and the figures evidence sentences use."""

    vector: np.ndarray
    values: dict[str, float]

    def __getitem__(self, name: str) -> float:
        return self.values[name]


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """About THUMB pixels on the long side: strided sampling, then a box average.

    Sampling first keeps a 12 MP photo's cost to a few milliseconds; the box average after it
    is what removes the pixel noise the exposure and haze figures should not see.
    """
    h, w = image.shape[:2]
    step = max(1, int(max(h, w) // THUMB))
    if step == 1:
        return np.asarray(image, np.float32)
    inner = max(1, min(step, 4))
    stride = max(1, step // inner)
    sub = image[::stride, ::stride]
    bh, bw = sub.shape[0] // inner, sub.shape[1] // inner
    if bh == 0 or bw == 0:
        return np.asarray(sub, np.float32)
    sub = np.asarray(sub[: bh * inner, : bw * inner], np.float32)
    return sub.reshape(bh, inner, bw, inner, 3).mean(axis=(1, 3))


def _crops(image: np.ndarray) -> list[np.ndarray]:
    """Full-resolution windows on a grid (reflect-padded when the photo is smaller)."""
    h, w = image.shape[:2]
    if h < CROP or w < CROP:
        pad = ((0, max(0, CROP - h)), (0, max(0, CROP - w)), (0, 0))
        image = np.pad(np.asarray(image, np.float32), pad, mode="symmetric")
        h, w = image.shape[:2]
    rows = 3 if h >= 2 * CROP else (2 if h > CROP else 1)
    cols = 4 if w >= 2 * CROP else (2 if w > CROP else 1)
    ys = np.linspace(0, h - CROP, rows).astype(int)
    xs = np.linspace(0, w - CROP, cols).astype(int)
    return [np.asarray(image[y : y + CROP, x : x + CROP], np.float32) for y in ys for x in xs][
        :MAX_CROPS
    ]


def _haar(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One orthonormal Haar level: (LL, LH, HL, HH); white noise keeps its sigma in each band."""
    a, b = g[0::2, 0::2], g[0::2, 1::2]
    c, d = g[1::2, 0::2], g[1::2, 1::2]
    return (a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2


def _block_std(band: np.ndarray, ll: np.ndarray, block: int = 8) -> np.ndarray:
    """Standard deviation of ``band`` per block, leaving out clipped (near black/white) blocks."""
    n = band.shape[0] // block
    b = band[: n * block, : n * block].reshape(n, block, n, block)
    mean = ll[: n * block, : n * block].reshape(n, block, n, block).mean(axis=(1, 3)) / 2
    std = b.std(axis=(1, 3))
    keep = (mean > 0.03) & (mean < 0.97)
    return std[keep]


def _min_filter(a: np.ndarray, radius: int) -> np.ndarray:
    out = a
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if i == axis else (0, 0) for i in (0, 1)], "edge")
        n = out.shape[axis]
        acc = padded.take(range(0, n), axis=axis)
        for k in range(1, 2 * radius + 1):
            acc = np.minimum(acc, padded.take(range(k, k + n), axis=axis))
        out = acc
    return out


def _box3(g: np.ndarray) -> np.ndarray:
    p = np.pad(g, 1, mode="edge")
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9


_FREQ_CACHE: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = {}
_SPREADS = ((0.08, 0.25), (0.03, 0.1))


def _spectrum_grid(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-frequency labels (radial band; direction bin within each spread range), the window."""
    if n not in _FREQ_CACHE:
        f = np.fft.fftfreq(n)
        fy, fx = np.meshgrid(f, np.fft.rfftfreq(n), indexing="ij")
        r = np.hypot(fy, fx).ravel()
        angle = np.mod(np.arctan2(fy, fx), np.pi).ravel()
        band = np.full(r.shape, len(BANDS), np.intp)
        for i, (lo, hi) in enumerate(BANDS):
            band[(r >= lo) & (r < hi)] = i
        direction = np.full(r.shape, 16, np.intp)
        abin = np.minimum((angle / np.pi * 8).astype(np.intp), 7)
        for k, (lo, hi) in enumerate(_SPREADS):
            m = (r >= lo) & (r < hi)
            direction[m] = abin[m] + 8 * k
        win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
        _FREQ_CACHE[n] = (band, direction, np.bincount(band), win, float((win**2).sum()))
    return _FREQ_CACHE[n]


def _spectral(g: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Log band powers relative to the lowest band, the same with the noise floor taken off,
    and how unevenly mid/low-frequency power is spread over eight directions."""
    band, direction, counts, win, norm = _spectrum_grid(g.shape[0])
    x = (g - g.mean()) * win
    spec = np.fft.rfft2(x)
    power = (spec.real**2 + spec.imag**2).ravel() / norm
    bands = (np.bincount(band, weights=power, minlength=len(BANDS) + 1) / counts)[: len(BANDS)]
    clean = np.maximum(bands - sigma**2, 1e-9)
    rel = np.log10(bands[1:] + 1e-9) - np.log10(bands[0] + 1e-9)
    rel_clean = np.log10(clean[1:]) - np.log10(clean[0])
    e = np.bincount(direction, weights=power, minlength=17)[:16] / np.maximum(
        np.bincount(direction, minlength=17)[:16], 1
    )
    spread = [float(np.log10((d.max() + 1e-9) / (np.median(d) + 1e-9))) for d in (e[:8], e[8:])]
    return rel, rel_clean, spread[0], spread[1]


def _streaks(h: np.ndarray, length: int = 9) -> tuple[float, float]:
    """Energy of the high-pass residual averaged along four directions: rain streaks add up
    along their direction (near vertical); noise and texture do not prefer one."""
    pos = np.maximum(h, 0)
    energies = []
    n = length // 2
    size_y, size_x = pos.shape[0] - 2 * n, pos.shape[1] - 2 * n
    for dy, dx in ((0, 1), (1, 1), (1, 0), (1, -1)):  # 0, 45, 90 and 135 degrees
        acc = np.zeros((size_y, size_x), pos.dtype)
        for k in range(-n, n + 1):
            y, x = n + k * dy, n + k * dx
            acc += pos[y : y + size_y, x : x + size_x]
        energies.append(float((acc / length).var()))
    e = np.array(energies) + 1e-12
    return float(np.log10(e.max() / e.min())), float(np.log10(e[2] / np.delete(e, 2).mean()))


def measure(image: np.ndarray) -> Measures:
    """All estimators on one photo (float HxWx3 in [0, 1], any size)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 image, got shape {image.shape}")
    v: dict[str, float] = {}
    _thumbnail_measures(np.clip(_thumbnail(image), 0, 1), v)
    _crop_measures([np.clip(c, 0, 1) for c in _crops(image)], v)
    vector = np.array([v[name] for name in FEATURE_NAMES], np.float32)
    return Measures(np.nan_to_num(vector), v)


def _thumbnail_measures(t: np.ndarray, v: dict[str, float]) -> None:
    lum = t[..., 0] * LUMA[0] + t[..., 1] * LUMA[1] + t[..., 2] * LUMA[2]
    p1, p50, p95, p99 = np.percentile(lum, (1, 50, 95, 99))
    v["l_mean"] = float(lum.mean())
    v["l_p50"], v["l_p95"], v["l_p99"] = float(p50), float(p95), float(p99)
    v["frac_below_10"] = float((lum < 0.1).mean())
    v["frac_above_90"] = float((lum > 0.9).mean())
    v["l_std"] = float(lum.std())
    v["l_p1"] = float(p1)
    radius = max(1, round(min(t.shape[:2]) / 40))
    lo = np.minimum(np.minimum(t[..., 0], t[..., 1]), t[..., 2])
    mx = np.maximum(np.maximum(t[..., 0], t[..., 1]), t[..., 2])
    dark = _min_filter(lo, radius)
    third = max(1, dark.shape[0] // 3)
    airlight = float(np.percentile(lum, 99.5)) + 1e-3
    v["dc_mean"] = float(dark.mean())
    v["dc_p10"] = float(np.percentile(dark, 10))
    v["dc_rel"] = float(dark.mean() / airlight)
    v["dc_top_minus_bottom"] = float(dark[:third].mean() - dark[-third:].mean())
    sat = (mx - lo) / (mx + 1e-3)
    v["sat_mean"] = float(sat.mean())
    v["sat_p90"] = float(np.percentile(sat, 90))
    v["local_contrast"] = float(np.abs(lum - _box3(lum)).mean())
    mean_rgb = t.reshape(-1, 3).mean(axis=0)
    v["cast"] = float(np.linalg.norm(mean_rgb - mean_rgb.mean()) / (mean_rgb.mean() + 0.05))
    v["cast_rgb"] = mean_rgb.tolist()  # type: ignore[assignment]  # for the evidence only
    v["l_range"] = float(p99 - p1)
    hist = np.bincount(np.clip((lum * 64).astype(int), 0, 63).ravel(), minlength=64)
    p = hist[hist > 0] / hist.sum()
    v["entropy"] = float(-(p * np.log2(p)).sum())


def _crop_measures(crops: list[np.ndarray], v: dict[str, float]) -> None:
    stds, chroma, r12, r23, texture = [], [], [], [], []
    greys = []
    for c in crops:
        g = c[..., 0] * LUMA[0] + c[..., 1] * LUMA[1] + c[..., 2] * LUMA[2]
        greys.append(g)
        ll, lh, hl, hh = _haar(g)
        stds.append(_block_std(hh, ll))
        chroma_band = _haar((c[..., 0] - c[..., 1]) / np.sqrt(2))[3]
        chroma.append(float(np.median(np.abs(chroma_band)) / 0.6745))
        ll2, lh2, hl2, hh2 = _haar(ll)
        _, lh3, hl3, hh3 = _haar(ll2)
        e1 = float((lh**2 + hl**2 + hh**2).mean())
        e2 = float((lh2**2 + hl2**2 + hh2**2).mean())
        e3 = float((lh3**2 + hl3**2 + hh3**2).mean())
        texture.append(e2)
        r12.append((e1, e2))
        r23.append(np.log10((e2 + 1e-9) / (e3 + 1e-9)))
    block = np.concatenate(stds) if any(len(s) for s in stds) else np.zeros(1)
    sigma = float(np.percentile(block, 25)) if block.size else 0.0
    # Quoted per colour channel in 0..255 units, the way noise is usually stated: luminance
    # averages independent channel noise down by |LUMA|, and the lower quartile of 64-sample
    # standard deviations sits 6 % below the true one.
    v["sigma"] = sigma * 255 / (LUMA_NOISE * 0.94)
    v["sigma_median"] = float(np.median(block)) * 255 / LUMA_NOISE
    v["sigma_chroma"] = float(np.median(chroma)) * 255
    # A photo can be sharp where it matters and soft elsewhere (shallow depth of field): blur
    # figures come from the most textured crops, and the sharpest of them counts as well.
    order = np.argsort(texture)[::-1]
    top = order[: max(1, len(order) // 2)]
    noise_e = 3 * sigma**2
    ratios = [np.log10(max(r12[i][0] - noise_e, 1e-9) / (r12[i][1] + 1e-9)) for i in top]
    v["wav_r12_max"] = float(max(ratios))
    v["wav_r12_med"] = float(np.median(ratios))
    v["wav_r23_med"] = float(np.median([r23[i] for i in top]))
    specs = [_spectral(greys[i], sigma) for i in top]
    rel = np.median([s[0] for s in specs], axis=0)
    for k, name in enumerate(("spec_s2", "spec_s3", "spec_s4", "spec_s5", "spec_s6")):
        v[name] = float(rel[k])
    v["spec_s4_max"] = float(max(s[0][2] for s in specs))
    v["spec_s6_max"] = float(max(s[0][4] for s in specs))
    clean = np.median([s[1] for s in specs], axis=0)
    v["spec_clean_s4"], v["spec_clean_s5"] = float(clean[2]), float(clean[3])
    v["anisotropy"] = float(np.median([s[2] for s in specs]))
    v["anisotropy_low"] = float(np.median([s[3] for s in specs]))
    coh = []
    for i in top:
        gy, gx = np.gradient(greys[i])
        jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
        coh.append(np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy + 1e-12))
    v["coherence"] = float(np.median(coh))
    skews, ratios_s, verticals, sparse = [], [], [], []
    for g in greys:
        h = g - _box3(g)
        s = h.std() + 1e-6
        skews.append(float((h**3).mean() / s**3))
        ratio, vertical = _streaks(h)
        ratios_s.append(ratio)
        verticals.append(vertical)
        sparse.append(float((h > 3 * sigma + 0.03).mean()))
    v["hp_skew"] = float(np.median(skews))
    v["streak_ratio"] = float(np.median(ratios_s))
    v["streak_vertical"] = float(np.median(verticals))
    v["bright_sparse"] = float(np.median(sparse))
