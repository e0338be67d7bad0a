"""The packaged app: build the PyInstaller bundle and smoke-test the frozen executables.

Slow (a build takes 10-20 minutes on two cores), so it runs only with ``pytest -m slow``.
It calls installer/build.py, the same command a developer and the release workflow run, and
checks its report. INSTRUCTIR_INSTALLER_SKIP_BUILD=1 re-tests the bundle already in dist/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "installer" / "build.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    if importlib.util.find_spec("PyInstaller") is None:
        reason = "PyInstaller is not installed (pip install pyinstaller): no bundle to test"
        print(reason)
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("installer") / "report.json"
    cmd = [sys.executable, str(BUILD), "--report", str(path)]
    if sys.platform.startswith("linux"):
        # The tarball is what users download (the size target), and install.sh gets tested.
        cmd.append("--package")
    if os.environ.get("INSTRUCTIR_INSTALLER_SKIP_BUILD") == "1":
        cmd.append("--skip-build")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3 * 3600)
    print(proc.stdout[-4000:])
    assert path.is_file(), f"no report:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return json.loads(path.read_text(encoding="utf-8"))


def _step(report: dict, name: str) -> dict:
    steps = {s["name"]: s for s in report.get("smoke", [])}
    assert name in steps, f"smoke step {name!r} did not run; steps: {sorted(steps)}"
    return steps[name]


@pytest.mark.timeout(3 * 3600)
def test_build_succeeds(report):
    if "build" in report:
        assert report["build"]["ok"], "\n".join(report["build"].get("log_tail", []))
    assert "bundle" in report, "no bundle was produced"


@pytest.mark.timeout(3 * 3600)
@pytest.mark.parametrize(
    "name",
    [
        "bundle contents",
        "instructir --version",
        "instructir --help",
        "instructir-desktop --version",
        "instructir models list",
        "instructir intent",
        "instructir demo",
        "instructir restore",
        "instructir gimp install",
        "instructir-desktop --self-test",
    ],
)
def test_smoke_step_passes(report, name):
    step = _step(report, name)
    assert step["ok"], json.dumps(step, indent=2)[:4000]


@pytest.mark.timeout(3 * 3600)
def test_linux_tarball_installs_and_uninstalls(report):
    if report["platform"] != "linux":
        pytest.skip("the tarball and install.sh are Linux-only")
    for name in (
        "tarball: install.sh",
        "tarball: installed instructir --version",
        "tarball: installed instructir-desktop --version",
        "tarball: desktop entry",
        "tarball: install.sh --uninstall",
    ):
        assert _step(report, name)["ok"], name


@pytest.mark.timeout(3 * 3600)
def test_cpu_bundle_has_no_cuda_and_fits_the_size_target(report):
    if report["flavor"] != "cpu":
        pytest.skip("CUDA bundles carry the CUDA libraries on purpose")
    assert _step(report, "no CUDA libraries")["ok"]
    package = report.get("package", {})
    if "target_mb" in package:
        assert package["mb"] < package["target_mb"], report["bundle"]["largest"]
