"""Make docs/masks.png: the real window with a masked edit (a brightening applied through a
gradient mask over the lower part of the photo), the mask bar and the layer's mask thumbnail.

    QT_QPA_PLATFORM=offscreen python scripts/mask_screenshot.py PHOTO docs/masks.png

(or under ``xvfb-run -s "-screen 0 1400x900x24"``). Uses the default model pack and temp
settings; the photo is darkened first (a copy). Documentation tooling, not part of the app.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshot import degraded_copy  # noqa: E402

INSTRUCTION = "The photo is too dark, brighten it"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    photo, target = Path(argv[0]), Path(argv[1])
    tmp = Path(tempfile.mkdtemp(prefix="instructir-shot-"))
    for kind in ("CONFIG", "CACHE"):
        os.environ[f"INSTRUCTIR_{kind}_DIR"] = str(tmp / kind.lower())
    from PySide6.QtCore import QTimer

    from instructir_desktop.core import masks
    from instructir_desktop.ui.main_window import MainWindow
    from instructir_desktop.ui.startup import create_app

    app = create_app([sys.argv[0]])
    window = MainWindow(open_path=degraded_copy(photo, tmp), bridge=False, autosave=False)
    window.ask_before_close = False
    window.resize(1400, 900)
    window.show()
    session = window.session
    state = {"stage": 0, "wait": 0, "code": 1}

    def step() -> None:
        if session.model is None or not session.has_photo or not session.scheduler.idle:
            return
        doc = session.document
        if state["stage"] == 0:
            window.chat.input.setPlainText(INSTRUCTION)
            window.chat.send()
            state["stage"] = 1
        elif state["stage"] == 1 and doc.layers:
            h, w = doc.source.photo.pixels.shape[:2]
            tools = window.mask_tools
            tools.edit_button.setChecked(True)
            tools.set_tool("gradient")
            tools._commit(
                masks.linear_gradient((h, w), (w / 2, h * 0.85), (w / 2, h * 0.35)),
                "Mask gradient on",
            )
            tools.overlay_box.setChecked(False)
            window.banner.clear()
            state["stage"] = 2
        elif state["stage"] == 2:
            state["wait"] += 1
            if state["wait"] > 5:
                window.grab().save(str(target))
                print(f"saved {target}")
                state["code"] = 0
                window.close()
                app.quit()

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(200)
    QTimer.singleShot(20 * 60 * 1000, app.quit)
    app.exec()
    return state["code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
