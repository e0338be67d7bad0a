"""What every `instructir` command prints and returns: exit statuses, one-line errors on
stderr, and output as a progress bar on a terminal or JSON lines on stdout."""

from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["EXIT_CANCELLED", "EXIT_FAILED", "EXIT_USAGE", "Output", "discard_stdout", "fail", "say"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def say(line: str) -> None:
    """Print a line of output; once the reader has gone (`instructir … | head -1`), the rest
    is discarded and the work goes on (its files are still written)."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        discard_stdout()


def discard_stdout() -> None:
    """Send the rest of stdout nowhere (its reader has gone)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python would report the pipe again at exit
    os.close(devnull)


class Output:
    """Progress on a terminal (a one-line bar on stderr) or JSON lines on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def event(self, **fields) -> None:
        if self.as_json:
            say(json.dumps(fields))

    def progress(self, label: str, fraction: float, **fields) -> None:
        if self.as_json:
            now = time.monotonic()
            if fraction >= 1.0 or now - self._last > 0.2:
                self._last = now
                self.event(event="progress", progress=round(fraction, 4), **fields)
            return
        if self.tty:
            width = 30
            done = int(width * fraction)
            bar = "#" * done + "-" * (width - done)
            sys.stderr.write(f"\r{label[:40]:<40} [{bar}] {fraction * 100:5.1f}%")
            if fraction >= 1.0:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def info(self, text: str) -> None:
        if not self.as_json:
            say(text)


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print ``message`` as one error line on stderr; returns the exit status ``code``."""
    print(f"instructir: error: {message}", file=sys.stderr)
    return code
