"""The rendering strip of the status bar: a progress bar, Cancel, and what is being done with
an estimate of the time left; "Done in 3.2 s" when everything is rendered.

The bar and the button come first so that they never move as the text changes, and the
strip is hidden as a whole when nothing is happening.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from instructir_desktop.app.session import EditorSession

__all__ = ["JobStatus", "eta_text", "count"]

DONE_SHOWN_MS = 4000  # how long "Done in 3.2 s" stays
ETA_AFTER_S = 1.5  # no estimate before a job has run this long (the first tile is slow)
SETTLE_MS = 250  # idle between two jobs (preview, then full resolution) is not "done"


def count(n: int, noun: str) -> str:
    """ "1 layer", "2 layers"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def eta_text(elapsed: float, fraction: float) -> str:
    """ "about 40 s left" from how long a job has run and the fraction it has done."""
    if fraction <= 0.0 or fraction >= 1.0 or elapsed < ETA_AFTER_S:
        return ""
    left = elapsed * (1.0 - fraction) / fraction
    if left < 1.5:
        return "almost done"
    if left < 90:
        return f"about {round(left)} s left"
    return f"about {round(left / 60)} min left"


class JobStatus(QWidget):
    """Shows the render scheduler's activity and progress; Cancel (or Resume) acts on it."""

    def __init__(self, session: EditorSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobStatus")
        self.session = session
        self._busy_since: float | None = None  # when the current burst of rendering began
        self._job_since: float | None = None  # when the running model job began
        self._job_text = ""
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 0, 4, 0)
        row.setSpacing(8)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("jobProgress")
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelJob")
        self.cancel_button.clicked.connect(self._cancel_or_resume)
        self.label = QLabel(self)
        self.label.setObjectName("jobText")
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        row.addWidget(self.label, 1)
        self._done_timer = QTimer(self)
        self._done_timer.setSingleShot(True)
        self._done_timer.timeout.connect(self._hide_done)
        session.scheduler.progress.connect(self.show_progress)
        session.scheduler.activityChanged.connect(self.show_activity)
        self.show_activity(session.scheduler.activity)

    def _cancel_or_resume(self) -> None:
        if self.session.scheduler.activity == "paused":
            self.session.scheduler.resume()
        else:
            self.session.cancel()

    def show_progress(self, fraction: float, text: str) -> None:
        """A model job's progress: the bar, what it does, and an estimate of what is left."""
        now = time.perf_counter()
        if fraction <= 0.0 or self._job_since is None:
            self._job_since = now
        if text:
            self._job_text = text
        if fraction <= 0.0:  # nothing measured yet: a busy bar rather than an empty one
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        eta = eta_text(now - self._job_since, fraction)
        self.label.setText(" · ".join(x for x in (self._job_text, eta) if x))

    def show_activity(self, activity: str) -> None:
        busy = activity in ("pending", "preview", "full", "waiting")
        if busy:
            self._done_timer.stop()
            if self._busy_since is None:
                self._busy_since = time.perf_counter()
        self._show(busy or activity == "paused")
        self.progress.setVisible(busy)
        self.cancel_button.setVisible((busy and activity != "waiting") or activity == "paused")
        self.cancel_button.setText("Resume" if activity == "paused" else "Cancel")
        if activity == "paused":
            self._busy_since = None
            self.label.setText("Rendering stopped.")
        elif activity == "waiting":
            self.progress.setRange(0, 0)
            layers = self.session.document.layers
            active = [x for x in layers if x.visible and x.strength > 0]
            self.label.setText(
                f"Loading the model to render {count(len(active), 'layer')}…"
                if active
                else "Loading the model…"
            )
        elif activity == "idle" and self._busy_since is not None:
            QTimer.singleShot(SETTLE_MS, self, self._maybe_done)

    def _maybe_done(self) -> None:
        scheduler = self.session.scheduler
        if self._busy_since is None or scheduler.activity != "idle" or not scheduler.idle:
            return
        seconds = time.perf_counter() - self._busy_since
        self._busy_since = None
        self._show(True)
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.label.setText(f"✓ Done in {seconds:.1f} s")
        self._done_timer.start(DONE_SHOWN_MS)

    def _show(self, visible: bool) -> None:
        """Show or hide the strip. A status bar hides its strips under a passing message
        ("Opened photo.jpg") but does not know when one shows itself: the message goes, or
        the bar would draw both on top of each other."""
        bar = self.parentWidget()
        if visible and not self.isVisible() and isinstance(bar, QStatusBar):
            bar.clearMessage()
        self.setVisible(visible)

    def _hide_done(self) -> None:
        if self.session.scheduler.activity == "idle":
            self.setVisible(False)
            self.label.clear()
