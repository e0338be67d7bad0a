"""Time-to-window of ``instructir-desktop`` in fresh processes.

Each run starts the app with INSTRUCTIR_STARTUP_PROBE=1: the window shows, the app prints
``{"time_to_window_s", "torch_imported"}`` (measured from the process start) and quits. The
first run only warms the disk cache and is excluded; the figures are over the others.

    python benchmarks/startup.py [--runs 6] [--display]   # --display: use the real screen
    python benchmarks/startup.py --model [--pack instructir-lite]

``--model`` times "model ready" instead: a fresh process loads the pack through the job
pipeline (as the app's model thread does, text encoder warmed up), first with empty caches
(a first start) and then with the caches that run left (warm starts), each from starting
the process to the moment it says the model is ready; one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command() -> list[str]:
    """The installed launcher when there is one, else the module from this checkout."""
    script = shutil.which("instructir-desktop")
    return [script] if script else [sys.executable, "-m", "instructir_desktop.ui.main"]


def one_run(env: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    result = subprocess.run(
        command(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"the app failed to start:\n{result.stderr[-2000:]}")
    line = next(x for x in reversed(result.stdout.splitlines()) if x.startswith("{"))
    report = json.loads(line)
    report["process_wall_s"] = wall  # includes shutting down again
    return report


MODEL_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from instructir_desktop.core.jobs import JobKind, JobQueue, LoadRequest
from instructir_desktop.core.store import ModelStore
pack = sys.argv[1]
d = JobQueue().run(JobKind.LOAD, LoadRequest(ModelStore().locate(pack), pack))
print(json.dumps({"ready_s": time.perf_counter() - t0, "backend": d["backend"],
                  "precision": d["precision"]}))
"""


def model_ready(pack: str, runs: int) -> dict:
    """Seconds from process start to a loaded model: one first start, then warm starts."""
    with tempfile.TemporaryDirectory(prefix="instructir-bench-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "INSTRUCTIR_CONFIG_DIR": str(Path(tmp) / "config"),
            "INSTRUCTIR_DATA_DIR": str(Path(tmp) / "data"),
            "INSTRUCTIR_CACHE_DIR": str(Path(tmp) / "cache"),
        }

        def once() -> dict:
            """From starting the process to its "ready" line (not counting its exit)."""
            t0 = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-u", "-c", MODEL_PROBE, pack],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            line = child.stdout.readline()
            ready = time.perf_counter() - t0
            _, err = child.communicate(timeout=900)
            if child.returncode != 0 or not line.startswith("{"):
                raise SystemExit(f"loading failed:\n{err[-2000:]}")
            report = json.loads(line)
            report["process_s"] = ready
            return report

        first = once()
        warm = [once() for _ in range(runs)]
    ready = [w["process_s"] for w in warm]
    return {
        "pack": pack,
        "backend": first["backend"],
        "precision": first["precision"],
        "first_start_s": round(first["process_s"], 2),
        "warm_median_s": round(statistics.median(ready), 2),
        "warm_min_s": round(min(ready), 2),
        "warm_runs": runs,
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="measured runs (after one warm-up)")
    parser.add_argument("--display", action="store_true", help="show on the real display")
    parser.add_argument("--model", action="store_true", help="time 'model ready' instead")
    parser.add_argument("--pack", default="instructir-lite", help="pack for --model")
    args = parser.parse_args()
    if args.model:
        print(json.dumps(model_ready(args.pack, min(args.runs, 3))))
        return 0
    with tempfile.TemporaryDirectory(prefix="instructir-bench-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "INSTRUCTIR_STARTUP_PROBE": "1",
            "INSTRUCTIR_CONFIG_DIR": str(Path(tmp) / "config"),
            "INSTRUCTIR_DATA_DIR": str(Path(tmp) / "data"),
            "INSTRUCTIR_CACHE_DIR": str(Path(tmp) / "cache"),
        }
        if not args.display:
            env["QT_QPA_PLATFORM"] = "offscreen"
        print(f"command: {' '.join(command())}  (platform: {env.get('QT_QPA_PLATFORM', 'native')})")
        warm = one_run(env)
        print(f"warm-up run (excluded): {warm['time_to_window_s']:.3f} s")
        runs = []
        for i in range(args.runs):
            report = one_run(env)
            runs.append(report)
            print(
                f"run {i + 1}: time to window {report['time_to_window_s']:.3f} s, "
                f"torch imported before the window: {report['torch_imported']}"
            )
    times = [r["time_to_window_s"] for r in runs]
    print(
        f"time to window over {len(times)} runs: median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s"
    )
    if any(r["torch_imported"] for r in runs):
        print("WARNING: torch was imported before the window showed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
