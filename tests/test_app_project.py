"""Project files: round trip, atomic and private saves, clear errors on damaged files."""

from __future__ import annotations

import stat
import sys
import zipfile

import pytest

from instructir_desktop.app.document import Layer
from instructir_desktop.app.project import (
    ProjectData,
    ProjectError,
    encode_project,
    load_project,
    save_project,
)

LAYERS = [
    Layer("a1", "remove the noise", 1.0, True, "denoise", 0.9),
    Layer("b2", "it is too dark", 0.35, False, "lowlight", 0.7),
]


def test_project_round_trip(tmp_path):
    data = ProjectData(b"\xff\xd8photo-bytes", "holiday.jpg", LAYERS, "instructir-lite")
    path = save_project(data, tmp_path / "trip")
    assert path.name == "trip.instructir"
    loaded = load_project(path)
    assert loaded.source_bytes == data.source_bytes and loaded.source_name == "holiday.jpg"
    assert loaded.layers == LAYERS and loaded.pack == "instructir-lite"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_replaces_atomically(tmp_path):
    target = tmp_path / "p.instructir"
    save_project(ProjectData(b"one", "a.png", [], ""), target)
    save_project(ProjectData(b"two", "a.png", LAYERS, ""), target)
    assert load_project(target).source_bytes == b"two"


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "damaged"),
        (b"PK\x03\x04 definitely not a zip", "damaged"),
        (b"just text", "damaged"),
    ],
)
def test_corrupt_projects_raise_clear_errors(tmp_path, content, words):
    path = tmp_path / "bad.instructir"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=words) as info:
        load_project(path)
    assert "bad.instructir" in str(info.value)


def test_truncated_project(tmp_path):
    good = encode_project(ProjectData(b"x" * 5000, "a.png", LAYERS, ""))
    path = tmp_path / "cut.instructir"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ProjectError, match="damaged"):
        load_project(path)


def test_project_from_a_newer_version_and_foreign_zip(tmp_path):
    newer = tmp_path / "newer.instructir"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("manifest.json", '{"format": "instructir-project", "version": 99}')
    with pytest.raises(ProjectError, match="newer InstructIR"):
        load_project(newer)
    foreign = tmp_path / "foreign.instructir"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("manifest.json", '{"hello": 1}')
    with pytest.raises(ProjectError, match="not an InstructIR project"):
        load_project(foreign)


def test_bad_layer_values_are_rejected(tmp_path):
    bad = tmp_path / "bad.instructir"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr(
            "manifest.json",
            '{"format": "instructir-project", "version": 1, '
            '"source": {"file": "source/a.png"}, '
            '"layers": [{"instruction": "x", "strength": 7}]}',
        )
        zf.writestr("source/a.png", b"123")
    with pytest.raises(ProjectError, match="strength"):
        load_project(bad)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_new_project_is_readable_by_its_owner_alone(tmp_path):
    """(Saving over an existing project keeps its mode: tests/test_robust_files.py.)"""
    target = tmp_path / "trip.instructir"
    save_project(ProjectData(b"photo", "a.jpg", LAYERS, ""), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
