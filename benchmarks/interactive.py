"""How fast the app answers an instruction: first visible result, preview, full resolution.

    python benchmarks/interactive.py                 # 1 MP and 24 MP photos
    python benchmarks/interactive.py --sizes 1mp     # one size
    python benchmarks/interactive.py --quick         # small photos, for a smoke run
    python benchmarks/interactive.py --typing 5      # Enter 5 s after the photo shows
    python benchmarks/interactive.py --earlier 1000x1500  # not the first photo of its size

The official 7D network configuration with seeded random weights (speed does not depend on
the weight values; see benchmarks/engine.py) runs in the app's own objects, offscreen: an
EditorSession loads the pack on its model worker, opens the photo, and the instruction goes
in through ``submit`` as if typed, ``--typing`` seconds after the photo is shown (meanwhile
the app gets the model ready for the photo's sizes). The clock starts at Enter and stops
when the render scheduler hands the canvas each level of the new document: ``first_s``
(the first frame, which comes with the layer and its thumbnail), ``preview_s`` and
``full_s``. Each size runs in its own process. With ``--earlier HxW`` a photo of that size
is opened and edited first, in an earlier process with the same caches (an earlier start of
the app): the photo measured is then a new size, but not the first photo ever. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SIZES = {"1mp": (864, 1152), "24mp": (4000, 6000)}
QUICK = {"1mp": (384, 512), "24mp": (768, 1024)}
INSTRUCTION = "remove the noise"
WAIT_S = float(os.environ.get("INTERACTIVE_WAIT_S", 3600))


def _wait(app, done, timeout_s: float = WAIT_S) -> None:
    """Run the Qt event loop until ``done()`` (the benchmark's only loop; no real UI). The
    loop sleeps between events as the app's does: ``done`` is checked every 10 ms by a timer
    (``processEvents`` in a loop would keep a core busy and slow the model down)."""
    from PySide6.QtCore import QEventLoop, QTimer

    if done():
        return
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    timed_out = []

    def check() -> None:
        if done():
            loop.quit()
        elif time.perf_counter() > deadline:
            timed_out.append(True)
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(10)
    loop.exec()
    timer.stop()
    if timed_out:
        raise SystemExit("timed out")


def child(pack: Path, size: tuple[int, int], photo: Path, typing_s: float) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from instructir_desktop.app.session import EditorSession
    from instructir_desktop.app.settings import Settings

    app = QApplication.instance() or QApplication([])
    settings = Settings()
    settings.set("min_confidence", 0.0)  # random weights: the intent head is not confident
    session = EditorSession(settings, pack_dir=pack, bridge=False, autosave=False)
    t_load = time.perf_counter()
    session.start()
    _wait(app, lambda: session.model is not None or bool(session.model_problem))
    if session.model is None:
        raise SystemExit(session.model_problem)
    load_s = time.perf_counter() - t_load
    opened = []
    session.documentOpened.connect(lambda: opened.append(True))
    session.open_path(photo)
    _wait(app, lambda: bool(opened) and session.scheduler.idle)
    pause = time.perf_counter() + typing_s  # the user types the instruction
    _wait(app, lambda: time.perf_counter() >= pause)
    levels = {lv.name: list(lv.size) for lv in session.scheduler.levels}

    marks: dict[str, float] = {}
    doc, scheduler = session.document, session.scheduler

    def on_frame(frame) -> None:
        if doc.layers and frame.level not in marks:
            marks[frame.level] = time.perf_counter() - t0
            if "first_visible" not in marks:
                marks["first_visible"] = marks[frame.level]
                marks["first_level"] = frame.level

    scheduler.frameReady.connect(on_frame)
    t0 = time.perf_counter()
    session.submit(INSTRUCTION)
    _wait(app, lambda: bool(doc.layers) and scheduler.idle)
    total = time.perf_counter() - t0
    session.worker.stop()
    session.background.shutdown()
    return {
        "megapixels": round(size[0] * size[1] / 1e6, 2),
        "levels": levels,
        "first_visible_s": round(marks["first_visible"], 2),
        "first_level": marks["first_level"],
        "preview_s": round(marks["preview"], 2) if "preview" in marks else None,
        "full_s": round(marks.get("full", total), 2),
        "load_s": round(load_s, 2),
        "typing_s": typing_s,
        "backend": f"{session.model['backend']}/{session.model['precision']}"
        + (" (lower levels fp32)" if session.model.get("lower_levels_fp32") else ""),
        "tile": session.model.get("tile"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="1mp,24mp", help="comma-separated: 1mp, 24mp")
    ap.add_argument(
        "--typing",
        type=float,
        default=2.0,
        help="seconds between the photo shown and Enter (default 2: typing a short instruction)",
    )
    ap.add_argument(
        "--earlier",
        metavar="HxW",
        help="first open and edit a photo of this size in an earlier process (same caches)",
    )
    ap.add_argument("--child", nargs=3, metavar=("PACK", "SIZE", "PHOTO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    table = QUICK if args.quick else SIZES
    if args.earlier:
        h, w = (int(n) for n in args.earlier.lower().split("x"))
        table = {**table, "earlier": (h, w)}
    if args.child:
        pack, size, photo = args.child
        print(json.dumps(child(Path(pack), table[size], Path(photo), args.typing)), flush=True)
        os._exit(0)  # skip tearing down Qt objects in the interpreter's arbitrary order
    from engine import make_pack, test_image
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="instructir-interactive-"))
    pack = make_pack(work / "pack")
    env = {
        **os.environ,
        "INSTRUCTIR_CONFIG_DIR": str(work / "config"),
        "INSTRUCTIR_CACHE_DIR": str(work / "cache"),
        "INSTRUCTIR_DATA_DIR": str(work / "data"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    rows = {}
    for name in args.sizes.split(","):
        for part in (["earlier"] if args.earlier else []) + [name]:
            h, w = table[part]
            photo = work / f"{part}.png"
            Image.fromarray((test_image(h, w) * 255).round().astype("uint8")).save(photo)
            cmd = [sys.executable, __file__, "--child", str(pack), part, str(photo)]
            cmd += ["--typing", str(args.typing)] + (["--quick"] if args.quick else [])
            cmd += ["--earlier", args.earlier] if args.earlier else []
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{part} failed:\n{proc.stderr[-3000:]}")
        rows[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        json.dumps(
            {"cpu_threads": os.cpu_count(), "quick": args.quick, "earlier": args.earlier, **rows}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
