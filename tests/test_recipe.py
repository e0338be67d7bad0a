"""Recipes (core.recipe), the pipelined batch (core.batch) and the CLI's --recipe and
`recipe show`, on the tiny pack."""

from __future__ import annotations

import json
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from instructir_desktop.cli import main
from instructir_desktop.core.batch import run_batch
from instructir_desktop.core.errors import UnsupportedImageError
from instructir_desktop.core.images import load_image
from instructir_desktop.core.jobs import JobKind, JobQueue, LoadRequest, ModelHost
from instructir_desktop.core.recipe import (
    Recipe,
    RecipeError,
    RecipeMaskError,
    RecipeStep,
    apply_recipe,
    load_recipe,
    parse_recipe,
    save_recipe,
)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def queue(tiny_pack):
    q = JobQueue(ModelHost(device="cpu", backend="torch"))
    q.run(JobKind.LOAD, LoadRequest(tiny_pack, None, "cpu", "torch"))
    return q


def run_job(queue):
    return lambda request, listener: queue.run(JobKind.RESTORE, request, listener=listener)


def write_recipe(path, steps, **extra):
    doc = {"format": "instructir-recipe", "version": 1, "pack": "tiny-test", "steps": steps}
    doc.update(extra)
    path.write_text(json.dumps(doc))
    return path


def step(instruction="remove the noise", strength=1.0, enabled=True, mask=None):
    return {"instruction": instruction, "strength": strength, "enabled": enabled, "mask": mask}


def test_save_then_load_keeps_every_field_and_writes_masks_beside(tmp_path):
    mask = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
    recipe = Recipe(
        [
            RecipeStep("too dark", 0.5),
            RecipeStep("remove the noise", 1.0, enabled=False),
            RecipeStep("too bright", 0.8, adjust=-1.25),
            RecipeStep("sharpen it", 0.7),
        ],
        pack="tiny-test",
    )
    saved = save_recipe(recipe, tmp_path / "concert fix", masks={3: mask})
    assert saved.name == "concert fix.json"
    doc = json.loads(saved.read_text())
    assert doc["format"] == "instructir-recipe" and doc["version"] == 1
    assert doc["steps"][3]["mask"] == "concert fix-mask-4.png"
    assert doc["steps"][0] == {
        "instruction": "too dark",
        "strength": 0.5,
        "enabled": True,
        "mask": None,
    }
    back = load_recipe(saved)
    assert back.name == "concert fix" and back.pack == "tiny-test"
    assert [s.instruction for s in back.steps] == [s.instruction for s in recipe.steps]
    assert back.steps[1].enabled is False and back.steps[2].adjust == -1.25
    assert len(back.active_steps) == 3
    png = Image.open(tmp_path / "concert fix-mask-4.png")
    assert png.size == (30, 20)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"format": "something-else", "version": 1, "steps": []}, "not an InstructIR recipe"),
        ({"format": "instructir-recipe", "version": 2, "steps": []}, "newer InstructIR"),
        ({"format": "instructir-recipe", "version": "1", "steps": []}, "version"),
        ({"format": "instructir-recipe", "version": 1, "steps": {}}, "step list"),
        ({"format": "instructir-recipe", "version": 1, "steps": [step("")]}, "no instruction"),
        ({"format": "instructir-recipe", "version": 1, "steps": [step(strength="1")]}, "number"),
        ({"format": "instructir-recipe", "version": 1, "steps": [step(strength=1.5)]}, "0..1"),
        ({"format": "instructir-recipe", "version": 1, "steps": [step(enabled=1)]}, "enabled"),
        ({"format": "instructir-recipe", "version": 1, "steps": [step(mask=3)]}, "mask"),
        ({"format": "instructir-recipe", "version": 1, "pack": 7, "steps": []}, "pack"),
    ],
)
def test_bad_recipes_are_typed_errors(doc, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(doc, name="r")


def test_a_recipe_written_by_hand_needs_only_its_steps():
    recipe = parse_recipe({"steps": [step("remove the noise", 0.7)]}, name="mine")
    assert [(s.instruction, s.strength) for s in recipe.steps] == [("remove the noise", 0.7)]
    # Without steps it is something else: the error shows what a recipe looks like.
    with pytest.raises(RecipeError, match=r'not an InstructIR recipe\. .*\{"steps": \['):
        parse_recipe({"layers": [step("remove the noise")]}, name="mine")
    with pytest.raises(RecipeError, match="newer InstructIR"):
        parse_recipe({"version": 9, "steps": []}, name="mine")


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_bytes(b"\x00\xff not json")
    with pytest.raises(RecipeError, match="not JSON"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.json")


@pytest.mark.parametrize("mask", ["../secret.png", "/etc/passwd", "sub/../../x.png"])
def test_mask_outside_the_folder_is_refused(tmp_path, mask):
    path = write_recipe(tmp_path / "r.json", [step(mask=mask)])
    with pytest.raises(RecipeMaskError, match="outside"):
        load_recipe(path)


def test_mask_link_leading_out_is_refused(tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("L", (4, 4), 255).save(outside)
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "m.png").symlink_to(outside)
    path = write_recipe(folder / "r.json", [step(mask="m.png")])
    with pytest.raises(RecipeMaskError, match="outside"):
        load_recipe(path)


def test_missing_mask_is_reported_on_load(tmp_path):
    path = write_recipe(tmp_path / "r.json", [step(mask="gone.png")])
    with pytest.raises(RecipeMaskError, match="gone.png"):
        load_recipe(path)


def test_project_layers_read_as_a_recipe(tmp_path):
    project = tmp_path / "shoot.instructir"
    manifest = {
        "format": "instructir-project",
        "version": 1,
        "pack": "tiny-test",
        "source": {"name": "a.png", "file": "source/a.png", "size": 3},
        "layers": [
            {"id": "a1", "instruction": "too dark", "strength": 0.6, "visible": True},
            {"id": "b2", "instruction": "remove the noise", "strength": 1.0, "visible": False},
            {"id": "c3", "instruction": "too bright", "strength": 1.0, "adjust": -0.5},
        ],
    }
    with zipfile.ZipFile(project, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("source/a.png", b"abc")
    recipe = load_recipe(project)
    assert recipe.pack == "tiny-test" and recipe.name == "shoot"
    assert [(s.instruction, s.strength, s.enabled, s.adjust) for s in recipe.steps] == [
        ("too dark", 0.6, True, None),
        ("remove the noise", 1.0, False, None),
        ("too bright", 1.0, True, -0.5),
    ]
    project.write_bytes(b"not a zip")
    with pytest.raises(RecipeError, match="damaged"):
        load_recipe(project)


def reference(restorer, image, steps):
    """The layer formula written out: restore each active layer, blend by strength."""
    x = image
    for s in steps:
        if not s.active:
            continue
        y = restorer.restore(x, s.instruction)
        x = x + np.float32(s.strength) * (y - x)
    return x


def test_apply_matches_the_layer_formula_and_skips_hidden_steps(queue, tiny_pack):
    rng = np.random.default_rng(3)
    image = rng.random((24, 40, 3), dtype=np.float32)
    recipe = Recipe(
        [
            RecipeStep("too dark", 0.5),
            RecipeStep("remove the noise", 1.0, enabled=False),
            RecipeStep("sharpen it", 0.75),
        ]
    )
    fractions = []
    got = apply_recipe(image, recipe, run_job(queue), progress=lambda f, _ev: fractions.append(f))
    want = reference(queue.host.restorer, image, recipe.steps)
    np.testing.assert_array_equal(got, want)
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_mask_blends_through_white_only_and_warns_on_another_shape(queue, tmp_path):
    rng = np.random.default_rng(4)
    image = rng.random((24, 40, 3), dtype=np.float32)
    mask = np.zeros((12, 12), np.uint8)
    mask[:, 6:] = 255  # right half applies
    Image.fromarray(mask, "L").save(tmp_path / "m.png")
    path = write_recipe(tmp_path / "r.json", [step("remove the noise", 0.5, mask="m.png")])
    recipe = load_recipe(path)
    warnings = []
    got = apply_recipe(image, recipe, run_job(queue), warn=warnings.append)
    y = queue.host.restorer.restore(image, "remove the noise")
    assert warnings and "another shape" in warnings[0]
    np.testing.assert_array_equal(got[:, :15], image[:, :15])  # black: the original
    np.testing.assert_allclose(got[:, 25:], image[:, 25:] + 0.5 * (y - image)[:, 25:], atol=1e-6)


def test_batch_overlaps_decode_and_encode_with_the_model(tmp_path):
    """While the model works on one photo, the next is decoded and the previous encoded."""
    rng = np.random.default_rng(5)
    plans = []
    for i in range(4):
        src = tmp_path / f"{i}.png"
        Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(src)
        plans.append((src, tmp_path / f"out{i}.png"))
    log: list[tuple[str, int, float, float]] = []
    lock = threading.Lock()

    def timed(kind, i, fn):
        t0 = time.perf_counter()
        value = fn()
        with lock:
            log.append((kind, i, t0, time.perf_counter()))
        return value

    def load(path):
        return timed("read", int(path.stem), lambda: (time.sleep(0.15), load_image(path))[1])

    def process(i, _src, photo):
        return timed("model", i, lambda: (time.sleep(0.15), 1 - photo.pixels)[1])

    def save(photo, pixels, dst):
        i = int(dst.stem[3:])
        return timed("write", i, lambda: (time.sleep(0.15), dst.touch(), dst)[2])

    order = []
    results = run_batch(plans, process, save, lambda r: order.append(r.index), load=load)
    assert order == [0, 1, 2, 3] and all(r.ok for r in results)

    def span(kind, i):
        return next((a, b) for k, j, a, b in log if k == kind and j == i)

    model1 = span("model", 1)
    for other in (span("read", 2), span("write", 0)):
        assert other[0] < model1[1] and other[1] > model1[0]  # the intervals overlap


def test_batch_failed_photo_never_stops_the_rest_and_memory_gate_serialises(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    plans = [(good, tmp_path / "o1.png"), (bad, tmp_path / "o2.png"), (good, tmp_path / "o3.png")]
    in_flight, peak = [0], [0]

    def load(path):
        photo = load_image(path)
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        return photo

    def save(photo, pixels, dst):
        in_flight[0] -= 1
        dst.touch()
        return dst

    results = run_batch(plans, lambda i, s, p: p.pixels, save, load=load, budget=1)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_type == UnsupportedImageError.__name__
    assert peak[0] == 1  # a budget for one photo: never two decoded at once


# The command line


def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_recipe_equals_the_same_steps_and_show_prints_them(
    capsys, installed, photos, tmp_path, monkeypatch
):
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "0")
    recipe = write_recipe(
        tmp_path / "fix.json",
        [
            step("too dark", 0.5),
            step("remove the noise", 1.0, enabled=False),
            step("sharpen it", 0.5),
        ],
    )
    code, out, err = cli(capsys, "recipe", "show", str(recipe))
    assert code == 0, err
    assert "1. too dark" in out and "hidden, not applied" in out and "strength 50%" in out
    events, _ = restore_recipe_events(capsys, photos, recipe, tmp_path / "r")
    results = [e for e in events if e["event"] == "result"]
    assert [r["ok"] for r in results] == [True, True] and results[0]["pack"] == "tiny-test"
    assert any(e["event"] == "progress" for e in events)
    code, _, err = cli(
        capsys, "restore", str(photos), "-i", "too dark", "-i", "sharpen it", "--strength",
        "0.5", "--no-split", "--model", installed, "-o", str(tmp_path / "i"), "--device", "cpu",
        "--backend", "torch",
    )  # fmt: skip
    assert code == 0, err
    for name in ("a.png", "b.png"):
        by_recipe = np.asarray(Image.open(tmp_path / "r" / name))
        by_steps = np.asarray(Image.open(tmp_path / "i" / name))
        np.testing.assert_array_equal(by_recipe, by_steps)


def restore_recipe_events(capsys, photos, recipe, out_dir) -> tuple[list[dict], str]:
    """`instructir restore PHOTOS --recipe RECIPE --json` on the CPU: its events and stderr
    (exit 0)."""
    code, out, err = cli(
        capsys, "restore", str(photos), "--recipe", str(recipe), "-o", str(out_dir),
        "--device", "cpu", "--backend", "torch", "--json",
    )  # fmt: skip
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def test_cli_recipe_says_which_steps_the_command_line_would_hold(
    capsys, installed, photos, tmp_path
):
    """A recipe's steps are applied as written (the app saves steps the user applied anyway),
    and one that `restore -i` would hold is named in a warning first."""
    recipe = tmp_path / "hand.json"
    recipe.write_text(
        json.dumps({"steps": [step("blur the background"), step("remove the noise")]})
    )
    events, err = restore_recipe_events(capsys, photos, recipe, tmp_path / "r")
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("step 1 “blur the background”")
    assert "cannot add blur" in warnings[0] and "step 1 “blur the background”" in err
    assert [e["ok"] for e in events if e["event"] == "result"] == [True, True]


def test_cli_recipe_and_instruction_together_is_a_usage_error(capsys, installed, photos, tmp_path):
    recipe = write_recipe(tmp_path / "fix.json", [step()])
    code, out, err = cli(
        capsys, "restore", str(photos), "-i", "x", "--recipe", str(recipe), "-o", "o"
    )
    assert code == 2 and "not both" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "restore", str(photos), "-o", "o")
    assert code == 2 and "--recipe" in err


def test_cli_bad_recipe_is_one_line_exit_2(capsys, installed, photos, tmp_path):
    path = write_recipe(tmp_path / "r.json", [step(mask="../x.png")])
    code, _, err = cli(capsys, "restore", str(photos), "--recipe", str(path), "-o", "o")
    assert code == 2 and "outside" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "recipe", "show", str(tmp_path / "missing.json"))
    assert code == 2 and "not found" in err


def test_cli_corrupt_photo_among_good_ones(capsys, installed, photos, tmp_path):
    (photos / "c.png").write_bytes(b"broken")
    recipe = write_recipe(tmp_path / "fix.json", [step("remove the noise", 0.8)])
    code, out, err = cli(
        capsys, "restore", str(photos), "--recipe", str(recipe), "-o", str(tmp_path / "r"),
        "--device", "cpu", "--json",
    )  # fmt: skip
    assert code == 1  # the others were restored: a partial failure
    results = {
        json.loads(line)["input"].rsplit("/", 1)[1]: json.loads(line)["ok"]
        for line in out.splitlines()
        if json.loads(line)["event"] == "result"
    }
    assert results == {"a.png": True, "b.png": True, "c.png": False}
    assert (tmp_path / "r" / "a.png").is_file() and not (tmp_path / "r" / "c.png").exists()


@pytest.mark.parametrize(
    "option", [["--strength", "0.5"], ["--no-split"], ["--min-confidence", "0"]]
)
def test_cli_options_for_instructions_are_refused_with_a_recipe(
    capsys, installed, photos, tmp_path, option
):
    recipe = write_recipe(tmp_path / "fix.json", [step()])
    out_dir = tmp_path / "r"
    code, _, err = cli(
        capsys, "restore", str(photos), "--recipe", str(recipe), "-o", str(out_dir), *option
    )
    assert code == 2 and f"{option[0]} applies to -i" in err
    assert len(err.strip().splitlines()) == 1 and not out_dir.exists()


def test_cli_recipe_outputs_keep_exif_icc_and_16_bits(capsys, installed, tmp_path):
    from PIL import ImageCms

    from instructir_desktop.core.png16 import encode_png16, read_png16

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[271] = "Recipe Camera"
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    pixels = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(
        folder / "shot.jpg", quality=95, exif=exif.tobytes(), icc_profile=icc
    )
    deep = rng.integers(0, 65536, (40, 56, 3), dtype=np.uint16)
    (folder / "deep.png").write_bytes(encode_png16(deep, icc, exif.tobytes()))
    recipe = write_recipe(tmp_path / "fix.json", [step("remove the noise", 0.7)])
    code, _, err = cli(
        capsys, "restore", str(folder), "--recipe", str(recipe), "-o", str(tmp_path / "r"),
        "--device", "cpu", "--backend", "torch",
    )  # fmt: skip
    assert code == 0, err
    with Image.open(tmp_path / "r" / "shot.jpg") as saved:
        assert saved.format == "JPEG" and saved.info.get("icc_profile") == icc
        assert saved.getexif()[271] == "Recipe Camera"
    with open(tmp_path / "r" / "deep.png", "rb") as fp:
        samples, kept_icc, kept_exif = read_png16(fp)
    assert samples.dtype == np.uint16 and samples.shape == deep.shape
    assert len(np.unique(samples & 0xFF)) > 64  # the low byte carries information
    assert kept_icc == icc and kept_exif is not None
    kept = Image.Exif()
    kept.load(kept_exif)
    assert kept[271] == "Recipe Camera"
