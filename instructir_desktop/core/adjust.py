"""Adjustments computed without the model: an exposure change in stops.

None of InstructIR's seven tasks darkens a photo, yet "it's too bright" is a common request.
An exposure adjustment answers it: the pixels go to linear light, are scaled by 2^stops and
pass a soft shoulder (highlights roll off towards white instead of clipping when the exposure
goes up), then return to sRGB. The result is an image like a restored one, so a layer's
strength blends it with its input in the same space as every other layer.

numpy only: the app's compute thread, the CLI and the tests use it without torch.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "EXPOSURE_TASK",
    "MAX_STOPS",
    "exposure",
    "darken_stops",
    "describe_stops",
    "adjustment_key",
]

EXPOSURE_TASK = "exposure"  # the task name adjustment layers carry (not one of the seven)
MAX_STOPS = 4.0
KNEE = 0.8  # linear value above which highlights roll off
MIDDLE_GREY = 0.18  # linear; where an average photo's mean luminance sits
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709, linear light


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    srgb = np.clip(srgb, 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def _shoulder(linear: np.ndarray) -> np.ndarray:
    """Identity below KNEE; above it, approach 1 smoothly (slope 1 at the knee)."""
    over = np.maximum(linear - KNEE, 0.0)
    span = 1.0 - KNEE
    return np.where(linear > KNEE, KNEE + span * np.tanh(over / span), linear)


def exposure(image: np.ndarray, stops: float) -> np.ndarray:
    """``image`` (float H x W x 3 sRGB in [0, 1]) with its exposure changed by ``stops``
    (negative darkens). Returns a new float32 array of the same shape."""
    if not math.isfinite(stops) or abs(stops) > MAX_STOPS:
        raise ValueError(f"an exposure change of {stops} stops is outside ±{MAX_STOPS:g}")
    linear = _to_linear(image.astype(np.float32, copy=False)) * np.float32(2.0**stops)
    if stops > 0:  # only light pushed up can pass white; darkening keeps every tone's order
        linear = _shoulder(linear)
    return _to_srgb(linear).astype(np.float32)


def darken_stops(image: np.ndarray, least: float = 0.5, most: float = 2.0) -> float:
    """How far to darken a photo said to be too bright: enough to bring its mean luminance
    to middle grey, at least ``least`` and at most ``most`` stops (returned negative)."""
    step = max(1, max(image.shape[:2]) // 512)  # a subsample is plenty for a mean
    linear = _to_linear(image[::step, ::step, :3].astype(np.float32, copy=False))
    mean = float((linear @ _LUMA).mean())
    wanted = math.log2(MIDDLE_GREY / mean) if mean > 0 else 0.0
    return -round(min(most, max(least, -wanted)), 2)


def describe_stops(stops: float) -> str:
    """ "−1.3 EV" (a real minus sign), for labels."""
    return f"{'−' if stops < 0 else '+'}{abs(stops):.1f} EV"


def adjustment_key(stops: float) -> str:
    """What identifies an exposure adjustment in cache keys (it does not depend on a pack)."""
    return f"{EXPOSURE_TASK} {stops:+.4f}"
