"""OpenVINO's compiled models on disk: a folder per tile shape, the least recently used
removed beyond a size, nothing in use or being written touched."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from instructir_desktop.core import backends
from instructir_desktop.core.openvino_shapes import prune_compiled
from instructir_desktop.core.restorer import Restorer


def _entry(root, name: str, size: int, age_s: float, folder: bool = True):
    path = root / name
    root.mkdir(parents=True, exist_ok=True)
    if folder:
        path.mkdir(parents=True)
        (path / "model.blob").write_bytes(b"x" * size)
    else:
        path.write_bytes(b"x" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_prune_removes_the_least_recently_used_shapes_beyond_the_budget(tmp_path):
    root = tmp_path / "compiled"
    oldest = _entry(root, "a-64x64-latency", 400, age_s=4000)
    old = _entry(root, "a-96x96-latency", 400, age_s=3000)
    in_use = _entry(root, "a-128x128-latency", 400, age_s=5000)
    recent = _entry(root, "a-32x32-throughput", 400, age_s=100)
    removed = prune_compiled(root, budget=900, keep={in_use}, settle_s=60)
    assert removed == [oldest, old]  # 1600 bytes -> 800: oldest first, in use kept
    assert sorted(p.name for p in root.iterdir()) == [in_use.name, recent.name]
    assert prune_compiled(root, budget=900, keep=set(), settle_s=60) == []  # fits


def test_prune_keeps_what_may_be_being_written_and_drops_loose_blobs(tmp_path):
    root = tmp_path / "compiled"
    loose = _entry(root, "123456.blob", 10, age_s=4000, folder=False)
    writing = _entry(root, "a-64x64-latency", 400, age_s=5)  # another process, just now
    fresh_loose = _entry(root, "789.blob", 10, age_s=5, folder=False)
    removed = prune_compiled(root, budget=10**9, keep=set(), settle_s=60)
    assert removed == [loose]  # under budget, but nothing reads a blob outside a shape folder
    assert writing.is_dir() and fresh_loose.is_file()
    assert prune_compiled(root, budget=0, keep=set(), settle_s=60) == []
    assert prune_compiled(tmp_path / "missing", budget=0, keep=set()) == []


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_the_backend_keeps_compiled_shapes_a_folder_each_within_its_budget(
    tiny_pack, tmp_path, monkeypatch
):
    monkeypatch.setattr(backends, "COMPILED_SETTLE_S", 0.0)
    monkeypatch.setattr(backends, "MAX_COMPILED_SHAPES", 1)
    folder = tmp_path / "ov"
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=folder)
    root = folder / "compiled"
    img = np.random.default_rng(0).random((40, 52, 3)).astype(np.float32)
    ov.restore(img, "denoise")
    first = {p.name for p in root.iterdir()}
    shape_dirs = [p for p in root.iterdir() if p.is_dir() and "x" in p.name]
    assert shape_dirs and all(list(p.glob("*.blob")) for p in shape_dirs)
    blob_bytes = max(sum(f.stat().st_size for f in p.iterdir()) for p in shape_dirs)
    # Room for about one shape: a new photo size pushes out the least recently used.
    monkeypatch.setattr(backends, "COMPILED_CACHE_BYTES", int(blob_bytes * 1.5))
    ov.restore(np.random.default_rng(1).random((70, 90, 3)).astype(np.float32), "denoise")
    now = {p.name for p in root.iterdir()}
    assert len(now) == 1 and not now & first
    # A later start compiles that shape from its folder, and marks it used.
    (kept,) = root.iterdir()
    blobs = {f.name: f.stat().st_mtime_ns for f in kept.iterdir()}
    os.utime(kept, (1, 1))
    again = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=folder)
    again.restore(np.random.default_rng(1).random((70, 90, 3)).astype(np.float32), "denoise")
    assert {f.name: f.stat().st_mtime_ns for f in kept.iterdir()} == blobs
    assert kept.stat().st_mtime > time.time() - 600


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_a_cache_folder_that_cannot_be_written_costs_only_the_cache(tiny_pack, tmp_path):
    folder = tmp_path / "ov"
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=folder)
    img = np.random.default_rng(0).random((40, 52, 3)).astype(np.float32)
    reference = ov.restore(img, "denoise")
    # Where the shape folders go is a file: OpenVINO would fail to make its cache folder.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    again = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=folder)
    again.backend._compiled_root = blocked
    assert np.array_equal(again.restore(img, "denoise"), reference)
    assert blocked.read_text() == "not a folder"
