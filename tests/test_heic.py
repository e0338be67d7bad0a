"""HEIC photos (iPhones and many Android phones) open out of the box: pi-heif, a dependency,
reads them (the decoder without pillow-heif's GPL encoder, so installers can carry it). The
tests write real HEIC files with pillow-heif (test-only) and read them in fresh processes
where pillow-heif cannot be imported, as in an installed app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import iccprofiles
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def write_heic(path: Path, size=(96, 64), orientation: int = 1, icc: bytes | None = None):
    pillow_heif = pytest.importorskip("pillow_heif")
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x / size[0], y / size[1], np.full(x.shape, 0.4)], axis=2)
    image = Image.fromarray((rgb * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0112] = orientation
    image.info["exif"] = exif.tobytes()
    if icc:
        image.info["icc_profile"] = icc
    pillow_heif.from_pillow(image).save(path, quality=95)
    return image


READ = """
import json, sys
sys.modules["pillow_heif"] = None  # as in the installers: pi-heif only
if sys.argv[2] == "no-heif":
    sys.modules["pi_heif"] = None
import numpy as np
from instructir_desktop.core import images
from instructir_desktop.core.errors import InstructIRError
from instructir_desktop.core.outputs import default_suffix
out = {"readable": ".heic" in images.READABLE_EXTENSIONS,
       "writable": ".heic" in images.SUPPORTED_EXTENSIONS,
       "suffix": default_suffix(sys.argv[1])}
try:
    photo = images.load_image(sys.argv[1])
    np.save(sys.argv[1] + ".npy", photo.pixels)
    from PIL import Image
    exif = Image.Exif()
    exif.load(photo.exif)
    icc = photo.icc_profile.hex() if photo.icc_profile else None
    out.update(size=[photo.width, photo.height], exif=exif.get(0x010F) == "Apple",
               orientation=exif.get(0x0112), icc=icc)
    try:
        images.save_image(photo, sys.argv[1] + ".out.heic")
    except InstructIRError as exc:
        out["save"] = str(exc)
except InstructIRError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def read_in_fresh_process(path: Path, mode: str = "pi-heif") -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", READ, str(path), mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_an_iphone_photo_opens_with_pi_heif_and_results_default_to_jpeg(tmp_path):
    icc = iccprofiles.display_p3()
    source = write_heic(tmp_path / "IMG_4032.HEIC", icc=icc)
    got = read_in_fresh_process(tmp_path / "IMG_4032.HEIC")
    assert got["readable"] and not got["writable"]
    assert got["size"] == [96, 64] and got["exif"] and bytes.fromhex(got["icc"]) == icc
    pixels = np.load(tmp_path / "IMG_4032.HEIC.npy")
    error = pixels - np.asarray(source, np.float32) / 255
    assert 10 * np.log10(1 / np.mean(error**2)) > 35  # lossy, but the same picture
    assert got["suffix"] == ".jpg"
    assert "pillow-heif" in got["save"]  # writing HEIC needs the optional encoder


def test_an_exif_orientation_is_not_applied_on_top_of_heifs_own(tmp_path):
    """A HEIC file turns its picture with the container's transforms (irot/imir), which
    libheif applies while decoding; the EXIF orientation only mirrors them (the HEIF
    standard), so it is not applied a second time and is kept as 1."""
    write_heic(tmp_path / "portrait.heic", orientation=6)
    got = read_in_fresh_process(tmp_path / "portrait.heic")
    assert got["size"] == [96, 64] and got["orientation"] == 1


def test_without_any_heic_decoder_the_message_says_what_to_install(tmp_path):
    write_heic(tmp_path / "IMG_0001.heic")
    got = read_in_fresh_process(tmp_path / "IMG_0001.heic", mode="no-heif")
    assert not got["readable"]
    assert "is a HEIC photo" in got["error"] and "pi-heif" in got["error"]
