"""Frozen entry point of the `instructir` console command (PyInstaller runs this file)."""

import multiprocessing
import sys

from instructir_desktop.cli import main

if __name__ == "__main__":
    # Worker processes that torch or its libraries start re-enter this executable.
    multiprocessing.freeze_support()
    sys.exit(main())
