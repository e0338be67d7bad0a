"""``instructir-desktop --self-test``: the real window, offscreen, one instruction end to end.

It opens the bundled sample photo (or a generated one), types an instruction into the chat
box and presses Enter, waits for the layer and the full-resolution render, checks that the
composite changed, prints a JSON summary and exits 0 (non-zero with a message on failure).
Signals drive it; there is no polling loop.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["run_self_test", "SELF_TEST_INSTRUCTION"]

SELF_TEST_INSTRUCTION = "Remove the noise from this photo"


def _test_photo(folder: Path) -> Path:
    """The bundled sample, else a generated noisy gradient (before the sample exists)."""
    from instructir_desktop.core.resources import resource_path

    sample = resource_path("sample", "sample.jpg")
    if sample.is_file():
        return sample
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:384].astype(np.float32)
    rgb = np.stack([x / 384, y / 256, 0.5 + 0.5 * np.sin(x / 20)], axis=2)
    rgb = np.clip(rgb + rng.normal(0, 0.08, rgb.shape), 0, 1)
    path = folder / "generated.png"
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return path


def run_self_test(instruction: str = SELF_TEST_INSTRUCTION, timeout_s: float = 900) -> int:
    """Run the self-test; prints one JSON object; returns the exit code."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="instructir-selftest-"))
    # Own settings and autosaves: the self-test must not touch the user's; installed model
    # packs (data dir) are still found.
    os.environ["INSTRUCTIR_CONFIG_DIR"] = str(tmp / "config")
    from PySide6.QtCore import QEvent, Qt, QTimer
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from instructir_desktop import __version__

    from .main_window import MainWindow
    from .startup import create_app, process_seconds

    app = create_app([sys.argv[0]])
    t_start = time.perf_counter()
    photo = _test_photo(tmp)
    window = MainWindow(open_path=photo, bridge=False, autosave=False)
    window.ask_before_close = False
    session = window.session
    report: dict = {
        "ok": False,
        "version": __version__,
        "image": str(photo),
        "instruction": instruction,
    }
    marks: dict[str, float] = {}
    state = {"sent": False, "code": 1}

    def finish(ok: bool, message: str = "") -> None:
        if "finished" in marks:
            return
        marks["finished"] = time.perf_counter()
        report["ok"] = ok
        if message:
            report["error"] = message
        report["seconds"] = {k: round(v - t_start, 3) for k, v in marks.items()}
        print(json.dumps(report, indent=2), flush=True)
        state["code"] = 0 if ok else 1
        window.close()
        QTimer.singleShot(0, lambda: app.exit(state["code"]))

    def maybe_send() -> None:
        if state["sent"] or session.model is None or not session.has_photo:
            return
        state["sent"] = True
        marks["sent"] = time.perf_counter()
        window.chat.input.setFocus()
        window.chat.input.setPlainText(instruction)
        # The same path as a user pressing Enter in the chat box.
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QApplication.sendEvent(
                window.chat.input,
                QKeyEvent(kind, Qt.Key.Key_Return, Qt.KeyboardModifier.NoModifier),
            )
        if not session.chat.messages:
            finish(False, "The chat box did not send the instruction.")

    def on_model(model) -> None:
        if model is not None:
            marks["model_loaded"] = time.perf_counter()
            report["model"] = model
            maybe_send()

    def on_opened() -> None:
        marks["photo_opened"] = time.perf_counter()
        src = session.document.source.photo
        report["size"] = [src.width, src.height]
        maybe_send()

    def on_message(message) -> None:
        if message.title:
            report["intent"] = {"task": message.task, "confidence": round(message.confidence, 4)}
        if message.state == "unclear":
            # Low confidence: the chat offers suggestions; take "Apply as written" like a user.
            report["intent_unclear"] = True
            window.chat.widgets[message.id].apply_button.click()
        elif message.state in ("failed", "cancelled"):
            finish(False, message.note or f"The instruction {message.state}.")

    def on_layers() -> None:
        if len(session.document.layers) == 1 and "layer_added" not in marks:
            marks["layer_added"] = time.perf_counter()
            check_full()

    def check_full(_frame=None) -> None:
        frame = session.scheduler.frame("full")
        if "layer_added" not in marks or frame is None:
            return
        marks["full_render"] = time.perf_counter()
        source = session.document.source.photo.pixels
        change = np.abs(frame.image - source)
        report["layers"] = len(session.document.layers)
        report["mean_abs_change"] = float(change.mean())
        report["composite_changed"] = bool(change.max() > 1.0 / 255.0)
        if report["layers"] != 1 or not report["composite_changed"]:
            finish(False, "The instruction did not change the photo.")
        else:
            finish(True)

    session.modelChanged.connect(on_model)
    session.modelMissing.connect(lambda msg: finish(False, msg))
    # A model that fails to load (e.g. torch missing in a broken bundle) must fail fast.
    session.error.connect(lambda msg: None if session.model is not None else finish(False, msg))
    session.openFailed.connect(lambda msg: finish(False, msg))
    session.documentOpened.connect(on_opened)
    session.chat.changed.connect(on_message)
    session.document.layersChanged.connect(on_layers)
    session.scheduler.frameReady.connect(check_full)
    session.scheduler.failed.connect(lambda msg: finish(False, msg))
    QTimer.singleShot(int(timeout_s * 1000), lambda: finish(False, "Timed out."))
    window.show()
    report["time_to_window_s"] = round(process_seconds(window.shown_at), 3)
    report["torch_imported_before_window"] = bool(window.torch_at_show)
    code = app.exec()
    return state["code"] if "finished" in marks else (code or 1)
