"""``instructir-desktop [PATH] [--self-test] [--version]``: the GUI entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from instructir_desktop import __version__

__all__ = ["main", "PROBE_ENV"]

# Set by benchmarks/startup.py and the start-up test: show the window, report, quit.
PROBE_ENV = "INSTRUCTIR_STARTUP_PROBE"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="instructir-desktop",
        description="Restore photos by describing what is wrong with them.",
    )
    parser.add_argument("path", nargs="?", type=Path, help="a photo or .instructir project")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="offscreen check: open a photo, apply one instruction, print JSON",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda", "mps"],
        default=None,
        help="with --self-test: run the model on this device (default: the app's setting)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    # Qt's own options (-platform, -style…) pass through to QApplication.
    args, _qt_args = parser.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the desktop app; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    if args.version:
        print(f"instructir-desktop {__version__}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.self_test:
        from .selftest import run_self_test

        return run_self_test(device=args.device)
    from instructir_desktop.app.settings import Settings

    from .main_window import MainWindow
    from .startup import create_app

    settings = Settings()
    app = create_app([sys.argv[0], *argv], theme=settings.theme)
    window = MainWindow(
        settings, open_path=args.path, startup_probe=bool(os.environ.get(PROBE_ENV))
    )
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
