"""Speed of the bundled instructir-lite pack through the Restorer, per backend.

    python benchmarks/lite_speed.py [--megapixels 1.0]

Prints seconds per megapixel (best of 3 after a warm-up) for torch and, when installed,
OpenVINO, each on the same photo-sized input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=1.0)
    args = ap.parse_args()
    from instructir_desktop.core.backends import openvino_available
    from instructir_desktop.core.packs import LITE_ID
    from instructir_desktop.core.resources import resource_path
    from instructir_desktop.core.restorer import Restorer

    h = int((args.megapixels * 1e6 * 2 / 3) ** 0.5)
    w = int(h * 1.5)
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    pack = resource_path("packs", LITE_ID)
    cache = Path(tempfile.mkdtemp())
    for backend in ["torch"] + (["openvino"] if openvino_available() else []):
        r = Restorer(pack, device="cpu", backend=backend, cache_folder=cache)
        r.restore(img, "remove the noise")
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r.restore(img, "remove the noise")
            times.append(time.perf_counter() - t0)
        mp = h * w / 1e6
        d = r.describe()
        print(
            f"{backend:<9} {d['precision']} tile {d['tile']}: {min(times) / mp:.2f} s/MP "
            f"({w}x{h}, best of 3)"
        )
    t0 = time.perf_counter()
    auto = Restorer(pack, device="cpu", cache_folder=cache)
    timings = ", ".join(f"{k} {v:.2f} s/MP" for k, v in auto.backend_timings.items())
    print(
        f"auto picks {auto.backend.name} (load and timing {time.perf_counter() - t0:.1f} s; "
        f"timed on 4 tiles of 256x256: {timings or 'only one backend usable'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
