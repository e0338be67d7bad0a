"""The non-destructive stack as plain numpy: fingerprints, the render cache, compositing.

``x0 = source``; for each visible layer ``y_i = restore(x_{i-1}, instruction_i)`` and
``x_i = x_{i-1} + mask_i * strength_i * (y_i - x_{i-1})`` (no mask: 1 everywhere; a mask
changes blending only, never what the model sees). Fingerprints are chained hashes of
(source, instruction, strength, pack, resolution), so the key of every restore in the stack
is known without any pixels: the scheduler can tell which running job is still useful, and a
cached ``y_i`` is found again after undo, redo, toggling or a strength change.

No Qt here: the compute thread and the tests use it directly.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from instructir_desktop.core.adjust import adjustment_key, exposure
from instructir_desktop.core.masks import apply_mask

__all__ = [
    "StepSpec",
    "RestoreKey",
    "ChainLink",
    "Missing",
    "Evaluation",
    "RenderCache",
    "level_fingerprint",
    "chain",
    "evaluate",
    "resize_rgb",
    "preview_size",
    "Pyramid",
    "build_pyramid",
    "thumbnail",
]


@dataclass(frozen=True)
class StepSpec:
    """One layer as the renderer sees it."""

    layer_id: str
    instruction: str
    strength: float
    visible: bool
    adjust: float | None = None  # an exposure adjustment in stops, computed without the model
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # uint16 H x W
    mask_key: str = ""

    @property
    def active(self) -> bool:
        """Hidden and 0 % layers are the identity: nothing to restore, nothing to blend."""
        return self.visible and self.strength > 0.0


RestoreKey = tuple[str, str, str, tuple[int, int]]  # input fp, instruction, pack, (h, w)


def _hash(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode("utf-8")).hexdigest()[:20]


def level_fingerprint(source_fp: str, size: tuple[int, int]) -> str:
    """Fingerprint of the source scaled to ``size`` (h, w): x0 of that resolution."""
    return _hash("source", source_fp, tuple(size))


@dataclass(frozen=True)
class ChainLink:
    """Keys of one layer: what its restore is cached under and what its output is called."""

    layer_id: str
    input_fp: str
    key: RestoreKey | None  # None: the layer is the identity (hidden or 0 %)
    output_fp: str


def chain(base_fp: str, steps: list[StepSpec], pack: str, size: tuple[int, int]) -> list[ChainLink]:
    """Keys of every layer of the stack, computed without touching pixels."""
    links = []
    fp = base_fp
    for s in steps:
        if not s.active:
            links.append(ChainLink(s.layer_id, fp, None, fp))
            continue
        if s.adjust is None:
            key: RestoreKey = (fp, s.instruction, pack, tuple(size))
        else:  # the same with any pack, and its amount is what it is
            key = (fp, adjustment_key(s.adjust), "", tuple(size))
        out = _hash(*key[:3], round(float(s.strength), 4), *([s.mask_key] if s.mask_key else []))
        links.append(ChainLink(s.layer_id, fp, key, out))
        fp = out
    return links


class RenderCache:
    """Thread-safe LRU of restored outputs (``y``) and composites (``x``), bounded in bytes."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def _get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def _put(self, key: tuple, value: np.ndarray) -> None:
        value.setflags(write=False)  # shared between threads: nobody may change it in place
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = value
            self._bytes += value.nbytes
            # Keep at least the newest entry, even when it alone exceeds the budget.
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def restored(self, key: RestoreKey) -> np.ndarray | None:
        return self._get(("y", key))

    def put_restored(self, key: RestoreKey, image: np.ndarray) -> None:
        self._put(("y", key), image)

    def mask(self, mask_key: str, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A layer's mask as float32 weights in [0, 1] at ``size`` (h, w), kept for the
        next render of that level."""
        key = ("m", mask_key, tuple(size))
        plane = self._get(key)
        if plane is None:
            plane = np.asarray(mask, np.float32) / np.float32(65535.0)
            if plane.shape != tuple(size):
                im = Image.fromarray(plane, mode="F").resize(
                    (size[1], size[0]), Image.Resampling.BILINEAR
                )
                plane = np.clip(np.asarray(im, np.float32), 0.0, 1.0)
            self._put(key, plane)
        return plane

    def composite(self, fp: str) -> np.ndarray | None:
        return self._get(("x", fp))

    def put_composite(self, fp: str, image: np.ndarray) -> None:
        self._put(("x", fp), image)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


@dataclass
class Missing:
    """The first layer whose restored output is not cached yet, with the input it needs."""

    index: int
    layer_id: str
    key: RestoreKey
    instruction: str
    image: np.ndarray


@dataclass
class Evaluation:
    """Result of walking the stack: the composite, or the first missing restore."""

    fingerprint: str
    image: np.ndarray | None
    missing: Missing | None = None
    outputs: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)


def evaluate(
    base: np.ndarray, base_fp: str, steps: list[StepSpec], pack: str, cache: RenderCache
) -> Evaluation:
    """Composite as far as the cache allows. Only blends; never runs the model."""
    size = (int(base.shape[0]), int(base.shape[1]))
    links = chain(base_fp, steps, pack, size)
    x = base
    outputs: dict[str, tuple[str, np.ndarray]] = {}
    for i, (step, link) in enumerate(zip(steps, links)):
        if link.key is None:
            outputs[step.layer_id] = (link.output_fp, x)
            continue
        cached = cache.composite(link.output_fp)
        if cached is not None:
            x = cached
            outputs[step.layer_id] = (link.output_fp, x)
            continue
        y = cache.restored(link.key)
        if y is None and step.adjust is not None:
            y = exposure(x, step.adjust)
            cache.put_restored(link.key, y)
        if y is None:
            missing = Missing(i, step.layer_id, link.key, step.instruction, x)
            return Evaluation(link.input_fp, None, missing, outputs)
        if step.mask is not None:
            # masks blend in the strength space: x + mask * strength * (y - x)
            weight = cache.mask(step.mask_key, step.mask, size) * np.float32(step.strength)
            x = apply_mask(x, y, weight)
            cache.put_composite(link.output_fp, x)
            outputs[step.layer_id] = (link.output_fp, x)
            continue
        x = blend(x, y, step.strength)
        if step.strength < 1.0:  # at 100 % the composite is y itself, already cached
            cache.put_composite(link.output_fp, x)
        outputs[step.layer_id] = (link.output_fp, x)
    final_fp = links[-1].output_fp if links else base_fp
    return Evaluation(final_fp, x, None, outputs)


def blend(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """``x + strength * (y - x)``; strength 1 returns ``y`` itself (no copy)."""
    if strength >= 1.0:
        return y
    out = np.subtract(y, x, dtype=np.float32)
    out *= np.float32(strength)
    out += x
    return out


def preview_size(width: int, height: int, edge: int) -> tuple[int, int] | None:
    """(w, h) of the preview, or None when the photo is already small enough."""
    longest = max(width, height)
    if longest <= edge:
        return None
    scale = edge / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float RGB resize (w, h) with Pillow's antialiasing filter, channel by channel."""
    planes = []
    for c in range(image.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F")
        planes.append(np.asarray(plane.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)))
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Pyramid:
    """8-bit RGB images of one frame, halving in size; ``scale`` = level 0 width / photo width.

    The canvas paints from the smallest level that is still sharp at the current zoom, so a
    24 MP photo is never rescaled as a whole on a repaint. The levels are what the screen
    shows: converted by ``to_screen`` (the photo's profile to sRGB, ``app.display``) when the
    photo has one; composites of the same photo are built with the same conversion.
    """

    levels: tuple[np.ndarray, ...]
    scale: float
    fingerprint: str
    to_screen: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        """(w, h) of level 0."""
        return int(self.levels[0].shape[1]), int(self.levels[0].shape[0])


def build_pyramid(
    image: np.ndarray,
    full_width: int,
    fingerprint: str,
    min_edge: int = 256,
    to_screen: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Pyramid:
    """Convert a float frame to 8 bits (and for the screen) once, then average 2x2 blocks down
    to ``min_edge``."""
    level = np.rint(np.clip(image, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    if to_screen is not None:
        level = to_screen(level)
    levels = [level]
    while max(level.shape[:2]) > min_edge and min(level.shape[:2]) >= 2:
        h, w = level.shape[0] // 2 * 2, level.shape[1] // 2 * 2
        q = level[:h, :w].astype(np.uint16)
        level = ((q[0::2, 0::2] + q[1::2, 0::2] + q[0::2, 1::2] + q[1::2, 1::2] + 2) >> 2).astype(
            np.uint8
        )
        levels.append(level)
    return Pyramid(tuple(levels), image.shape[1] / full_width, fingerprint, to_screen)


def thumbnail(
    image: np.ndarray, edge: int = 96, to_screen: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """A small 8-bit RGB copy for chat messages and layer rows (``to_screen``: as for
    :func:`build_pyramid`)."""
    step = max(1, max(image.shape[:2]) // (edge * 2))  # subsample first: cheap on big frames
    small = image[::step, ::step]
    im = Image.fromarray(np.rint(np.clip(small, 0, 1) * 255).astype(np.uint8), "RGB")
    im.thumbnail((edge, edge), Image.Resampling.BILINEAR)
    out = np.asarray(im)
    return out if to_screen is None else to_screen(out)
