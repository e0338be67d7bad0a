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


def run_self_test(
    instruction: str = SELF_TEST_INSTRUCTION, timeout_s: float = 900, device: str | None = None
) -> int:
    """Run the self-test (on ``device`` when given); prints one JSON object; returns the exit
    code."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="instructir-selftest-"))
    # Own settings and autosaves: the self-test must not touch the user's; installed model
    # packs (data dir) are still found.
    os.environ["INSTRUCTIR_CONFIG_DIR"] = str(tmp / "config")
    from PySide6.QtCore import QTimer

    from .startup import create_app, process_seconds

    app = create_app([sys.argv[0]])
    if device:
        from instructir_desktop.app.settings import Settings

        Settings().set("device", device)  # in the self-test's own settings folder
    t_start = time.perf_counter()
    test = _SelfTest(app, _test_photo(tmp), instruction, t_start)
    QTimer.singleShot(int(timeout_s * 1000), lambda: test.finish(False, "Timed out."))
    test.window.show()
    test.report["time_to_window_s"] = round(process_seconds(test.window.shown_at), 3)
    test.report["torch_imported_before_window"] = bool(test.window.torch_at_show)
    code = app.exec()
    return test.code if "finished" in test.marks else (code or 1)


class _SelfTest:
    """The window with the photo open, and the steps that follow its signals: send the
    instruction once the model and the photo are there, then check the full render."""

    def __init__(self, app, photo: Path, instruction: str, t_start: float) -> None:
        from instructir_desktop import __version__

        from .main_window import MainWindow

        self.app = app
        self.t_start = t_start
        self.instruction = instruction
        self.window = MainWindow(open_path=photo, bridge=False, autosave=False)
        self.window.ask_before_close = False
        self.session = self.window.session
        self.report: dict = {
            "ok": False,
            "version": __version__,
            "image": str(photo),
            "instruction": instruction,
        }
        self.marks: dict[str, float] = {}
        self.sent = False
        self.code = 1
        self._connect()

    def _connect(self) -> None:
        session = self.session
        session.modelChanged.connect(self.on_model)
        session.modelMissing.connect(lambda msg: self.finish(False, msg))
        # A model that fails to load (e.g. torch missing in a broken bundle) must fail fast.
        session.error.connect(
            lambda msg: None if session.model is not None else self.finish(False, msg)
        )
        session.openFailed.connect(lambda msg: self.finish(False, msg))
        session.documentOpened.connect(self.on_opened)
        session.chat.changed.connect(self.on_message)
        session.document.layersChanged.connect(self.on_layers)
        session.scheduler.frameReady.connect(self.check_full)
        session.scheduler.failed.connect(lambda msg: self.finish(False, msg))

    def finish(self, ok: bool, message: str = "") -> None:
        from PySide6.QtCore import QTimer

        if "finished" in self.marks:
            return
        self.marks["finished"] = time.perf_counter()
        self.report["ok"] = ok
        if message:
            self.report["error"] = message
        self.report["seconds"] = {k: round(v - self.t_start, 3) for k, v in self.marks.items()}
        print(json.dumps(self.report, indent=2), flush=True)
        self.code = 0 if ok else 1
        self.window.close()
        QTimer.singleShot(0, lambda: self.app.exit(self.code))

    def maybe_send(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        from PySide6.QtGui import QKeyEvent
        from PySide6.QtWidgets import QApplication

        if self.sent or self.session.model is None or not self.session.has_photo:
            return
        self.sent = True
        self.marks["sent"] = time.perf_counter()
        chat_input = self.window.chat.input
        chat_input.setFocus()
        chat_input.setPlainText(self.instruction)
        # The same path as a user pressing Enter in the chat box.
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QApplication.sendEvent(
                chat_input, QKeyEvent(kind, Qt.Key.Key_Return, Qt.KeyboardModifier.NoModifier)
            )
        if not self.session.chat.messages:
            self.finish(False, "The chat box did not send the instruction.")

    def on_model(self, model) -> None:
        if model is not None:
            self.marks["model_loaded"] = time.perf_counter()
            self.report["model"] = model
            self.maybe_send()

    def on_opened(self) -> None:
        self.marks["photo_opened"] = time.perf_counter()
        src = self.session.document.source.photo
        self.report["size"] = [src.width, src.height]
        self.maybe_send()

    def on_message(self, message) -> None:
        if message.title:
            self.report["intent"] = {
                "task": message.task,
                "confidence": round(message.confidence, 4),
            }
        if message.state == "unclear":
            # Low confidence: the chat offers suggestions; take "Apply as written" like a user.
            self.report["intent_unclear"] = True
            self.window.chat.widgets[message.id].apply_button.click()
        elif message.state in ("failed", "cancelled"):
            self.finish(False, message.note or f"The instruction {message.state}.")

    def on_layers(self) -> None:
        if len(self.session.document.layers) == 1 and "layer_added" not in self.marks:
            self.marks["layer_added"] = time.perf_counter()
            self.check_full()

    def check_full(self, _frame=None) -> None:
        frame = self.session.scheduler.frame("full")
        if "layer_added" not in self.marks or frame is None:
            return
        self.marks["full_render"] = time.perf_counter()
        source = self.session.document.source.photo.pixels
        change = np.abs(frame.image - source)
        self.report["layers"] = len(self.session.document.layers)
        self.report["mean_abs_change"] = float(change.mean())
        self.report["composite_changed"] = bool(change.max() > 1.0 / 255.0)
        if self.report["layers"] != 1 or not self.report["composite_changed"]:
            self.finish(False, "The instruction did not change the photo.")
        else:
            self.finish(True)
