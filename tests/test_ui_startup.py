"""Start-up in fresh processes: --version, the window shows before torch is imported, and
--self-test applies an instruction through the chat path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from instructir_desktop import __version__

ROOT = Path(__file__).resolve().parents[1]


def run_app(*args: str, env: dict | None = None, timeout: float = 600):
    full_env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "instructir_desktop.ui.main", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(stdout: str) -> dict:
    """The JSON object printed last (logging may precede it)."""
    start = stdout.rfind("\n{")
    return json.loads(stdout[start + 1 if start >= 0 else stdout.index("{") :])


def test_version():
    result = run_app("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"instructir-desktop {__version__}"


def test_window_shows_before_torch_is_imported():
    result = run_app(env={"INSTRUCTIR_STARTUP_PROBE": "1"})
    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["torch_imported"] is False
    assert 0 < report["time_to_window_s"] < 60


def test_self_test_applies_an_instruction(tiny_pack):
    result = run_app(
        "--self-test", env={"INSTRUCTIR_PACK_DIR": str(tiny_pack), "INSTRUCTIR_BACKEND": "torch"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = last_json(result.stdout)
    assert report["ok"] is True and report["layers"] == 1 and report["composite_changed"]
    assert report["torch_imported_before_window"] is False and report["time_to_window_s"] > 0
    assert report["model"]["pack"] == "tiny-test" and "intent" in report


def test_self_test_fails_clearly_without_a_model(tmp_path):
    result = run_app("--self-test", env={"INSTRUCTIR_PACK_DIR": str(tmp_path / "no-pack")})
    assert result.returncode != 0
    report = last_json(result.stdout)
    assert report["ok"] is False and report["error"]
