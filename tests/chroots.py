"""The Debian chroots the slow integration tests run real programs in (GIMP 3, Wine).

Each comes from a script in scripts/ (gimp_chroot.sh, wine_chroot.sh: build, check, path,
run) and is built on first use; where that is impossible the test skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def chroot_or_skip(script: Path, what: str, no_build_env: str, tools: tuple[str, ...]) -> Path:
    """The chroot folder of script, built when missing; pytest.skip with the reason otherwise.

    what names the test for the messages ("the real-GIMP test"); tools are the host commands
    a build needs; setting the environment variable no_build_env skips instead of building.
    """
    if not sys.platform.startswith("linux"):
        pytest.skip(f"{what} needs Linux (it runs in a Debian chroot)")
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (chroot and mount)")
    check = subprocess.run([str(script), "check"], capture_output=True, text=True)
    if check.returncode != 0:
        for tool in tools:
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed (apt-get install {tool})")
        if os.environ.get(no_build_env):
            pytest.skip(f"the chroot for {what} is not built and {no_build_env} is set")
        try:
            build = subprocess.run(
                [str(script), "build"], capture_output=True, text=True, timeout=1800
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"building the chroot for {what} took more than 30 minutes")
        if build.returncode != 0:
            pytest.skip(f"the chroot for {what} could not be built: {tail(build.stderr)}")
    path = subprocess.run([str(script), "path"], capture_output=True, text=True, check=True)
    return Path(path.stdout.strip())
