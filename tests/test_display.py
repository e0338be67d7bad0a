"""Photos with a wide-gamut colour profile are shown converted to sRGB, and only shown so: the
document, the model's input, exports and projects keep the photo's own values and profile."""

from __future__ import annotations

import threading

import iccprofiles
import numpy as np
import pytest
import test_ui_editing
from PIL import Image, ImageCms
from test_ui_editing import WAIT, composite, idle, open_and_wait, type_instruction

from instructir_desktop.app.display import screen_transform
from instructir_desktop.app.stack import build_pyramid, thumbnail
from instructir_desktop.core.images import load_image

make_window = test_ui_editing.make_window  # windows on the tiny pack

RNG = np.random.default_rng(0)
COLOURS = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "icc, primaries, gamma",
    [
        (iccprofiles.display_p3(), iccprofiles.P3_PRIMARIES, 2.2),
        (iccprofiles.adobe_rgb(), iccprofiles.ADOBE_PRIMARIES, 563 / 256),
    ],
    ids=["display-p3", "adobe-rgb"],
)
def test_a_wide_gamut_profile_is_converted_as_colour_science_says(icc, primaries, gamma):
    screen = screen_transform(icc)
    assert screen is not None and "Test" in screen.description
    expected = iccprofiles.to_srgb8(COLOURS, primaries, gamma)
    shown = screen(COLOURS)
    assert shown.dtype == np.uint8 and shown.shape == COLOURS.shape
    assert np.abs(shown.astype(int) - expected).max() <= 1
    # A wide-gamut orange is more saturated on screen than its raw values painted as sRGB.
    r, g, b = (int(v) for v in screen(np.array([[[200, 100, 50]]], np.uint8))[0, 0])
    assert r > 200 and b < 50
    # Strips: a tall image goes through in pieces with the same result.
    tall = np.repeat(COLOURS, 12, axis=0)  # 576 rows, more than one strip
    np.testing.assert_array_equal(screen(tall), np.repeat(shown, 12, axis=0))


def test_no_profile_srgb_grey_or_unreadable_profiles_are_shown_as_they_are():
    srgb_lcms = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    srgb_camera = iccprofiles.matrix_profile(iccprofiles.SRGB_PRIMARIES, 2.2, "Camera sRGB")
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert screen_transform(None) is None
    assert screen_transform(b"") is None
    assert screen_transform(srgb_lcms) is None
    assert screen_transform(iccprofiles.display_p3(), grey=True) is None  # grey photos
    assert screen_transform(grey) is None  # not an RGB profile
    damaged = bytearray(iccprofiles.display_p3())
    assert screen_transform(bytes(damaged[:150])) is None  # cut short
    damaged[200:260] = bytes(60)  # the colorants and curves zeroed
    assert screen_transform(bytes(damaged)) is None
    assert screen_transform(b"\0" * 16 + b"RGB " + b"\xff" * 200) is None  # nonsense
    # A camera's sRGB with a plain 2.2 gamma differs from sRGB's curve in the shadows by more
    # than a level, so it is converted: close to its raw values, not equal to them.
    camera = screen_transform(srgb_camera)
    assert camera is not None
    moved = np.abs(camera(COLOURS).astype(int) - COLOURS)
    assert moved.mean() < 3 and moved.max() > 1


def test_the_transform_is_safe_from_several_threads():
    screen = screen_transform(iccprofiles.display_p3())
    expected = screen(COLOURS)
    results, errors = [], []

    def convert():
        try:
            for _ in range(20):
                results.append(screen(COLOURS))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=convert) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80
    assert all(np.array_equal(r, expected) for r in results)


def test_pyramids_and_thumbnails_are_built_for_the_screen():
    screen = screen_transform(iccprofiles.display_p3())
    image = COLOURS.astype(np.float32) / 255
    pyramid = build_pyramid(image, 64, "fp", min_edge=16, to_screen=screen)
    np.testing.assert_array_equal(pyramid.levels[0], screen(COLOURS))
    assert pyramid.to_screen is screen and len(pyramid.levels) == 3
    plain = build_pyramid(image, 64, "fp", min_edge=16)
    np.testing.assert_array_equal(plain.levels[0], COLOURS)
    assert plain.to_screen is None
    small = thumbnail(image, edge=32)
    np.testing.assert_array_equal(thumbnail(image, edge=32, to_screen=screen), screen(small))


def tagged_photo(path, icc: bytes, size=(96, 64)):
    """A saturated gradient saved with this profile."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x / size[0], 1 - y / size[1], np.full(x.shape, 0.3)], axis=2)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path, icc_profile=icc)
    return path


def test_the_app_shows_a_p3_photo_in_srgb_and_keeps_its_values(qtbot, make_window, tmp_path):
    icc = iccprofiles.display_p3()
    screen = screen_transform(icc)
    window = make_window()
    path = tagged_photo(tmp_path / "phone.png", icc)
    raw = np.asarray(Image.open(path).convert("RGB"))
    open_and_wait(qtbot, window, path)
    session, doc = window.session, window.session.document

    # The document (what the model sees and exports) holds the file's values; the canvas and
    # its before/after show them converted.
    np.testing.assert_allclose(doc.source.photo.pixels, raw / 255, atol=1e-6)
    assert doc.source.photo.icc_profile == icc
    np.testing.assert_array_equal(window.canvas.before.levels[0], screen(raw))
    assert not np.array_equal(window.canvas.before.levels[0], raw)

    type_instruction(qtbot, window, "the photo is too bright")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    result = composite(window)
    shown = window.canvas.after.levels[0]
    np.testing.assert_array_equal(shown, screen(np.rint(result * 255).astype(np.uint8)))
    thumb = session.chat.messages[0].thumbnail
    np.testing.assert_array_equal(thumb, thumbnail(result, to_screen=screen))

    # Exports hold the composite's own values with the photo's profile, not the screen's.
    target = tmp_path / "out.png"
    with qtbot.waitSignal(session.exported, timeout=WAIT):
        session.export(target, format="PNG", bit_depth=8)
    saved = load_image(target)
    assert saved.icc_profile == icc
    np.testing.assert_allclose(saved.pixels, result, atol=0.5 / 255 + 1e-6)


def test_the_app_shows_an_untagged_photo_as_it_is(qtbot, make_window, tmp_path):
    window = make_window()
    path = tagged_photo(tmp_path / "plain.png", b"")
    raw = np.asarray(Image.open(path).convert("RGB"))
    open_and_wait(qtbot, window, path)
    np.testing.assert_array_equal(window.canvas.before.levels[0], raw)
    assert window.canvas.before.to_screen is None
