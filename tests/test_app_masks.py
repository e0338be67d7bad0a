"""Layer masks in the data model: compositing through a mask (no model run), undo of a mask
change, projects keep masks losslessly, recipes take the app's masks."""

from __future__ import annotations

import zipfile

import numpy as np
from PySide6.QtGui import QUndoStack

from instructir_desktop.app.commands import AddLayer, SetMask, SetStrength
from instructir_desktop.app.document import Document, Layer
from instructir_desktop.app.project import ProjectData, load_project, save_project
from instructir_desktop.app.stack import RenderCache, evaluate, level_fingerprint
from instructir_desktop.core.recipe import load_mask, mask_png

RNG = np.random.default_rng(3)
BASE = RNG.random((12, 16, 3), dtype=np.float32)
FP = level_fingerprint("src", (12, 16))


def fake_restore(x: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - x, 0, 1).astype(np.float32)


class Renders:
    """Evaluate like the scheduler, counting the model runs."""

    def __init__(self) -> None:
        self.cache = RenderCache()
        self.runs = 0

    def __call__(self, doc: Document, base: np.ndarray = BASE, fp: str = FP) -> np.ndarray:
        while True:
            result = evaluate(base, fp, doc.steps(), "pack", self.cache)
            if result.missing is None:
                return result.image
            self.runs += 1
            self.cache.put_restored(result.missing.key, fake_restore(result.missing.image))


def left_mask(h=12, w=16) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    m[:, : w // 2] = 1.0
    m[:, w // 2] = 0.5
    return m


def test_composite_follows_the_mask_without_running_the_model_again():
    doc, undo, render = Document(), QUndoStack(), Renders()
    undo.push(AddLayer(doc, Layer("a", "denoise")))
    full = render(doc)
    assert render.runs == 1
    undo.push(SetMask(doc, "a", left_mask()))
    out = render(doc)
    assert render.runs == 1  # masks change blending only
    y = fake_restore(BASE)
    assert np.array_equal(out[:, :8], y[:, :8]) and np.array_equal(out[:, 9:], BASE[:, 9:])
    mid = BASE[:, 8] + np.float32(32768 / 65535) * (y[:, 8] - BASE[:, 8])
    np.testing.assert_allclose(out[:, 8], mid, atol=1e-6)
    undo.push(SetStrength(doc, "a", 0.5))  # strength and mask multiply
    half = render(doc)
    np.testing.assert_allclose(half[:, :8], BASE[:, :8] + 0.5 * (y[:, :8] - BASE[:, :8]), atol=1e-6)
    assert np.array_equal(half[:, 9:], BASE[:, 9:])
    undo.undo()
    undo.undo()  # the mask change is one step
    assert doc.layer("a").mask is None
    assert np.array_equal(render(doc), full)
    undo.redo()
    assert np.array_equal(render(doc), out)
    assert render.runs == 1


def test_a_mask_applies_at_every_resolution():
    doc, render = Document(), Renders()
    doc.insert_layer(0, Layer("a", "denoise", mask=left_mask(120, 160)))
    out = render(doc)  # the 120 x 160 mask scaled to the 12 x 16 level
    y = fake_restore(BASE)
    assert np.abs(out[:, :7] - y[:, :7]).max() < 1e-6
    assert np.abs(out[:, 10:] - BASE[:, 10:]).max() < 1e-6


def test_layer_masks_are_uint16_and_read_only():
    layer = Layer("a", "x", mask=np.full((4, 5), 0.25, np.float32))
    assert layer.mask.dtype == np.uint16 and layer.mask[0, 0] == 16384
    assert not layer.mask.flags.writeable and layer.mask_key
    assert "mask" not in layer.to_dict()
    assert Layer("b", "x").mask_key == ""


def test_project_keeps_masks_losslessly_and_renders_the_same(tmp_path):
    mask = RNG.random((12, 16), dtype=np.float32)
    layers = [Layer("a", "denoise", mask=mask), Layer("b", "sharpen", strength=0.7)]
    path = save_project(ProjectData(b"photo", "p.png", layers), tmp_path / "m.instructir")
    with zipfile.ZipFile(path) as zf:
        assert "masks/layer-1.png" in zf.namelist()
    loaded = load_project(path)
    assert np.array_equal(loaded.layers[0].mask, layers[0].mask)
    assert loaded.layers[1].mask is None
    a, b = Document(), Document()
    a.reset(None, layers)
    b.reset(None, loaded.layers)
    assert np.array_equal(Renders()(a), Renders()(b))


def test_damaged_mask_in_a_project_is_a_clear_error(tmp_path):
    import pytest

    from instructir_desktop.app.project import ProjectError

    layers = [Layer("a", "denoise", mask=left_mask())]
    path = save_project(ProjectData(b"photo", "p.png", layers), tmp_path / "m.instructir")
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries["masks/layer-1.png"] = b"garbage"
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in entries.items():
            zf.writestr(n, data)
    with pytest.raises(ProjectError, match="damaged"):
        load_project(path)


def test_recipe_png_of_an_app_mask_is_exact():
    layer = Layer("a", "x", mask=RNG.random((6, 7), dtype=np.float32))
    from instructir_desktop.core.recipe import Recipe, RecipeStep

    recipe = Recipe([], "", "r", mask_data={"m.png": mask_png(layer.mask)})
    plane, _ = load_mask(recipe, RecipeStep("x", 1.0, True, "m.png"), (7, 6))
    assert np.array_equal(np.rint(plane[..., 0] * 65535).astype(np.uint16), layer.mask)


def test_a_stroke_keeps_only_its_box_in_the_history():
    doc, undo = Document(), QUndoStack()
    doc.insert_layer(0, Layer("a", "denoise", mask=np.zeros((400, 600), np.float32)))
    first, first_key = doc.layer("a").mask, doc.layer("a").mask_key
    stroke = first.astype(np.float32) / 65535
    stroke[10:20, 30:50] = 1.0
    command = SetMask(doc, "a", stroke)
    undo.push(command)
    assert command.new.shape == (10, 20) and command.old.shape == (10, 20)
    painted, painted_key = doc.layer("a").mask, doc.layer("a").mask_key
    assert painted[15, 40] == 65535 and painted[100, 100] == 0
    undo.undo()
    assert np.array_equal(doc.layer("a").mask, first)
    assert doc.layer("a").mask_key == first_key  # the cached composite is found again
    undo.redo()
    assert np.array_equal(doc.layer("a").mask, painted)
    assert doc.layer("a").mask_key == painted_key != first_key
