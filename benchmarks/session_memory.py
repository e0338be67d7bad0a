"""Memory of an editing session that opens photos of many sizes, one after another.

    python benchmarks/session_memory.py             # official 7D config, seven photo sizes
    python benchmarks/session_memory.py --quick     # smaller photos

Each new photo size gives the engine new tile shapes to compile (OpenVINO compiles per
shape). One Restorer (the app keeps one per pack) restores photos of seven sizes in turn;
after each, the process's resident memory (``/proc/self/statm``) and the number of compiled
shapes kept are printed, then one JSON line. The official 7D configuration with seeded random
weights (benchmarks/engine.py's pack); `auto` picks the backend.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SIZES = [
    (864, 1152),
    (900, 1200),
    (1000, 1300),
    (800, 1100),
    (1200, 1100),
    (2000, 3000),
    (700, 1000),
]


def resident_gb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from engine import make_pack, test_image

    from instructir_desktop.core.restorer import Restorer

    pack = make_pack(Path(tempfile.mkdtemp(prefix="instructir-session-")) / "pack")
    r = Restorer(pack, device="cpu", cache_folder=pack / "cache")
    rows = [{"after": "load", "resident_gb": round(resident_gb(), 2)}]
    print(f"loaded ({r.backend.name} {r.backend.precision}): {rows[0]['resident_gb']} GB")
    for h, w in SIZES:
        if args.quick:
            h, w = h // 4, w // 4
        r.restore(test_image(h, w), "remove the noise")
        shapes = len(getattr(r.backend, "_compiled", ()))
        row = {"after": f"{h}x{w}", "resident_gb": round(resident_gb(), 2), "shapes": shapes}
        rows.append(row)
        print(f"after a {h}x{w} photo: {row['resident_gb']} GB resident, {shapes} compiled shapes")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps({"backend": r.describe(), "rows": rows, "peak_rss_gb": round(peak, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
