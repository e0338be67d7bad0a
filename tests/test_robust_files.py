"""Hostile and damaged files: projects and autosaves with garbage inside, photo entries that
inflate past what they declare or the memory budget, stale temp files of killed saves, the
permission mode of a re-saved project, and photos whose header asks for more memory than the
budget (checked before decoding)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instructir_desktop.app.document import Layer
from instructir_desktop.app.project import (
    FORMAT_NAME,
    ProjectData,
    ProjectError,
    load_project,
    save_project,
)
from instructir_desktop.core import memory
from instructir_desktop.core.atomic import STALE_TEMP_SECONDS
from instructir_desktop.core.errors import ImageTooLargeError
from instructir_desktop.core.images import load_image, load_image_bytes

ROOT = Path(__file__).resolve().parents[1]
needs_prlimit = pytest.mark.skipif(
    shutil.which("prlimit") is None, reason="needs prlimit (util-linux) for a real memory limit"
)
LAYER = {"id": "a1", "instruction": "remove the noise", "strength": 1.0, "visible": True}


def _zip(path: Path, entries: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip written by hand from (name, stored bytes, method, crc, inflated size): it can
    hold a deflate stream of gigabytes of zeros that costs nothing to make."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        raw = name.encode()
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21,
            crc, len(data), size, len(raw), 0, 0, 0, 0, 0, len(out),
        ) + raw  # fmt: skip
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0
        ) + raw + data  # fmt: skip
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(out), 0)  # fmt: skip
    path.write_bytes(bytes(out + central + end))
    return path


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, 0, zlib.crc32(data), len(data)


def _zeros_deflated(name: str, mib: int) -> tuple[str, bytes, int, int, int]:
    """``mib`` MiB of zeros as one deflate entry of about a kilobyte per MiB."""
    zeros = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return name, block * mib + c.flush(), 8, crc, mib << 20


def _project(path: Path, manifest: dict | str, photo=None) -> Path:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    entries = [_stored("manifest.json", text.encode())]
    entries.append(photo or _stored("source/a.png", b"photo"))
    return _zip(path, entries)


def _manifest(**changes) -> dict:
    m = {
        "format": FORMAT_NAME,
        "version": 1,
        "pack": "",
        "source": {"name": "a.png", "file": "source/a.png", "size": 5},
        "layers": [LAYER],
    }
    m.update(changes)
    return m


def test_a_well_formed_hand_written_project_loads(tmp_path):
    data = load_project(_project(tmp_path / "ok.instructir", _manifest()))
    assert data.source_bytes == b"photo" and data.layers[0].instruction == "remove the noise"


@pytest.mark.parametrize(
    "changes",
    [
        {"layers": "abc"},
        {"layers": {"a": 1}},
        {"layers": ["remove the noise"]},
        {"layers": [{**LAYER, "strength": [1]}]},
        {"layers": [{**LAYER, "instruction": {"x": 1}}]},
        {"layers": [{**LAYER, "visible": "no"}]},
        {"layers": [{**LAYER, "confidence": {}}]},
        {"layers": None},
        {"extra": [1, 2]},
        {"extra": "text"},
        {"extra": {"title": ["a"]}},
        {"extra": {"project_path": 7}},
        {"extra": {"deep": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}},
        {"source": "a.png"},
        {"source": {"file": 3}},
        {"source": {"name": "a.png", "file": "source/a.png", "size": "5"}},
    ],
)
def test_garbage_inside_a_project_is_a_damaged_project(tmp_path, changes):
    path = _project(tmp_path / "bad.instructir", _manifest(**changes))
    with pytest.raises(ProjectError, match="bad.instructir"):
        load_project(path)


def test_deeply_nested_json_is_a_damaged_project(tmp_path):
    text = '{"format": "instructir-project", "version": 1, "extra": ' + "[" * 200_000
    path = _zip(tmp_path / "deep.instructir", [_stored("manifest.json", text.encode())])
    with pytest.raises(ProjectError, match="damaged"):
        load_project(path)


def test_a_photo_entry_larger_than_declared_is_refused_while_reading(tmp_path):
    path = _project(
        tmp_path / "liar.instructir", _manifest(), _zeros_deflated("source/a.png", 64)
    )  # declares 5 bytes, the zip header says 64 MiB
    with pytest.raises(ProjectError, match="larger than declared"):
        load_project(path)


def test_a_photo_entry_beyond_the_budget_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv(memory.MEMORY_BUDGET_ENV, "256")  # photo files up to 36 MB
    size = 64 << 20
    manifest = _manifest(source={"name": "a.png", "file": "source/a.png", "size": size})
    path = _project(tmp_path / "big.instructir", manifest, _zeros_deflated("source/a.png", 64))
    with pytest.raises(ProjectError, match="memory budget of 0.25 GB allows"):
        load_project(path)


@needs_prlimit
def test_an_inflating_project_under_a_real_memory_limit(tmp_path):
    """3 GiB of zeros in a 3 MB project, opened with 1.5 GB of address space: a clear refusal,
    not a MemoryError (the budget follows the process's limit)."""
    manifest = _manifest(source={"name": "a.png", "file": "source/a.png", "size": 3 << 30})
    path = _project(tmp_path / "bomb.instructir", manifest, _zeros_deflated("source/a.png", 3072))
    assert path.stat().st_size < 4 << 20
    code = (
        "import sys\n"
        "from instructir_desktop.app.project import load_project, ProjectError\n"
        "try:\n"
        "    load_project(sys.argv[1])\n"
        "except ProjectError as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(memory.MEMORY_BUDGET_ENV, None)
    run = subprocess.run(
        ["prlimit", f"--as={3 << 29}", sys.executable, "-c", code, str(path)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "refused:" in run.stdout and "memory budget" in run.stdout, run.stdout


def test_one_bad_autosave_does_not_hide_the_good_ones(qapp):
    from instructir_desktop.app.autosave import autosave_dir, find_recoverable

    folder = autosave_dir()
    folder.mkdir(parents=True)
    good = ProjectData(b"bytes", "a.png", [Layer.from_dict(LAYER)], "", {"title": "a.png"})
    save_project(good, folder / "good.instructir")
    _project(folder / "garbage-layers.instructir", _manifest(layers="abc"))
    _project(folder / "garbage-extra.instructir", _manifest(extra=[1]))
    deep = json.dumps(_manifest(extra="HERE")).replace('"HERE"', '{"x": ' * 3000 + "1" + "}" * 3000)
    _project(folder / "deep.instructir", deep)
    found = find_recoverable()
    assert [r.title for r in found] == ["a.png"]


def test_a_killed_save_leaves_no_temp_file_for_ever(tmp_path, qapp):
    from instructir_desktop.app.autosave import autosave_dir, find_recoverable

    target = tmp_path / "p.instructir"
    data = ProjectData(b"one", "a.png", [], "")
    old = time.time() - STALE_TEMP_SECONDS - 60
    stale = tmp_path / ".p.instructir.k1ll3d.tmp"
    fresh = tmp_path / ".p.instructir.wr1t1ng.tmp"  # another save still under way
    for tmp in (stale, fresh):
        tmp.write_bytes(b"x" * 1000)
    os.utime(stale, (old, old))
    save_project(data, target)
    assert not stale.exists() and fresh.exists()

    # A crash during a session's first autosave: found and removed at the next start.
    folder = autosave_dir()
    folder.mkdir(parents=True)
    orphan = folder / ".20260101-000000-abcdef.instructir.x9y8z7.tmp"
    orphan.write_bytes(b"half")
    os.utime(orphan, (old, old))
    assert find_recoverable() == []
    assert not orphan.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_resaving_keeps_the_mode_of_an_existing_project(tmp_path):
    target = tmp_path / "shared.instructir"
    save_project(ProjectData(b"one", "a.png", [], ""), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # new: private
    os.chmod(target, 0o644)
    save_project(ProjectData(b"two", "a.png", [], ""), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert load_project(target).source_bytes == b"two"


def _big_png(path: Path, side: int) -> Path:
    Image.new("L", (side, side)).save(path, optimize=True)
    return path


def test_a_photo_whose_header_exceeds_the_budget_is_refused_before_decoding(tmp_path, monkeypatch):
    path = _big_png(tmp_path / "huge.png", 6000)  # 36 MP in about 40 KB
    assert path.stat().st_size < 200_000
    monkeypatch.setenv(memory.MEMORY_BUDGET_ENV, "512")
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path)
    message = str(info.value)
    assert "6000 x 6000" in message and "0.5 GB" in message
    assert memory.MEMORY_BUDGET_ENV in message and "\n" not in message
    assert decoded == []
    with pytest.raises(ImageTooLargeError):
        load_image_bytes(path.read_bytes(), name="huge.png")


def test_a_photo_within_the_budget_opens(tmp_path, monkeypatch):
    monkeypatch.setenv(memory.MEMORY_BUDGET_ENV, "512")
    path = tmp_path / "ok.png"
    Image.fromarray(np.full((300, 400, 3), 120, np.uint8)).save(path)
    assert load_image(path).width == 400


def test_the_budget_follows_ram_and_the_address_space_limit(monkeypatch):
    monkeypatch.delenv(memory.MEMORY_BUDGET_ENV, raising=False)
    monkeypatch.setattr(memory, "_physical_memory", lambda: 8 << 30)
    monkeypatch.setattr(memory, "_cgroup_limit", lambda: None)
    monkeypatch.setattr(memory, "_address_space_room", lambda: None)
    assert memory.memory_budget() == 4 << 30
    monkeypatch.setattr(memory, "_address_space_room", lambda: 1 << 30)
    assert memory.memory_budget() == int((1 << 30) * memory.ADDRESS_SPACE_SHARE)
    monkeypatch.setenv(memory.MEMORY_BUDGET_ENV, "abc")
    with pytest.raises(Exception, match=memory.MEMORY_BUDGET_ENV):
        memory.memory_budget()


@needs_prlimit
def test_cli_refuses_a_huge_photo_under_a_real_memory_limit(tmp_path):
    """14000 x 14000 in a small PNG, run with 2.5 GB of address space: one line naming the
    size and the budget, exit 2, no traceback and no MemoryError."""
    path = _big_png(tmp_path / "bomb.png", 14000)
    assert path.stat().st_size < 1 << 20
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INSTRUCTIR_MIN_CONFIDENCE": "0"}
    env.pop(memory.MEMORY_BUDGET_ENV, None)
    run = subprocess.run(
        ["prlimit", f"--as={5 << 29}", sys.executable, "-m", "instructir_desktop.cli",
         "restore", str(path), "-i", "remove the noise", "-o", str(tmp_path / "out.png"),
         "--device", "cpu", "--backend", "torch"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr[-3000:]
    assert len(lines) == 1, run.stderr[-3000:]
    assert "14000 x 14000" in lines[0] and "memory budget" in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_the_bridge_refuses_a_photo_beyond_the_budget_over_http(
    tmp_path, monkeypatch, tiny_restorer
):
    import base64
    import urllib.error
    import urllib.request

    from instructir_desktop.bridge.server import BridgeServer

    monkeypatch.setenv(memory.MEMORY_BUDGET_ENV, "512")
    png = _big_png(tmp_path / "huge.png", 6000).read_bytes()
    body = {"image": base64.b64encode(png).decode(), "instruction": "remove the noise"}
    server = BridgeServer(lambda pack: tiny_restorer)
    server.start()
    try:
        request = urllib.request.Request(
            server.url + "/jobs",
            data=json.dumps({**body, "as_written": True}).encode(),
            method="POST",
            headers={"X-InstructIR-Token": server.token, "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=60)
    finally:
        server.stop()
    assert info.value.code == 413
    error = json.loads(info.value.read())["error"]
    assert "6000 x 6000" in error and "memory budget of 0.5 GB" in error
