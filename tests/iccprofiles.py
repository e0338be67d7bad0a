"""Real ICC v2 matrix/TRC display profiles, written by the tests (no profile files in the repo).

``matrix_profile(primaries, gamma)`` builds what cameras and phones embed in their photos:
three colorants adapted to D50 (Bradford), a D50 white point and one gamma curve per channel.
``to_srgb8`` is the same conversion done independently in numpy, to check littleCMS against.
"""

from __future__ import annotations

import struct

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
D65_XY = (0.3127, 0.3290)
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))  # Display P3 (phones)
ADOBE_PRIMARIES = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))  # Adobe RGB (1998)
SRGB_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def colorants(primaries, white=D65_XY) -> np.ndarray:
    """3x3 matrix: linear RGB -> XYZ (D50), columns are the colorants, as in rXYZ/gXYZ/bXYZ."""
    p = np.stack([_xyz(*xy) for xy in primaries], axis=1)
    w = _xyz(*white)
    m = p * np.linalg.solve(p, w)  # scale the primaries so that RGB = 1 is the white
    src, dst = BRADFORD @ w, BRADFORD @ D50
    adapt = np.linalg.inv(BRADFORD) @ np.diag(dst / src) @ BRADFORD
    return adapt @ m


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(v) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15(c) for c in v)


def _desc_tag(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)


def matrix_profile(primaries, gamma: float, description: str) -> bytes:
    """An ICC v2 RGB display profile ('mntr', PCS XYZ) for these primaries (D65 white)."""
    m = colorants(primaries)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [
        (b"desc", _desc_tag(description)),
        (b"wtpt", _xyz_tag(D50)),
        (b"rXYZ", _xyz_tag(m[:, 0])),
        (b"gXYZ", _xyz_tag(m[:, 1])),
        (b"bXYZ", _xyz_tag(m[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text" + bytes(4) + b"No copyright, test profile\0\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 12, 1, 0, 0, 0)
        + b"acsp"
        + bytes(4 * 4 + 8)
        + struct.pack(">I", 0)
        + b"".join(_s15(c) for c in D50)
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def display_p3() -> bytes:
    return matrix_profile(P3_PRIMARIES, 2.2, "Test Display P3 (gamma 2.2)")


def adobe_rgb() -> bytes:
    return matrix_profile(ADOBE_PRIMARIES, 563 / 256, "Test Adobe RGB (1998)")


def to_srgb8(rgb8: np.ndarray, primaries, gamma: float) -> np.ndarray:
    """8-bit RGB in a matrix/gamma profile -> 8-bit sRGB, relative colorimetric, clipped."""
    linear = (rgb8.astype(np.float64) / 255) ** gamma
    xyz = linear @ colorants(primaries).T
    srgb = np.clip(xyz @ np.linalg.inv(colorants(SRGB_PRIMARIES)).T, 0, 1)
    encoded = np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)
    return np.rint(encoded * 255).astype(np.uint8)
