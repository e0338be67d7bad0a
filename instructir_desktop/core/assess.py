"""What the photo itself says needs fixing: a score and a plain-language reason for each of the
seven tasks, and the fixes worth applying in the order they should be applied.

The classical estimators of ``core/assess_features.py`` (noise, exposure, haze, blur,
resolution, rain, colour) feed a small MLP trained by ``training/assess.py`` on the same
synthetic degradations the restoration pack learns from, plus clean photos that are naturally
dark, soft or misty. Its weights are a few kB of JSON in ``resources/assess/`` and it runs in
numpy, so it works with any model pack and never touches torch.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .assess_features import FEATURE_NAMES, Measures, measure
from .errors import ModelCorruptError
from .packs import TASKS
from .resources import resource_path

__all__ = [
    "APPLY_ORDER",
    "SUGGEST_AT",
    "Finding",
    "Assessment",
    "Assessor",
    "assess",
    "default_assessor",
    "default_weights_path",
    "assess_photo_bytes",
]

SUGGEST_AT = 0.5
# The order fixes are applied in. Exposure first: the other steps are trained on normally
# exposed photos and brightening changes how strong the noise looks. Noise next, because every
# later step (dehazing's contrast stretch, deblurring, upscaling) amplifies it. Haze and rain
# are veils over the scene, removed before the edges are sharpened; deblurring comes before
# upscaling, which would enlarge the blur; colour and contrast are the finishing grade.
APPLY_ORDER: tuple[str, ...] = (
    "lowlight",
    "denoise",
    "dehaze",
    "derain",
    "deblur",
    "superres",
    "enhance",
)
# What the photo looks like when a task scores high, for the one-line summary.
LOOKS: dict[str, str] = {
    "denoise": "noisy",
    "deblur": "blurry",
    "derain": "streaked with rain",
    "dehaze": "hazy",
    "lowlight": "too dark",
    "superres": "low in resolution",
    "enhance": "flat or off in colour",
}
GONE: dict[str, str] = {
    "denoise": "the noise is gone",
    "deblur": "the blur is gone",
    "derain": "the rain is gone",
    "dehaze": "the haze is gone",
    "lowlight": "it is bright enough",
    "superres": "the detail is back",
    "enhance": "the colours look right",
}


def default_weights_path() -> Path:
    """The bundled assessor weights."""
    return resource_path("assess", "assessor.json")


@dataclass(frozen=True)
class Finding:
    """One task: how likely the photo needs it (0..1) and why, in a photographer's words."""

    task: str
    score: float
    evidence: str

    def to_dict(self) -> dict:
        return {"task": self.task, "score": round(self.score, 3), "evidence": self.evidence}


@dataclass(frozen=True)
class Assessment:
    """Findings for all seven tasks (highest score first) and the suggested fixes in order."""

    findings: tuple[Finding, ...]
    suggested: tuple[str, ...]
    seconds: float = 0.0

    def finding(self, task: str) -> Finding:
        return next(f for f in self.findings if f.task == task)

    def to_dict(self, path: str | None = None) -> dict:
        """The ``instructir assess --json`` object (``path`` first when given)."""
        row: dict = {} if path is None else {"path": path}
        row["suggested"] = list(self.suggested)
        row["findings"] = [f.to_dict() for f in self.findings]
        return row

    def summary(self) -> str:
        """One sentence: what the photo looks like and why, or that nothing needs fixing."""
        if not self.suggested:
            return "Nothing obvious to fix."
        parts = [f"{LOOKS[t]} ({self.finding(t).evidence})" for t in self.suggested]
        return f"This photo looks {_join(parts)}."

    def compare(self, before: Assessment) -> str:
        """What changed since ``before``: fixed problems, and the ones still there."""
        gone = [GONE[t] for t in before.suggested if t not in self.suggested]
        still = [LOOKS[t] for t in self.suggested]
        if not gone and not still:
            return "Nothing obvious to fix."
        text = "; ".join(gone)
        if still:
            rest = f"it is still {_join(still)}"
            text = f"{text}; {rest}" if text else rest[0].upper() + rest[1:]
        return text[0].upper() + text[1:] + "."


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class Assessor:
    """The trained classifier over the estimators; ``assess(image)`` is thread-safe."""

    def __init__(self, weights: Path | None = None) -> None:
        path = Path(weights) if weights is not None else default_weights_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != "instructir-assessor" or data["features"] != list(
                FEATURE_NAMES
            ):
                raise ValueError("features do not match this version")
            self.mean = np.asarray(data["mean"], np.float32)
            self.std = np.asarray(data["std"], np.float32)
            self.layers = [
                (np.asarray(layer["weight"], np.float32), np.asarray(layer["bias"], np.float32))
                for layer in data["layers"]
            ]
            self.tasks: tuple[str, ...] = tuple(data["tasks"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelCorruptError(
                f"The photo assessor's weights ({path.name}) are missing or damaged: {exc}"
            ) from exc
        if self.tasks != TASKS:
            raise ModelCorruptError(f"The photo assessor in {path.name} knows other tasks.")
        self.path = path

    def scores(self, vector: np.ndarray) -> np.ndarray:
        """Per-task probabilities for one feature vector."""
        x = (vector - self.mean) / self.std
        (w1, b1), (w2, b2) = self.layers
        logits = np.tanh(x @ w1.T + b1) @ w2.T + b2
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))

    def assess(self, image: np.ndarray) -> Assessment:
        """Assess a float32 HxWx3 photo in [0, 1] of any size."""
        t0 = time.perf_counter()
        m = measure(image)
        probs = self.scores(m.vector)
        findings = sorted(
            (Finding(t, float(p), evidence(t, m)) for t, p in zip(self.tasks, probs)),
            key=lambda f: -f.score,
        )
        suggested = tuple(
            t for t in APPLY_ORDER if next(f for f in findings if f.task == t).score >= SUGGEST_AT
        )
        return Assessment(tuple(findings), suggested, time.perf_counter() - t0)


@functools.lru_cache(maxsize=1)
def default_assessor() -> Assessor:
    """The bundled assessor, loaded once."""
    return Assessor()


def assess(image: np.ndarray) -> Assessment:
    """Assess a photo with the bundled assessor."""
    return default_assessor().assess(image)


def assess_photo_bytes(data: bytes, name: str = "") -> dict:
    """Decode an encoded photo and assess it: the bridge's ``POST /assess`` answer, with the
    summary sentence and, per suggested fix in order, its button title and instruction."""
    from .images import load_image_bytes
    from .packs import TASK_PROMPTS, TASK_TITLES

    result = assess(load_image_bytes(data, name=name).pixels)
    steps = [
        {"task": t, "title": TASK_TITLES[t], "instruction": TASK_PROMPTS[t]}
        for t in result.suggested
    ]
    return {**result.to_dict(), "summary": result.summary(), "steps": steps}


# Medians over the clean training photos, so evidence can say "40 % of the usual".
_SHARP_WAVELET_RATIO = -0.63  # log10 fine/medium detail energy, sharpest crop
_SHARP_FINEST_BAND = -2.5  # log10 power of the finest band relative to coarse structure


def _pct(x: float) -> str:
    return "under 1 %" if x < 0.005 else f"{x * 100:.0f} %"


def _cast_name(rgb: list[float]) -> str:
    dev = np.asarray(rgb) - float(np.mean(rgb))
    i = int(np.argmax(np.abs(dev)))
    names = (("red", "cyan"), ("green", "magenta"), ("blue", "yellow"))
    return names[i][0] if dev[i] > 0 else names[i][1]


def evidence(task: str, m: Measures) -> str:
    """The figure behind a task's score, said the way a photographer would."""
    if task == "denoise":
        text = f"noise about σ {m['sigma']:.0f}"
        if m["sigma_chroma"] > 4 and m["sigma_chroma"] > 0.5 * m["sigma"]:
            text += ", with colour speckles"
        return text
    if task == "lowlight":
        dark = m["frac_below_10"]
        share = "most of it" if dark > 0.5 else f"{_pct(dark)} of it"
        return f"{share} is below 10 % brightness, the brightest parts reach {_pct(m['l_p99'])}"
    if task == "dehaze":
        return (
            f"even its darkest parts sit at {_pct(m['dc_p10'])} brightness, "
            f"colours at {_pct(m['sat_mean'])} saturation"
        )
    if task == "derain":
        return (
            f"thin bright streaks, {10 ** m['streak_vertical']:.1f}x stronger along the vertical "
            "than across"
        )
    if task == "deblur":
        share = 10 ** (m["wav_r12_max"] - _SHARP_WAVELET_RATIO)
        return f"the sharpest part has {_pct(min(share, 1.0))} of a sharp photo's fine detail"
    if task == "superres":
        share = 10 ** (m["spec_s6"] - _SHARP_FINEST_BAND)
        return f"detail at the 2-pixel scale is {_pct(min(share, 1.0))} of a sharp photo's"
    if task == "enhance":
        low, high = _pct(m["l_p1"]), _pct(m["l_p1"] + m["l_range"])
        text = f"tones span {low}–{high}" if low != high else f"all tones at {low} brightness"
        text += f", colours at {_pct(m['sat_mean'])} saturation"
        if m["cast"] > 0.08:
            text += f", a {_cast_name(m['cast_rgb'])} cast"  # type: ignore[arg-type]
        return text
    raise ValueError(f"unknown task {task!r}")
