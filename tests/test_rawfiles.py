"""Camera RAW files: developed with LibRaw when opened (real DNG files written by the tests),
refused with a clear message when they cannot be, never written; the batch survives any one
photo failing."""

from __future__ import annotations

import sys

import dngfiles
import numpy as np
import pytest
import test_ui_editing
from PIL import Image
from test_cli import apply_any_instruction, run  # noqa: F401 - the fixture applies here too
from test_ui_editing import WAIT, open_and_wait

from instructir_desktop.core import rawfiles
from instructir_desktop.core.batch import photo_size, run_batch
from instructir_desktop.core.errors import ImageTooLargeError, UnsupportedImageError
from instructir_desktop.core.images import check_fits, load_image
from instructir_desktop.core.outputs import collect_inputs

make_window = test_ui_editing.make_window  # windows on the tiny pack

H, W = 96, 144


def scene() -> np.ndarray:
    """Linear light: two gradients, a colour patch and a white strip (what auto-brightness
    keys on), so the development has a known answer."""
    y, x = np.mgrid[0:H, 0:W]
    linear = np.stack([0.05 + 0.5 * x / W, 0.1 + 0.4 * y / H, np.full(x.shape, 0.2)], axis=2)
    linear[30:60, 60:100] = (0.6, 0.25, 0.05)
    linear[:, :8] = 1.0
    return linear


def srgb(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def exif_of(photo) -> Image.Exif:
    exif = Image.Exif()
    exif.load(photo.exif)
    return exif


def test_a_dng_is_developed_to_16_bit_srgb_with_its_exif(tmp_path):
    path = dngfiles.write_dng(tmp_path / "IMG_0042.DNG", scene(), make="Pentax", model="K-3")
    photo = load_image(path)
    assert (photo.width, photo.height, photo.bit_depth, photo.format) == (W, H, 16, "RAW")
    assert photo.alpha is None and photo.icc_profile is None  # sRGB
    smooth = np.zeros((H, W), bool)  # away from the borders and the patch's edges
    smooth[4:-4, 12:-4] = True
    smooth[27:63, 57:103] = False
    error = np.abs(photo.pixels - srgb(scene()))[smooth]
    assert error.mean() < 2e-4 and error.max() < 0.01
    patch = photo.pixels[34:56, 64:96].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(patch, srgb(np.array([0.6, 0.25, 0.05])), atol=2e-3)
    exif = exif_of(photo)
    assert photo.exif.startswith(b"Exif\0\0MM\0*") or photo.exif.startswith(b"Exif\0\0II*\0")
    assert exif[0x010F] == "Pentax" and exif[0x0110] == "K-3"
    assert exif[0x0132] == "2026:11:30 10:42:00" and exif[0x0112] == 1
    assert 0x0102 not in exif and 50706 not in exif  # the sensor data's tags stay behind


def test_the_cameras_orientation_is_applied(tmp_path):
    upright = load_image(dngfiles.write_dng(tmp_path / "a.dng", scene()))
    turned = load_image(dngfiles.write_dng(tmp_path / "b.dng", scene(), orientation=6))
    assert (turned.width, turned.height) == (H, W)
    np.testing.assert_allclose(turned.pixels, np.rot90(upright.pixels, k=-1), atol=1e-3)
    assert exif_of(turned)[0x0112] == 1
    assert photo_size(tmp_path / "b.dng") == (H, W)  # the batch's memory gate sees the photo


def test_the_size_is_checked_before_anything_is_developed(tmp_path):
    path = dngfiles.write_dng(tmp_path / "big.nef.dng", scene())
    with pytest.raises(ImageTooLargeError, match=f"{W}x{H}|{W} x {H}|{W}×{H}"):
        load_image(path, max_pixels=W * H - 1)
    with pytest.raises(ImageTooLargeError):
        check_fits(path, max_pixels=W * H - 1)
    check_fits(path, max_pixels=W * H)


def test_exif_sub_ifds_travel_from_a_tiff_based_raw_file():
    exif = Image.Exif()
    exif[0x010F] = "Nikon"
    exif[0x0102] = 16  # BitsPerSample: left behind
    exif.get_ifd(0x8769)[0x829A] = 1 / 250  # ExposureTime
    exif.get_ifd(0x8769)[0xA434] = "24-70mm f/2.8"  # LensModel
    tiff = exif.tobytes()[6:]  # a TIFF structure, as a NEF or a CR2 starts
    assert tiff.startswith((b"II*\0", b"MM\0*"))
    carried = rawfiles._exif(tiff)
    assert carried.startswith(b"Exif\0\0")
    kept = Image.Exif()
    kept.load(carried)
    assert kept[0x010F] == "Nikon" and 0x0102 not in kept and kept[0x0112] == 1
    sub = kept.get_ifd(0x8769)
    assert float(sub[0x829A]) == pytest.approx(1 / 250) and sub[0xA434] == "24-70mm f/2.8"
    assert rawfiles._exif(b"FUJIFILMCCD-RAW ...") is None  # not TIFF-based: no EXIF, no error


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("IMG_0001.CR2", b"II*\0\x10\0\0\0CR\x02\0" + bytes(4000), "not a Canon CR2 file"),
        ("DSC_0001.NEF", b"not a raw file at all" * 50, "not a Nikon NEF file"),
        ("empty.arw", b"", "is empty"),
    ],
)
def test_files_that_cannot_be_developed_get_a_clear_message(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnsupportedImageError, match=message):
        load_image(path)


def test_a_truncated_dng_is_refused(tmp_path):
    whole = dngfiles.write_dng(tmp_path / "whole.dng", scene()).read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(whole[:4000])
    with pytest.raises(UnsupportedImageError, match="cut.dng"):
        load_image(cut)


def test_without_rawpy_the_message_says_what_to_install(tmp_path, monkeypatch):
    path = dngfiles.write_dng(tmp_path / "shot.dng", scene())
    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy raises ImportError
    with pytest.raises(UnsupportedImageError, match=r"camera RAW file \(DNG\).*rawpy"):
        load_image(path)


def test_restore_writes_a_16_bit_tiff_next_to_jpegs_and_never_the_raw_file(
    capsys, installed, tmp_path
):
    shots = tmp_path / "shots"
    shots.mkdir()
    dngfiles.write_dng(shots / "DSC_0007.dng", scene(), make="Leica")
    Image.fromarray((srgb(scene()) * 255).astype(np.uint8)).save(shots / "DSC_0007.jpg")
    assert [p.name for p in collect_inputs([shots])] == ["DSC_0007.dng", "DSC_0007.jpg"]
    code, out, err = run(
        capsys, "restore", str(shots), "-i", "remove the noise", "-o", str(tmp_path / "out")
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["DSC_0007.jpg", "DSC_0007.tif"]
    result = load_image(tmp_path / "out" / "DSC_0007.tif")
    assert (result.width, result.height, result.bit_depth) == (W, H, 16)
    assert exif_of(result)[0x010F] == "Leica"
    # An output named after a RAW type is refused: RAW files are read, never written.
    code, out, err = run(
        capsys,
        "restore",
        str(shots / "DSC_0007.jpg"),
        "-i",
        "denoise",
        "-o",
        str(tmp_path / "x.nef"),
    )
    assert code == 2 and "cannot save '.nef'" in err


def test_one_photo_failing_in_an_unexpected_way_does_not_stop_a_batch(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    plans = [(tmp_path / "bad.png", tmp_path / "o1.png"), (good, tmp_path / "o2.png")]

    def load(path):
        if path.name == "bad.png":
            raise RuntimeError("a decoder bug")
        return load_image(path)

    saved = []
    results = run_batch(
        plans,
        lambda i, src, photo: photo.pixels,
        lambda photo, pixels, dst: saved.append(dst) or dst,
        load=load,
    )
    assert [r.ok for r in results] == [False, True]
    assert "RuntimeError: a decoder bug" in results[0].error and saved == [tmp_path / "o2.png"]


def test_the_app_opens_a_raw_file_and_exports_it_as_tiff(qtbot, make_window, tmp_path, monkeypatch):
    from instructir_desktop.ui import dialogs

    window = make_window()
    path = dngfiles.write_dng(tmp_path / "holiday.dng", scene())
    open_and_wait(qtbot, window, path)
    photo = window.session.document.source.photo
    assert (photo.width, photo.height, photo.bit_depth) == (W, H, 16)
    assert window.canvas.before.size == (W, H)

    shown = []

    def accept(dialog):  # the real dialog, as the user leaves it: Save
        shown.append((dialog.path.text(), dialog.format.currentData(), dialog.depth.currentData()))
        return True

    monkeypatch.setattr(dialogs.ExportDialog, "exec", accept)
    target = tmp_path / "holiday-restored.tif"
    with qtbot.waitSignal(window.session.exported, timeout=WAIT):
        window.export_dialog()
    assert shown == [(str(target), "TIFF", 16)]
    saved = load_image(target)
    assert saved.bit_depth == 16
    np.testing.assert_allclose(saved.pixels, photo.pixels, atol=1 / 65535 + 1e-6)


def test_a_project_keeps_the_raw_file_and_develops_it_again(tmp_path):
    from instructir_desktop.app.files import open_file
    from instructir_desktop.app.project import ProjectData, save_project

    raw = dngfiles.write_dng(tmp_path / "P1010042.RW2.dng", scene())
    project = save_project(ProjectData(raw.read_bytes(), raw.name, [], ""), tmp_path / "trip")
    reopened = open_file(project, preview_edge=64)
    assert reopened.source.data == raw.read_bytes()  # the RAW file byte for byte
    np.testing.assert_array_equal(reopened.source.photo.pixels, load_image(raw).pixels)
    assert [level.name for level in reopened.levels] == ["preview", "full"]
