"""How long opening a photo takes in the app, by kind of file.

    python benchmarks/open_photo.py [--megapixels 24] [--rounds 3]

Writes, in a temporary folder, one picture (a smooth gradient with fine noise, 3:2) as an sRGB
JPEG, the same JPEG tagged Display P3 (the canvas shows it converted to sRGB), a DNG (LibRaw
develops it) and, when pillow-heif is installed to write it, a HEIC of at most 11 MP (pillow-heif
writes a picture as one HEVC image, which libde265 decodes only up to about 11 MP; phones write
grids of 512 px tiles, which it decodes at any size); then times what the app's
I/O thread does with each: ``app.files.open_bytes`` (decode, the preview levels, the display
pyramid), best of ``--rounds``, with the peak resident memory of the process. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # dngfiles, iccprofiles: the tests' file writers


HEIC_MAX_MP = 11.0


def picture(megapixels: float) -> np.ndarray:
    h = int(round((megapixels * 1e6 / 1.5) ** 0.5 / 2)) * 2
    w = int(round(h * 1.5 / 2)) * 2
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([0.1 + 0.6 * x / w, 0.15 + 0.5 * y / h, np.full(x.shape, 0.3, np.float32)], 2)
    rgb += np.random.default_rng(0).normal(0, 0.02, rgb.shape).astype(np.float32)
    return np.clip(rgb, 0, 1)


def files(rgb: np.ndarray, folder: Path) -> dict[str, Path]:
    import dngfiles
    import iccprofiles
    from PIL import Image

    image = Image.fromarray((rgb * 255).astype(np.uint8))
    out = {"jpeg": folder / "photo.jpg", "jpeg_p3": folder / "phone.jpg"}
    image.save(out["jpeg"], quality=92)
    image.save(out["jpeg_p3"], quality=92, icc_profile=iccprofiles.display_p3())
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    linear[:, : max(8, rgb.shape[1] // 100)] = 1.0  # a white edge for LibRaw's auto-brightness
    out["dng"] = dngfiles.write_dng(folder / "raw.dng", linear)
    try:
        import pillow_heif
    except ImportError:
        return out
    out["heic"] = folder / "phone.heic"
    if rgb.shape[0] * rgb.shape[1] > HEIC_MAX_MP * 1e6:
        image = Image.fromarray((picture(HEIC_MAX_MP) * 255).astype(np.uint8))
    pillow_heif.from_pillow(image).save(out["heic"], quality=90)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=24.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preview-edge", type=int, default=1280)
    args = ap.parse_args()
    from instructir_desktop.app.files import open_bytes

    rgb = picture(args.megapixels)
    report: dict[str, object] = {"megapixels": round(rgb.shape[0] * rgb.shape[1] / 1e6, 2)}
    with tempfile.TemporaryDirectory(prefix="instructir-open-") as tmp:
        for kind, path in files(rgb, Path(tmp)).items():
            data = path.read_bytes()
            best = float("inf")
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                opened = open_bytes(data, path.name, args.preview_edge)
                best = min(best, time.perf_counter() - t0)
                converted = opened.pyramid.to_screen is not None
                opened_mp = opened.source.photo.width * opened.source.photo.height / 1e6
                del opened
            report[kind] = {
                "megapixels": round(opened_mp, 2),
                "seconds": round(best, 2),
                "file_mb": round(len(data) / 1e6, 1),
                "shown_converted": converted,
            }
    report["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
