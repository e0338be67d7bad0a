"""Results posted to the GUI thread for an object that no longer exists are dropped."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Signal

from instructir_desktop.app.threads import Dispatcher


class Receiver(QObject):
    listed = Signal(object)


def test_a_result_for_a_deleted_object_is_dropped(qtbot):
    dispatcher = Dispatcher()
    gone = Receiver()
    emit = gone.listed.emit
    shiboken6.delete(gone)  # the dialog closed before its answer came
    dispatcher.post(emit, [1, 2])
    qtbot.wait(50)  # delivered on the event loop without raising
    seen = []
    alive = Receiver()
    alive.listed.connect(seen.append)
    dispatcher.post(alive.listed.emit, "ok")
    qtbot.waitUntil(lambda: seen == ["ok"], timeout=2000)
