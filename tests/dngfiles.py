"""Real DNG files (a Bayer mosaic with the DNG tags LibRaw reads), written by the tests.

``write_dng(path, linear)`` mosaics a linear-light RGB scene (RGGB) at 16 bits for a camera
whose colour space is linear sRGB (ColorMatrix1 is XYZ to linear sRGB under D65, neutral white
balance), so a correct development gives back the scene through the sRGB curve.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import tifffile

XYZ_TO_LINEAR_SRGB = (
    (3.2406, -1.5372, -0.4986),
    (-0.9689, 1.8758, 0.0415),
    (0.0557, -0.2040, 1.0570),
)


def _srational(values) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        f = Fraction(v).limit_denominator(10000)
        out += [f.numerator, f.denominator]
    return tuple(out)


def write_dng(
    path,
    linear: np.ndarray,
    *,
    orientation: int = 1,
    make: str = "InstructIR",
    model: str = "Test Camera",
    date: str = "2026:11:30 10:42:00",
):
    """A DNG of an H x W x 3 linear scene in [0, 1] (H and W even)."""
    h, w, _ = linear.shape
    mosaic = np.empty((h, w), np.float64)
    mosaic[0::2, 0::2] = linear[0::2, 0::2, 0]  # R
    mosaic[0::2, 1::2] = linear[0::2, 1::2, 1]  # G
    mosaic[1::2, 0::2] = linear[1::2, 0::2, 1]  # G
    mosaic[1::2, 1::2] = linear[1::2, 1::2, 2]  # B
    data = np.rint(np.clip(mosaic, 0, 1) * 65535).astype(np.uint16)
    matrix = [v for row in XYZ_TO_LINEAR_SRGB for v in row]
    tags = [
        (254, "I", 1, 0, True),  # NewSubfileType: the main image
        (271, "s", 0, make, True),
        (272, "s", 0, model, True),
        (274, "H", 1, orientation, True),
        (306, "s", 0, date, True),
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, f"{make} {model}", True),  # UniqueCameraModel
        (50714, "I", 1, 0, True),  # BlackLevel
        (50717, "I", 1, 65535, True),  # WhiteLevel
        (50721, "2i", 9, _srational(matrix), True),  # ColorMatrix1
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
    ]
    tifffile.imwrite(path, data, photometric=32803, extratags=tags, metadata=None)
    return path
