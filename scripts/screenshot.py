"""Make the README screenshot: the real window with a photo, two layers and the chat.

    xvfb-run -s "-screen 0 1280x800x24" python scripts/screenshot.py [--as-is] \\
        PHOTO docs/screenshot.png ["instruction 1" "instruction 2" ...]

Without ``--as-is`` the photo is darkened and given a little grain first (a copy in a temp
folder; the original is not touched), so that the default instructions have something to
fix. ``docs/screenshot.png`` is made with ``--as-is`` from scikit-image's ``chelsea.png``
(CC0, Stefan van der Walt) and the instructions "Remove the noise" and "The colours look
flat, make them pop". Uses the default model pack and temp settings. Not part of the app;
documentation tooling.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

INSTRUCTIONS = ("The photo is too dark, brighten it", "Remove the noise")


def degraded_copy(photo: Path, folder: Path) -> Path:
    """A darker, slightly grainy copy of ``photo``."""
    from PIL import Image

    rgb = np.asarray(Image.open(photo).convert("RGB")).astype(np.float32) / 255
    noise = np.random.default_rng(0).normal(0, 0.02, rgb.shape)
    dark = np.clip(rgb**1.5 * 0.45 + noise, 0, 1)
    out = folder / f"{photo.stem}-dusk.png"
    Image.fromarray((dark * 255).round().astype(np.uint8)).save(out)
    return out


def main(argv: list[str]) -> int:
    as_is = "--as-is" in argv
    argv = [a for a in argv if a != "--as-is"]
    if len(argv) < 2:
        print(__doc__)
        return 2
    photo, target = Path(argv[0]), Path(argv[1])
    instructions = argv[2:] or list(INSTRUCTIONS)
    tmp = Path(tempfile.mkdtemp(prefix="instructir-shot-"))
    for kind in ("CONFIG", "CACHE"):
        os.environ[f"INSTRUCTIR_{kind}_DIR"] = str(tmp / kind.lower())
    from PySide6.QtCore import QTimer

    from instructir_desktop.ui.main_window import MainWindow
    from instructir_desktop.ui.startup import create_app

    app = create_app([sys.argv[0]])
    shown = photo if as_is else degraded_copy(photo, tmp)
    window = MainWindow(open_path=shown, bridge=False, autosave=False)
    window.ask_before_close = False
    window.resize(1280, 800)
    window.show()
    session = window.session
    state = {"sent": 0, "settled": 0, "code": 1}

    def step() -> None:
        if session.model is None or not session.has_photo or not session.scheduler.idle:
            return
        layers = len(session.document.layers)
        if state["sent"] < len(instructions):
            if layers == state["sent"]:
                window.chat.input.setPlainText(instructions[state["sent"]])
                window.chat.send()
                state["sent"] += 1
            return
        if layers < len(instructions):
            return
        if not state["settled"]:
            window.canvas.set_compare(True)
            window.canvas.set_split(0.42)
            window.banner.clear()
        state["settled"] += 1
        if state["settled"] > 5:  # let the thumbnails and the split line paint
            window.grab().save(str(target))
            print(f"saved {target}")
            state["code"] = 0
            window.close()
            app.quit()

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(200)
    QTimer.singleShot(30 * 60 * 1000, app.quit)
    app.exec()
    return state["code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
