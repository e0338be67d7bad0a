"""Frozen entry point of InstructIR Desktop (PyInstaller runs this file).

Windows gets two executables, a windowed `instructir-desktop` and a console `instructir`
(entry_cli.py). Linux and macOS get one, `instructir-desktop`, and `instructir` is a symbolic
link to it: the name it was started under picks the command line or the window, so the bundle
carries one copy of the Python modules instead of two.
"""

import multiprocessing
import os
import sys


def _run() -> int:
    name = os.path.basename(sys.argv[0] if sys.argv else "").lower()
    if name.removesuffix(".exe") == "instructir":
        from instructir_desktop.cli import main
    else:
        from instructir_desktop.ui.main import main
    return main()


if __name__ == "__main__":
    # Worker processes that torch or its libraries start re-enter this executable.
    multiprocessing.freeze_support()
    sys.exit(_run())
