"""The command line's side of the GIMP plug-in: `instructir serve` (the local bridge the
plug-in talks to) and `instructir gimp install|uninstall` (the plug-in itself)."""

from __future__ import annotations

import json
import signal
import sys
import threading

from .cli_output import EXIT_FAILED, EXIT_USAGE
from .core.errors import InstructIRError

__all__ = ["cmd_gimp", "cmd_serve", "serve_forever"]


def cmd_serve(args) -> int:
    """`instructir serve [--port N] [--model ID] [--device D] [--backend B]`."""
    return serve_forever(args.model, args.device, args.port, backend=args.backend)


def serve_forever(
    pack_id: str | None, device: str = "auto", port: int = 47841, backend: str = "auto"
) -> int:
    """``instructir serve``: run the bridge until SIGINT/SIGTERM; returns the exit status."""
    from .bridge.server import BridgeServer
    from .core.jobs import JobQueue, ModelHost
    from .core.packs import LITE_ID, OFFICIAL_ID
    from .core.store import ModelStore

    store = ModelStore()
    pack = pack_id or (OFFICIAL_ID if store.is_installed(OFFICIAL_ID) else LITE_ID)
    try:
        store.locate(pack)
    except InstructIRError as exc:
        print(f"instructir serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    queue = JobQueue(ModelHost(device=device, backend=backend, default_pack=pack)).start()
    server = BridgeServer(jobs=queue, port=port)
    try:
        server.start()
    except OSError as exc:
        queue.stop(timeout=0)
        reason = exc.strerror or exc
        print(
            f"instructir serve: cannot listen on 127.0.0.1:{port} ({reason}); is another "
            "bridge or InstructIR Desktop already running? Choose another --port.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    server.preload()
    print(f"InstructIR bridge on {server.url} (model {pack}, device {device}); Ctrl+C stops it.")
    sys.stdout.flush()
    done = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        queue.stop()
    return 0


def cmd_gimp(args) -> int:
    """`instructir gimp install|uninstall [--new-token] [--json]`."""
    from . import gimp_install

    if args.action == "install":
        paths = gimp_install.install(new_token=args.new_token)
    else:
        paths = gimp_install.uninstall()
    if args.new_token and args.action == "install" and gimp_install.bridge_is_running():
        print(
            "The running bridge keeps the old token until it restarts: restart InstructIR "
            "Desktop or `instructir serve`.",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps({"action": args.action, "paths": [str(p) for p in paths]}))
    else:
        verb = "Installed the plug-in into" if args.action == "install" else "Removed it from"
        if not paths:
            print("No GIMP 3 plug-ins folder found. Start GIMP 3 once, then run this again.")
        for p in paths:
            print(f"{verb} {p}")
    return 0
