"""Masks: `instructir restore --mask`, and the mask tools' pixel operations (core.masks)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from instructir_desktop.cli import main
from instructir_desktop.core import masks


@pytest.fixture(autouse=True)
def apply_any_instruction(monkeypatch):
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "0")


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "p.png"
    Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(path)
    return path


def restore(capsys, photo, out, installed, *extra):
    code = main(
        [
            "restore",
            str(photo),
            "-i",
            "remove the noise",
            "-o",
            str(out),
            "--model",
            installed,
            "--device",
            "cpu",
            *extra,
        ]
    )
    _out, err = capsys.readouterr()
    return code, err


def half_mask(h, w, bits=8):
    """Left half white, right half black, a grey column in the middle."""
    top = 65535 if bits == 16 else 255
    m = np.zeros((h, w), np.uint16 if bits == 16 else np.uint8)
    m[:, : w // 2] = top
    m[:, w // 2] = top // 2
    return m


@pytest.mark.parametrize("kind", ["grey8", "grey16", "rgba"])
def test_restore_mask_keeps_black_and_applies_white(capsys, installed, photo, tmp_path, kind):
    plain = tmp_path / "plain.png"
    assert restore(capsys, photo, plain, installed)[0] == 0
    m = half_mask(40, 56, 16 if kind == "grey16" else 8)
    mask_file = tmp_path / "mask.png"
    if kind == "rgba":
        rgba = np.zeros((40, 56, 4), np.uint8)
        rgba[..., 0] = 255 - m  # colour must not matter, only the alpha
        rgba[..., 3] = m
        Image.fromarray(rgba, "RGBA").save(mask_file)
    else:
        Image.fromarray(m).save(mask_file)
    masked = tmp_path / "masked.png"
    code, err = restore(capsys, photo, masked, installed, "--mask", str(mask_file))
    assert code == 0, err
    assert "warning" not in err
    orig = np.asarray(Image.open(photo))
    full = np.asarray(Image.open(plain))
    out = np.asarray(Image.open(masked))
    assert not np.array_equal(orig[:, 29:], full[:, 29:])  # the fix changes those pixels
    assert np.array_equal(out[:, 29:], orig[:, 29:])  # black: the original, byte for byte
    assert np.array_equal(out[:, :28], full[:, :28])  # white: the unmasked restore
    grey = out[:, 28].astype(int)
    lo = np.minimum(orig[:, 28], full[:, 28]).astype(int) - 1
    hi = np.maximum(orig[:, 28], full[:, 28]).astype(int) + 1
    assert ((grey >= lo) & (grey <= hi)).all()


def test_restore_mask_of_another_size_is_scaled_with_a_warning(capsys, installed, photo, tmp_path):
    mask_file = tmp_path / "small.png"
    Image.fromarray(np.zeros((20, 28), np.uint8)).save(mask_file)
    out = tmp_path / "o.png"
    code, err = restore(capsys, photo, out, installed, "--mask", str(mask_file))
    assert code == 0, err
    assert "warning" in err and "scaled" in err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(photo)))


@pytest.mark.parametrize("content", [None, b"not a png at all"])
def test_bad_mask_is_one_line_before_the_model(capsys, photo, tmp_path, monkeypatch, content):
    import instructir_desktop.cli as cli

    def no_model(_args):
        raise AssertionError("the model must not load for a bad mask")

    monkeypatch.setattr(cli, "_open_queue", no_model)
    mask_file = tmp_path / "bad.png"
    if content is not None:
        mask_file.write_bytes(content)
    code = main(
        [
            "restore",
            str(photo),
            "-i",
            "denoise",
            "-o",
            str(tmp_path / "o.png"),
            "--mask",
            str(mask_file),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "bad.png" in err


def test_mask_with_recipe_is_refused(capsys, photo, tmp_path):
    code = main(
        [
            "restore",
            str(photo),
            "--recipe",
            str(tmp_path / "r.json"),
            "-o",
            str(tmp_path / "o.png"),
            "--mask",
            str(tmp_path / "m.png"),
        ]
    )
    assert code == 2
    assert "--mask" in capsys.readouterr().err


def test_apply_mask_copies_exact_pixels():
    rng = np.random.default_rng(2)
    x = rng.random((8, 9, 3), dtype=np.float32)
    y = rng.random((8, 9, 3), dtype=np.float32)
    m = np.zeros((8, 9), np.float32)
    m[:4] = 1.0
    m[4, :] = 0.25
    out = masks.apply_mask(x, y, m)
    assert np.array_equal(out[:4], y[:4]) and np.array_equal(out[5:], x[5:])
    np.testing.assert_allclose(out[4], x[4] + 0.25 * (y[4] - x[4]), rtol=1e-6)


def test_tools_shapes_gradient_brightness_feather():
    rect = masks.paint_rect((10, 10), (2, 3, 6, 8))
    assert rect.sum() == 4 * 5 and rect[3, 2] == 1 and rect[8, 2] == 0
    ell = masks.paint_ellipse((11, 11), (0, 0, 11, 11))
    assert ell[5, 5] == 1 and ell[0, 0] == 0 and 0.7 < ell.mean() < 0.85
    grad = masks.linear_gradient((11, 3), (0, 0), (0, 10))
    np.testing.assert_allclose(grad[:, 0], np.linspace(1, 0, 11), atol=1e-6)
    ramp = np.linspace(0, 1, 101, dtype=np.float32)[None, :, None].repeat(3, 2)
    shadows = masks.brightness_range(ramp, "shadows")[0]
    highs = masks.brightness_range(ramp, "highlights")[0]
    mids = masks.brightness_range(ramp, "midtones")[0]
    assert shadows[0] == 1 and shadows[-1] == 0 and highs[-1] == 1 and highs[0] == 0
    assert mids[50] == 1 and mids[0] == 0 and mids[-1] == 0
    assert 0 < shadows[33] < 1  # a soft edge, not a cut
    soft = masks.feather(rect, 1.5)
    assert 0 < soft[3, 1] < 1 and soft.max() <= 1
    painted = masks.combine(np.zeros((10, 10), np.float32), rect, 0.5, erase=False)
    assert painted.max() == 0.5
    erased = masks.combine(np.ones((10, 10), np.float32), rect, 1.0, erase=True)
    assert erased[3, 2] == 0 and erased[0, 0] == 1


def test_what_a_mask_file_means():
    """Brightness, whatever the channels (a mask painted black and white in an editor that
    saves RGBA); the alpha where it varies (an exported selection); a colour photo refused."""
    m = np.zeros((6, 8), np.uint8)
    m[:, :4] = 255
    opaque = np.dstack([m, m, m, np.full_like(m, 255)])
    selection = np.dstack([np.zeros_like(m)] * 3 + [m])  # black pixels, the selection's alpha
    for rgba in (opaque, selection):
        plane = masks.mask_plane(Image.fromarray(rgba, "RGBA"))
        np.testing.assert_array_equal(plane, m / 255.0)
    grey_rgb = Image.fromarray(np.dstack([m] * 3), "RGB")
    np.testing.assert_array_equal(masks.mask_plane(grey_rgb), m / 255.0)
    rng = np.random.default_rng(3)
    photo = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8), "RGB")
    with pytest.raises(masks.RecipeMaskError, match="colour picture, not a mask"):
        masks.mask_plane(photo, "holiday.png")


def test_a_photo_given_as_the_mask_is_refused_before_the_model(capsys, photo, tmp_path):
    code, err = restore(capsys, photo, tmp_path / "o.png", "no-such-pack", "--mask", str(photo))
    assert code == 2 and "'p.png' is a colour picture, not a mask" in err
    assert "no-such-pack" not in err  # refused before any model is looked for
    assert not (tmp_path / "o.png").exists()
