"""Overlapping tiles with smooth blend weights, and tile sizes from a memory budget.

The network is fully convolutional except the global average pool of each block's channel
attention, so tiles see slightly different statistics than the full frame. Large tiles, a
generous overlap and a raised-cosine cross-fade keep the seams invisible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Tile",
    "plan_tiles",
    "blend_weights",
    "tile_size_for_budget",
    "DEFAULT_OVERLAP",
    "ACTIVATION_FACTOR",
]

DEFAULT_OVERLAP = 64
# Peak activation memory of one forward pass, in float32 feature maps of the network's width
# at full tile resolution (measured on the official config under inference_mode).
ACTIVATION_FACTOR = 12

# A quick render (the app's first, smallest render of an instruction: QUICK_EDGE px long
# edge) runs on backends that compile per tile shape (OpenVINO) in one of two standard
# shapes, those of a 4:3 photo in either orientation, with mirrored pixels around the photo:
# compiled once, at load or from the disk cache, they let a photo of a new size show its
# first result without waiting for a compile (3 s for the official network on 2 AVX2 cores).
# A photo whose tile would fill less than 1 / QUICK_MAX_WASTE of a standard shape (a
# panorama) runs in its own shape.
QUICK_EDGE = 496
QUICK_BOXES = ((QUICK_EDGE * 3 // 4, QUICK_EDGE), (QUICK_EDGE, QUICK_EDGE * 3 // 4))
QUICK_MAX_WASTE = 1.5


@dataclass(frozen=True)
class Tile:
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def _spans(length: int, tile: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    # Starts are aligned down to the multiple, which can shrink an overlap by up to
    # multiple - 1 pixels: plan for that much more.
    want = overlap + multiple - 1
    if tile <= want:
        want = overlap
    n = math.ceil((length - want) / (tile - want))
    # Balanced: the smallest common size (rounded up to the network's size multiple) that
    # covers the length with n tiles overlapping by >= overlap. Fixed-size tiles would
    # compute up to a whole extra tile of overlap; equal sizes also mean few compiled shapes.
    size = math.ceil((length + (n - 1) * want) / n)
    size = min(tile, -(-size // multiple) * multiple, length)
    starts = [(i * (length - size)) // (n - 1) // multiple * multiple for i in range(n)]
    spans = [(s, s + size) for s in starts]
    spans[-1] = (starts[-1], length)  # the last one reaches the edge (up to multiple-1 more)
    return spans


def plan_tiles(
    height: int, width: int, tile: int, overlap: int = DEFAULT_OVERLAP, multiple: int = 1
) -> list[Tile]:
    """Cover the image with tiles of about tile x tile pixels overlapping by >= overlap.

    Every tile starts on a multiple of ``multiple``: the network halves the resolution
    log2(multiple) times and is not shift-invariant, so a tile that starts off that grid sees
    the photo in another phase and gives a visibly different result (a grid of seams). Sizes
    are multiples too, except the last tile of a row or column, which ends at the edge (it may
    be up to multiple - 1 pixels larger).
    """
    if tile <= overlap:
        raise ValueError("the tile must be larger than the overlap")
    if tile % multiple:
        raise ValueError("the tile must be a multiple of the size multiple")
    return [
        Tile(y0, y1, x0, x1)
        for y0, y1 in _spans(height, tile, overlap, multiple)
        for x0, x1 in _spans(width, tile, overlap, multiple)
    ]


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    w = np.ones(length, np.float32)
    n = min(overlap, length // 2)
    if n > 0:
        # Raised cosine, strictly positive so that every pixel has some weight.
        r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n)
        if not at_start:
            w[:n] = r
        if not at_end:
            w[-n:] = np.minimum(w[-n:], r[::-1])
    return w


def blend_weights(tile: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """H x W weights that fade a tile out towards its inner edges (not the image border)."""
    th, tw = tile.shape
    wy = _ramp(th, overlap, tile.y0 == 0, tile.y1 == height)
    wx = _ramp(tw, overlap, tile.x0 == 0, tile.x1 == width)
    return wy[:, None] * wx[None, :]


def tile_size_for_budget(
    budget_bytes: int,
    width: int,
    *,
    multiple: int = 16,
    largest: int = 2048,
    smallest: int = 128,
    factor: float = ACTIVATION_FACTOR,
) -> int:
    """Largest tile edge whose activations (``factor`` float32 feature maps of the network's
    width per pixel) fit the budget, rounded down to the size multiple."""
    per_pixel = factor * width * 4
    edge = int(math.sqrt(max(budget_bytes, 1) / per_pixel))
    edge = max(smallest, min(largest, edge))
    return max(multiple, edge - edge % multiple)
