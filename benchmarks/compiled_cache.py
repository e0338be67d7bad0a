"""How long a tile shape takes to get ready: compiled for the first time, or loaded from
OpenVINO's compiled-model cache (a folder per shape under ``compiled`` in the cache folder).

    python benchmarks/compiled_cache.py                    # 1 MP and the first render, 3 rounds
    python benchmarks/compiled_cache.py --sizes 880x1168 --rounds 5

Official 7D configuration with seeded random weights (benchmarks/engine.py's pack), the backend
``auto`` picks (OpenVINO where it is installed). Each round runs fresh processes in turn: one
compiles each tile shape into an empty shape folder ("compile"), the next gets the same shapes
from their folders ("from cache"). Only the shape's compile is timed (the pack, the converted
model and the backend's verdicts are ready beforehand). Prints each round, the medians, and
one JSON line with the folder's size per shape.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child(pack: Path, shapes: list[tuple[int, int]]) -> dict:
    from instructir_desktop.core.restorer import Restorer

    r = Restorer(pack, device="cpu", cache_folder=pack / "cache")
    if r.backend.name != "openvino":
        raise SystemExit("OpenVINO is not installed: torch has nothing to compile.")
    seconds = {}
    for h, w in shapes:
        t0 = time.perf_counter()
        r.backend._compiled_for(h, w, "LATENCY")
        seconds[f"{h}x{w}"] = round(time.perf_counter() - t0, 3)
    return {"backend": r.backend.label, "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="400x512,880x1168", help="tile shapes HxW (multiples of 16)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("PACK", "SHAPES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        pack, spec = args.child
        shapes = [tuple(int(v) for v in s.split("x")) for s in spec.split(",")]
        print(json.dumps(child(Path(pack), shapes)), flush=True)
        return 0
    from engine import make_pack

    work = Path(tempfile.mkdtemp(prefix="instructir-compiled-cache-"))
    pack = make_pack(work / "pack")

    def run() -> dict:
        cmd = [sys.executable, __file__, "--child", str(pack), args.sizes]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])

    compiled = pack / "cache" / "compiled"
    run()  # converts the model and records the backend's verdicts
    rows = {"compile": [], "from cache": []}
    sizes = {}
    for r in range(args.rounds):
        shutil.rmtree(compiled, ignore_errors=True)
        cold = run()["seconds"]
        for folder in compiled.iterdir():
            sizes[folder.name] = sum(f.stat().st_size for f in folder.iterdir())
        warm = run()["seconds"]
        rows["compile"].append(cold)
        rows["from cache"].append(warm)
        print(f"round {r + 1}: compile {cold}, from cache {warm}", flush=True)
    medians = {
        kind: {s: statistics.median(row[s] for row in runs) for s in runs[0]}
        for kind, runs in rows.items()
    }
    print(f"medians: {medians}")
    print(json.dumps({"medians": medians, "rounds": rows, "folder_bytes": sizes}))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
