"""core.atomic: whole files or none, with the permission mode the file should have."""

import os
import stat
import sys

import pytest

from instructir_desktop.core.atomic import atomic_file, atomic_write_bytes, atomic_write_text

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_the_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "{}\n")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_an_error_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("disk pulled out")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@posix_only
def test_an_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "photo.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"new")
    assert _mode(target) == 0o640


@posix_only
def test_a_new_file_follows_the_umask_not_the_private_temp_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "new.png", b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new.png") == 0o640


@posix_only
def test_an_explicit_mode_wins_over_the_existing_one(tmp_path):
    target = tmp_path / "bridge.json"
    target.write_text("{}")
    os.chmod(target, 0o644)
    atomic_write_text(target, '{"token": "secret"}', mode=0o600)
    assert _mode(target) == 0o600
