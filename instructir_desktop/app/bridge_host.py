"""Hosts the GIMP bridge (``instructir_desktop.bridge``) while the desktop app runs.

The bridge submits its jobs to the app's model worker, so a GIMP job and a job from the chat
wait in the same queue and run on the one thread that owns the model. When the bridge or its
port is not available the app logs it and carries on without it.
"""

from __future__ import annotations

import logging

from .worker import ModelWorker

__all__ = ["BridgeHost"]

log = logging.getLogger(__name__)


class BridgeHost:
    """Start/stop the local bridge server; never raises."""

    def __init__(self, worker: ModelWorker) -> None:
        self.worker = worker
        self.server = None
        self.problem = ""

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def url(self) -> str:
        return str(getattr(self.server, "url", "")) if self.server is not None else ""

    def start(self) -> bool:
        if self.server is not None:
            return True
        try:
            from instructir_desktop.bridge.info import DEFAULT_PORT
            from instructir_desktop.bridge.server import BridgeServer
        except ImportError as exc:
            self.problem = f"The GIMP bridge is not available in this build ({exc})."
            log.info(self.problem)
            return False
        server = None
        # The well-known port first (Snap/Flatpak GIMP only knows that one), then any port.
        for port in (DEFAULT_PORT, 0):
            try:
                server = BridgeServer(jobs=self.worker, port=port)
                server.start()
                break
            except Exception as exc:  # noqa: BLE001 - a busy port must not stop the app
                server = None
                self.problem = f"The GIMP bridge could not start: {exc}"
        if server is None:
            log.warning(self.problem)
            return False
        self.server, self.problem = server, ""
        log.info("GIMP bridge listening on %s", self.url)
        return True

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - shutting down anyway
                log.exception("stopping the GIMP bridge failed")
