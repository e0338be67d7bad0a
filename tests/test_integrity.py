"""A pack's files are checked against its manifest's sha256 whenever the pack loads."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from instructir_desktop.cli import main
from instructir_desktop.core import integrity
from instructir_desktop.core.errors import ModelCorruptError
from instructir_desktop.core.packs import MANIFEST_NAME, PackManifest
from instructir_desktop.core.paths import cache_dir, data_dir
from instructir_desktop.core.resources import resource_path
from instructir_desktop.core.restorer import Restorer


def _flip_bytes(path, at: int = 4096, count: int = 64) -> None:
    """Same size, different bytes: what a bad disk sector or a broken copy leaves."""
    with open(path, "r+b") as fh:
        fh.seek(at)
        chunk = fh.read(count)
        fh.seek(at)
        fh.write(bytes(b ^ 0xFF for b in chunk))


@pytest.fixture
def damaged_pack(tiny_pack):
    target = data_dir() / "packs" / "tiny-test"
    shutil.copytree(tiny_pack, target)
    size = (target / "image.safetensors").stat().st_size
    _flip_bytes(target / "image.safetensors")
    assert (target / "image.safetensors").stat().st_size == size
    return target


def test_restorer_refuses_weights_with_flipped_bytes(damaged_pack):
    with pytest.raises(ModelCorruptError) as info:
        Restorer(damaged_pack, device="cpu", backend="torch")
    message = str(info.value)
    assert "\n" not in message
    assert "image.safetensors" in message
    assert "instructir models download tiny-test" in message
    assert "Import" in message


def test_a_damaged_text_head_is_refused_too(tiny_pack, tmp_path):
    pack = shutil.copytree(tiny_pack, tmp_path / "pack")
    _flip_bytes(pack / "head.safetensors", at=2000)
    with pytest.raises(ModelCorruptError, match="head.safetensors"):
        Restorer(pack, device="cpu", backend="torch")


def test_cli_restore_and_intent_give_one_line_and_no_output(
    capsys, damaged_pack, tmp_path, monkeypatch
):
    from PIL import Image

    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "0")
    photo = tmp_path / "in.png"
    Image.new("RGB", (32, 24), (90, 80, 70)).save(photo)
    out = tmp_path / "out.png"
    args = ["restore", str(photo), "-i", "remove the noise", "-o", str(out)]
    code = main([*args, "--model", "tiny-test", "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code != 0
    assert not out.exists()
    assert len(err.strip().splitlines()) == 1, err
    assert "image.safetensors" in err and "models download tiny-test" in err

    _flip_bytes(damaged_pack / "image.safetensors")  # back as it was
    _flip_bytes(damaged_pack / "head.safetensors", at=2000)
    code = main(["intent", "too dark", "--model", "tiny-test"])
    _, err = capsys.readouterr()
    assert code != 0
    assert "head.safetensors" in err and len(err.strip().splitlines()) == 1, err


def test_bundled_pack_verifies(tmp_path):
    folder = resource_path("packs", "instructir-lite")
    manifest = PackManifest.load(folder / MANIFEST_NAME)
    integrity.verify_pack_files(manifest, folder)  # must not raise


def test_a_big_file_is_hashed_once_until_it_changes(tiny_pack, tmp_path, monkeypatch):
    pack = shutil.copytree(tiny_pack, tmp_path / "pack")
    manifest = PackManifest.load(pack / MANIFEST_NAME)
    monkeypatch.setattr(integrity, "RECORD_MIN_BYTES", 1)  # every file counts as big here
    hashed = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(p.name) or real(p))

    integrity.verify_pack_files(manifest, pack)
    first = sorted(hashed)
    assert first == sorted(f.path for f in manifest.files)
    records = json.loads((cache_dir() / integrity.RECORDS_NAME).read_text())
    assert str((pack / "image.safetensors").resolve()) in records

    hashed.clear()
    integrity.verify_pack_files(manifest, pack)
    assert hashed == []  # a second start trusts the record

    # Damage that keeps the size: the modification time changes, so it is hashed again.
    _flip_bytes(pack / "image.safetensors")
    with pytest.raises(ModelCorruptError, match="image.safetensors"):
        integrity.verify_pack_files(manifest, pack)

    # Even with the old modification time put back, a failed check is never remembered.
    st = (pack / "image.safetensors").stat()
    os.utime(pack / "image.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ModelCorruptError):
        integrity.verify_pack_files(manifest, pack)


def test_small_files_are_always_hashed(tiny_pack, tmp_path, monkeypatch):
    """Below the record size, hashing costs less than trusting a timestamp."""
    pack = shutil.copytree(tiny_pack, tmp_path / "pack")
    manifest = PackManifest.load(pack / MANIFEST_NAME)
    integrity.verify_pack_files(manifest, pack)
    image = pack / "image.safetensors"
    st = image.stat()
    _flip_bytes(image)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))  # a copy that kept the old time
    with pytest.raises(ModelCorruptError):
        integrity.verify_pack_files(manifest, pack)
