"""A compiled tile shape's first run against its next ones, with and without the warm-up that
``Restorer.prepare`` runs while the user types.

    python benchmarks/first_run.py              # 1 MP, four fresh processes of each kind
    python benchmarks/first_run.py --rounds 6 --size 372x496

Official 7D configuration with seeded random weights (benchmarks/engine.py's pack), the
backend ``auto`` picks. Each process loads the pack and gets the photo's one tile shape ready,
either compiled only ("cold") or as ``prepare`` does it, compiled and run once on zeros
("warmed"); then it restores the photo twice and prints both times. The kinds take turns, so
a burst of load from another program hits both alike. Prints every process's two restores
(seconds, and minor page faults: memory touched for the first time), the mean of the first
restores of each kind and their ratio, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child(pack: Path, size: tuple[int, int], kind: str) -> dict:
    from engine import test_image

    from instructir_desktop.core.restorer import Restorer

    r = Restorer(pack, device="cpu", cache_folder=pack / "cache")
    img = test_image(*size)
    r.encoder.embedding("remove the noise")  # the text model loaded: only the shape is timed
    t0 = time.perf_counter()
    if kind == "warmed" or r.backend.name != "openvino":
        r.prepare([size])
        for helper in [t for t in threading.enumerate() if t.name == "instructir-compile"]:
            helper.join()
    else:  # the shapes prepare would compile, compiled the same way, and not run
        m = r.descriptor.size_multiple
        for tile in r._plan(*size, r.tile_size())[2]:
            h, w = tile.shape
            r.backend._compiled_for(h + (-h) % m, w + (-w) % m, "LATENCY")
    ready = time.perf_counter() - t0
    runs, faults = [], []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        r.restore(img, "remove the noise")
        runs.append(round(time.perf_counter() - t0, 3))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {
        "kind": kind,
        "ready_s": round(ready, 2),
        "runs_s": runs,
        "page_faults": faults,
        **r.describe(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4, help="fresh processes of each kind")
    ap.add_argument("--size", default="864x1152", help="photo HEIGHTxWIDTH (one tile)")
    ap.add_argument("--child", choices=["cold", "warmed"], help=argparse.SUPPRESS)
    ap.add_argument("--pack", help=argparse.SUPPRESS)
    args = ap.parse_args()
    size = tuple(int(n) for n in args.size.lower().split("x"))
    if args.child:
        print(json.dumps(child(Path(args.pack), size, args.child)), flush=True)
        return 0
    from engine import make_pack

    pack = make_pack(Path(tempfile.mkdtemp(prefix="instructir-first-run-")) / "pack")
    rows: dict[str, list[dict]] = {"cold": [], "warmed": []}
    for _ in range(max(1, args.rounds)):
        for kind in rows:
            cmd = [sys.executable, __file__, "--child", kind, "--pack", str(pack)]
            proc = subprocess.run(
                cmd + ["--size", args.size], capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows[kind].append(row)
            print(
                f"{kind:<6} ready in {row['ready_s']:5.2f} s, restores "
                f"{row['runs_s'][0]:.3f} s then {row['runs_s'][1]:.3f} s "
                f"(page faults {row['page_faults'][0]} then {row['page_faults'][1]})",
                flush=True,
            )
    first = {kind: statistics.mean(r["runs_s"][0] for r in rs) for kind, rs in rows.items()}
    second = statistics.mean(r["runs_s"][1] for rs in rows.values() for r in rs)
    backend = rows["cold"][0]
    print(
        f"{args.size}, {backend['backend']}/{backend['precision']}, tile {backend['tile']}: "
        f"first restore cold {first['cold']:.3f} s, warmed {first['warmed']:.3f} s "
        f"({first['cold'] / first['warmed']:.2f}x); second restores {second:.3f} s"
    )
    print(
        json.dumps(
            {
                "size": args.size,
                "backend": backend["backend"],
                "precision": backend["precision"],
                "first_cold_s": round(first["cold"], 3),
                "first_warmed_s": round(first["warmed"], 3),
                "second_s": round(second, 3),
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
