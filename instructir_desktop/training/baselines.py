"""Classical baselines, one per task, for the evaluation table (numpy + OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["BASELINES", "BASELINE_NAMES"]


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _f(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0


def nl_means(x: np.ndarray) -> np.ndarray:
    """OpenCV non-local means, strength set for sigma≈25 noise."""
    return _f(cv2.fastNlMeansDenoisingColored(_u8(x), None, 15, 15, 7, 21))


def unsharp(x: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(x, (0, 0), 2.0)
    return np.clip(x + 1.0 * (x - blurred), 0, 1)


def median_derain(x: np.ndarray) -> np.ndarray:
    """Median filter: removes thin bright streaks, the usual quick fix."""
    return _f(cv2.medianBlur(_u8(x), 5))


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1))


def _guided(guide: np.ndarray, src: np.ndarray, r: int = 30, eps: float = 1e-3) -> np.ndarray:
    mean_i, mean_p = _box(guide, r), _box(src, r)
    cov = _box(guide * src, r) - mean_i * mean_p
    var = _box(guide * guide, r) - mean_i**2
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, r) * guide + _box(b, r)


def dark_channel_prior(x: np.ndarray, omega: float = 0.95, patch: int = 15) -> np.ndarray:
    """He et al. (CVPR 2009) with a guided-filter refined transmission."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    dark = cv2.erode(x.min(axis=2), kernel)
    n = max(1, dark.size // 1000)
    idx = np.argsort(dark.ravel())[-n:]
    airlight = x.reshape(-1, 3)[idx].max(axis=0)
    norm = x / np.maximum(airlight, 1e-3)
    t = 1 - omega * cv2.erode(norm.min(axis=2), kernel)
    t = _guided(x.mean(axis=2).astype(np.float32), t.astype(np.float32))
    t = np.clip(t, 0.1, 1)[..., None]
    return np.clip((x - airlight) / t + airlight, 0, 1).astype(np.float32)


def gamma_clahe(x: np.ndarray) -> np.ndarray:
    """Gamma chosen to bring the mean luminance to 0.45, then CLAHE on lightness."""
    mean = float(np.clip(x.mean(), 1e-3, 0.99))
    gamma = np.log(0.45) / np.log(mean)
    y = np.clip(x, 1e-6, 1) ** gamma
    lab = cv2.cvtColor(_u8(y), cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(lab[..., 0])
    return _f(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


def bicubic(x: np.ndarray) -> np.ndarray:
    """The degraded input already is the bicubic upscale of the small image."""
    return x.copy()


def autocontrast_whitebalance(x: np.ndarray) -> np.ndarray:
    """Grey-world white balance, then a 1%/99% per-image levels stretch."""
    gains = x.reshape(-1, 3).mean(axis=0)
    y = x * (gains.mean() / np.maximum(gains, 1e-4))
    lo, hi = np.percentile(y, 1), np.percentile(y, 99)
    return np.clip((y - lo) / max(hi - lo, 1e-4), 0, 1).astype(np.float32)


BASELINES = {
    "denoise": nl_means,
    "deblur": unsharp,
    "derain": median_derain,
    "dehaze": dark_channel_prior,
    "lowlight": gamma_clahe,
    "superres": bicubic,
    "enhance": autocontrast_whitebalance,
}
BASELINE_NAMES = {
    "denoise": "OpenCV NL-means",
    "deblur": "unsharp mask",
    "derain": "median 5x5",
    "dehaze": "dark-channel prior",
    "lowlight": "gamma + CLAHE",
    "superres": "bicubic",
    "enhance": "grey-world + auto-levels",
}
