"""scripts/gpu_check.py: its CPU part runs here; without CUDA every CUDA part says skipped."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def test_the_cpu_part_runs_and_prints_one_json_summary(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    code = gpu_check.main(["--quick"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["ok"] and summary["failed"] == []
    sections = summary["sections"]
    assert list(sections) == [
        "parity",
        "restore_times",
        "cancel",
        "oom_fallback",
        "self_test",
        "bundled_pack",
    ]
    assert sections["parity"]["cpu_graph_vs_eager_db"] >= 50.0
    assert sections["cancel"]["status"] == "pass"
    assert "CPU" in sections["oom_fallback"]["notices"][-1]
    assert "untested" in summary["mps"]
    if not torch.cuda.is_available():
        assert summary["cuda"] is False
        assert sections["bundled_pack"]["status"] == "skipped"
        assert sections["self_test"]["status"] == "skipped"
        assert "every CUDA part (no CUDA device)" in summary["skipped"]
        for name in ("parity", "restore_times", "cancel", "oom_fallback"):
            assert sections[name]["status"] == "pass"
        for name in ("parity", "restore_times", "oom_fallback"):
            assert sections[name]["cuda"].startswith("skipped")


def test_the_self_test_takes_a_device(monkeypatch):
    from instructir_desktop.ui import main as app_main
    from instructir_desktop.ui import selftest

    seen = []
    monkeypatch.setattr(selftest, "run_self_test", lambda **kw: seen.append(kw) or 0)
    assert app_main.main(["--self-test", "--device", "cuda"]) == 0
    assert seen == [{"device": "cuda"}]
