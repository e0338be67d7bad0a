"""The `instructir` command line, run in-process on a tiny pack installed in a temp data dir."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from instructir_desktop.cli import main
from instructir_desktop.core.paths import data_dir


@pytest.fixture(autouse=True)
def apply_any_instruction(monkeypatch):
    """The tiny pack's head is random (about 1/7 sure of anything): restore never refuses an
    instruction here, except in the tests of that refusal, which ask for it."""
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "0")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(folder / name)
    return folder


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_restore_one_file(capsys, installed, photos, tmp_path):
    out_file = tmp_path / "out.png"
    code, out, err = run(
        capsys,
        "restore",
        str(photos / "a.png"),
        "-i",
        "too dark",
        "-i",
        "remove the noise",
        "-o",
        str(out_file),
        "--model",
        installed,
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert Image.open(out_file).size == (56, 40)


def test_restore_folder_with_json_events(capsys, installed, photos, tmp_path):
    out_dir = tmp_path / "results"
    code, out, err = run(
        capsys,
        "restore",
        str(photos),
        "-i",
        "denoise",
        "-o",
        str(out_dir),
        "--model",
        installed,
        "--json",
        "--strength",
        "0.5",
    )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    results = [e for e in events if e["event"] == "result"]
    assert {r["ok"] for r in results} == {True}
    assert any(e["event"] == "progress" for e in events)
    assert (out_dir / "a.png").is_file() and (out_dir / "b.jpg").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["restore", "missing.png", "-i", "x", "-o", "o.png"], "not found"),
        (["restore", "{a}", "-i", "   ", "-o", "o.png"], "empty"),
        (["restore", "{a}", "-i", "x", "-o", "o.png", "--model", "nope"], "nope"),
        (["restore", "{a}", "-i", "x", "-o", "/no/such/folder/o.png"], "does not exist"),
        (["restore", "{a}", "-i", "x", "-o", "o.xyz"], "xyz"),
    ],
)
def test_bad_input_is_a_one_line_error(capsys, installed, photos, args, message):
    args = [a.replace("{a}", str(photos / "a.png")) for a in args]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err.lower() and len(err.strip().splitlines()) == 1


def test_corrupt_image_fails_without_touching_the_output(capsys, installed, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, out, err = run(
        capsys,
        "restore",
        str(bad),
        "-i",
        "denoise",
        "-o",
        str(tmp_path / "o.png"),
        "--model",
        installed,
    )
    assert code == 2 and "damaged" in err  # bad input, as the README says
    assert not (tmp_path / "o.png").exists()


def test_never_overwrites_the_input(capsys, installed, photos):
    src = photos / "a.png"
    before = src.read_bytes()
    code, out, err = run(
        capsys, "restore", str(src), "-i", "denoise", "-o", str(src), "--model", installed
    )
    assert code != 0 and "original" in err
    assert src.read_bytes() == before


def test_intent_json(capsys, installed):
    code, out, err = run(
        capsys, "intent", "too dark", "remove grain", "--model", installed, "--json"
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["too dark", "remove grain"]
    assert set(rows[0]) == {"text", "task", "confidence", "probabilities"}
    assert len(rows[0]["probabilities"]) == 7


def test_models_list_and_verify(capsys, installed):
    code, out, err = run(capsys, "models", "list", "--json")
    assert code == 0
    ids = {json.loads(line)["id"] for line in out.splitlines()}
    assert "instructir-7d" in ids
    code, out, err = run(capsys, "models", "verify", installed, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    (data_dir() / "packs" / installed / "image.safetensors").write_bytes(b"tampered")
    code, out, err = run(capsys, "models", "verify", installed, "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_backend_can_be_forced_and_a_bad_one_is_a_clear_error(
    capsys, installed, photos, tmp_path, monkeypatch
):
    out_file = tmp_path / "torch.png"
    args = ["restore", str(photos / "a.png"), "-i", "denoise", "--model", installed]
    code, out, err = run(capsys, *args, "-o", str(out_file), "--backend", "torch")
    assert code == 0, err
    assert out_file.is_file()
    monkeypatch.setenv("INSTRUCTIR_BACKEND", "warp-drive")
    code, out, err = run(capsys, *args, "-o", str(tmp_path / "x.png"))
    assert code == 2
    assert "unknown backend 'warp-drive'" in err.lower()
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_restore_refuses_an_unclear_instruction_unless_told(capsys, photos, tmp_path):
    out_file = tmp_path / "out.png"
    args = ["restore", str(photos / "a.png"), "-o", str(out_file), "--model", "instructir-lite"]
    # The bundled pack's head is about 20 % sure what this asks for.
    code, _, err = run(capsys, *args, "-i", "write me a poem", "--min-confidence", "0.5")
    assert code == 2
    assert "unclear instruction 'write me a poem'" in err and "--min-confidence 0" in err
    assert len(err.strip().splitlines()) == 1 and not out_file.exists()
    # The same threshold lets a real instruction through; 0 applies anything.
    code, _, err = run(capsys, *args, "-i", "this photo is far too dark", "--min-confidence", "0.5")
    assert code == 0, err
    out_file.unlink()
    code, _, err = run(capsys, *args, "-i", "write me a poem", "--min-confidence", "0")
    assert code == 0, err
    assert out_file.is_file()


def test_a_request_to_darken_becomes_an_exposure_adjustment(capsys, tmp_path):
    """None of the seven tasks darkens: the CLI answers with the app's exposure adjustment
    (no model), and never brightens a photo said to be too bright."""
    rng = np.random.default_rng(1)
    bright = np.clip(0.75 + 0.2 * rng.random((40, 56, 3)), 0, 1)
    Image.fromarray((bright * 255).astype(np.uint8)).save(tmp_path / "bright.png")
    out_file = tmp_path / "out.png"
    args = ["restore", str(tmp_path / "bright.png"), "-o", str(out_file), "--model",
            "instructir-lite", "--min-confidence", "0.5"]  # fmt: skip
    code, out, err = run(capsys, *args, "-i", "the sky is blown out")
    assert code == 0, err
    assert "exposure adjustment" in out
    before = np.asarray(Image.open(tmp_path / "bright.png"), np.float32).mean()
    after = np.asarray(Image.open(out_file), np.float32).mean()
    assert after < before - 20
    code, out, _ = run(capsys, "intent", "--model", "instructir-lite", "it is overexposed")
    assert code == 0 and "note: InstructIR cannot darken a photo" in out


def test_a_request_no_fix_does_is_refused_with_what_instructir_does(capsys, photos, tmp_path):
    """ "add some film grain" reads as denoising (about 100 %): refused in one line that says
    why, nothing written; --min-confidence 0 applies it as written."""
    out_file = tmp_path / "out.png"
    args = ["restore", str(photos / "a.png"), "-o", str(out_file), "--model", "instructir-lite"]
    code, _, err = run(capsys, *args, "-i", "add some film grain", "--min-confidence", "0.5")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot apply 'add some film grain': InstructIR takes noise and grain away" in err
    assert "--min-confidence 0" in err and not out_file.exists()
    code, out, _ = run(capsys, "intent", "--model", "instructir-lite", "crop it to a square")
    assert code == 0 and "note: InstructIR does not crop, rotate, flip or resize" in out
    code, _, err = run(capsys, *args, "-i", "add some film grain", "--min-confidence", "0")
    assert code == 0, err
    assert out_file.is_file()


def test_min_confidence_default_comes_from_the_environment(capsys, monkeypatch, photos, tmp_path):
    args = ["restore", str(photos / "a.png"), "-o", str(tmp_path / "o.png"), "-i", "too dark"]
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "lots")
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "$INSTRUCTIR_MIN_CONFIDENCE must be a number" in capsys.readouterr().err
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "1.5")
    code, _, err = run(capsys, *args)
    assert code == 2 and "--min-confidence must be between 0 and 1" in err


@pytest.mark.parametrize("text", [".", "?!", "🙂", "123"])
def test_instructions_without_words_are_refused(capsys, text):
    code, _, err = run(capsys, "intent", text)
    assert code == 2
    assert "has no words" in err


@pytest.mark.parametrize("spelling", ["results/", "results"])
def test_output_written_as_a_folder_is_created_for_one_photo(
    capsys, installed, photos, tmp_path, spelling
):
    code, out, err = run(
        capsys,
        "restore",
        str(photos / "a.png"),
        "-i",
        "denoise",
        "-o",
        str(tmp_path) + "/" + spelling,
        "--model",
        installed,
    )
    assert code == 0, err
    assert (tmp_path / "results" / "a.png").is_file()


def test_inputs_in_types_we_cannot_write_are_saved_as_png(capsys, installed, photos, tmp_path):
    Image.open(photos / "a.png").save(photos / "c.gif")
    code, out, err = run(
        capsys,
        "restore",
        str(photos / "c.gif"),
        str(photos / "a.png"),
        "-i",
        "denoise",
        "-o",
        str(tmp_path / "out"),
        "--model",
        installed,
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    assert "c.gif has" not in err  # one frame: no note
    first = Image.open(photos / "a.png")
    first.save(photos / "d.gif", save_all=True, append_images=[first.rotate(180)])
    code, out, err = run(
        capsys, "restore", str(photos / "d.gif"), "-i", "denoise", "-o", str(tmp_path / "d.png")
    )
    assert code == 0 and "d.gif has 2 frames or pages; only the first is restored" in err


def test_greyscale_photo_comes_back_greyscale(capsys, installed, photos, tmp_path):
    Image.open(photos / "b.jpg").convert("L").save(photos / "grey.jpg")
    code, out, err = run(
        capsys,
        "restore",
        str(photos / "grey.jpg"),
        "-i",
        "denoise",
        "-o",
        str(tmp_path / "g.jpg"),
        "--model",
        installed,
    )
    assert code == 0, err
    assert Image.open(tmp_path / "g.jpg").mode == "L"


@pytest.mark.precision("fp32")  # compares the CLI's backend with torch to within 1/255
def test_a_message_asking_for_several_fixes_becomes_steps(capsys, photos, tmp_path):
    """On the bundled pack: one -i that asks for two fixes runs both, in order;
    --no-split applies it as written."""
    from instructir_desktop.core.images import load_image
    from instructir_desktop.core.restorer import Restorer

    args = ["restore", str(photos / "a.png"), "-i", "it's too dark and grainy", "--json"]
    code, out, err = run(capsys, *args, "-o", str(tmp_path / "split.png"))
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    plan = [e for e in events if e["event"] == "plan"]
    assert [s["task"] for s in plan[0]["steps"]] == ["lowlight", "denoise"]
    steps = sorted({e["step"] for e in events if e["event"] == "progress"})
    assert steps == [0, 1]

    code, out, err = run(capsys, *args, "--no-split", "-o", str(tmp_path / "whole.png"))
    assert code == 0, err
    plan = [e for e in map(json.loads, out.splitlines()) if e["event"] == "plan"]
    assert [s["text"] for s in plan[0]["steps"]] == ["it's too dark and grainy"]

    from instructir_desktop.core.packs import LITE_ID
    from instructir_desktop.core.resources import resource_path

    lite = Restorer(resource_path("packs", LITE_ID), device="cpu", backend="torch")
    image = load_image(photos / "a.png").pixels
    want = lite.restore(lite.restore(image, "it's too dark"), "grainy")
    got = load_image(tmp_path / "split.png").pixels
    assert np.abs(got - want).max() <= 1 / 255
    whole = load_image(tmp_path / "whole.png").pixels
    assert np.abs(whole - want).max() > 10 / 255
    code, out, err = run(capsys, "intent", "it's too dark and grainy", "too dark")
    assert out.count("step:") == 2 and "step: lowlight" in out and "step: denoise" in out
    code, out, err = run(capsys, "intent", "--json", "brighten it, but do not sharpen")
    assert [s["task"] for s in json.loads(out)["steps"]] == ["lowlight"]


@pytest.mark.parametrize(
    "text, tasks",
    [
        ("too dark but don't denoise", ["lowlight"]),
        ("too dark, and don’t denoise", ["lowlight"]),  # a curly apostrophe
        ("dark but not noisy", ["lowlight"]),
        ("the noise is fine but it's too dark", ["lowlight"]),
        ("too dark but keep the grain", ["lowlight"]),
        ("too dark, and no denoising", ["lowlight"]),
        ("brighten it while keeping the grain", ["lowlight"]),
        ("remove the noise - it's too dark", ["denoise", "lowlight"]),
    ],
)
def test_what_not_to_do_is_never_applied(capsys, text, tasks):
    """On the bundled pack: the part that says what to leave alone is set aside, whether it
    follows a comma, "but", "while" or a dash (the model alone reads "don't denoise" as
    denoising)."""
    code, out, err = run(capsys, "intent", "--json", "--model", "instructir-lite", text)
    assert code == 0, err
    assert [s["task"] for s in json.loads(out)["steps"]] == tasks


def test_a_message_that_only_says_what_not_to_do_is_refused(capsys, photos, tmp_path):
    out_file = tmp_path / "out.png"
    for text in ("don't denoise", "it is not noisy", "do not sharpen it"):
        code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", text,
                           "-o", str(out_file), "--model", "instructir-lite",
                           "--min-confidence", "0.5")  # fmt: skip
        assert code == 2 and "says what to leave alone" in err, (text, err)
        assert not out_file.exists()
    # "it's grainy but I like it" has nothing to set aside: one request, as the model reads it
    code, out, _ = run(capsys, "intent", "--json", "--model", "instructir-lite",
                       "it's grainy but I like it")  # fmt: skip
    assert code == 0 and "steps" not in json.loads(out) and "note" not in json.loads(out)


def test_a_request_naming_no_fix_is_refused_and_points_to_auto(capsys, photos, tmp_path):
    out_file = tmp_path / "out.png"
    code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", "fix it pls",
                       "-o", str(out_file), "--model", "instructir-lite",
                       "--min-confidence", "0.5")  # fmt: skip
    assert code == 2 and "without saying what is wrong" in err and "-i auto" in err, err
    assert "--min-confidence" not in err and not out_file.exists()


@pytest.mark.parametrize("text", ["undo", "a bit less", "do it again", "that's too much"])
def test_a_command_about_an_earlier_edit_says_the_command_line_keeps_none(
    capsys, photos, tmp_path, text
):
    out_file = tmp_path / "out.png"
    code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", text,
                       "-o", str(out_file), "--model", "no-such-pack")  # fmt: skip
    assert code == 2 and f"'{text}' is about an earlier edit" in err, err
    assert "--strength 0.5" in err and "no-such-pack" not in err  # before any model
    assert not out_file.exists()


def test_every_instruction_gets_a_plan_event_and_a_line_saying_what_it_applies(
    capsys, installed, photos, tmp_path
):
    args = ["restore", str(photos / "a.png"), "-i", "too dark", "--model", installed]
    code, out, err = run(capsys, *args, "-o", str(tmp_path / "a.png"), "--json")
    assert code == 0, err
    plans = [e for e in map(json.loads, out.splitlines()) if e["event"] == "plan"]
    assert len(plans) == 1 and [s["text"] for s in plans[0]["steps"]] == ["too dark"]
    code, out, err = run(capsys, *args, "-o", str(tmp_path / "b.png"))
    task = plans[0]["steps"][0]["task"]
    assert code == 0 and out.startswith(f"'too dark': {task} (")


def test_intent_reads_every_text_even_after_a_bad_one(capsys):
    code, out, err = run(capsys, "intent", "--model", "instructir-lite", "too dark", "🙂",
                         "remove the noise")  # fmt: skip
    assert code == 2 and "has no words" in err
    assert [line.split()[0] for line in out.splitlines()] == ["lowlight", "denoise"]


def test_control_characters_in_an_instruction_are_not_passed_on(capsys):
    code, out, _ = run(capsys, "intent", "--json", "--model", "instructir-lite",
                       "too dark\x1b]0;title\x07\u200b")  # fmt: skip
    assert code == 0 and json.loads(out)["text"] == "too dark ]0;title"
    assert "\x1b" not in out and "\\u001b" not in out


def test_an_output_name_that_contradicts_format_is_refused(capsys, installed, photos, tmp_path):
    code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", "too dark",
                       "-o", str(tmp_path / "x.tif"), "--format", "png",
                       "--model", installed)  # fmt: skip
    assert code == 2 and "'x.tif' is a TIFF file name but --format asks for PNG" in err
    assert not (tmp_path / "x.tif").exists()


def test_a_jpeg_result_of_a_transparent_photo_says_the_transparency_is_dropped(
    capsys, installed, tmp_path
):
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba).save(tmp_path / "t.png")
    code, _, err = run(capsys, "restore", str(tmp_path / "t.png"), "-i", "too dark",
                       "-o", str(tmp_path / "t.jpg"), "--model", installed)  # fmt: skip
    assert code == 0 and "t.jpg: JPEG has no transparency" in err
    code, _, err = run(capsys, "restore", str(tmp_path / "t.png"), "-i", "too dark",
                       "-o", str(tmp_path / "t2.png"), "--model", installed)  # fmt: skip
    assert code == 0 and "transparency" not in err


def test_a_slow_model_load_says_what_is_happening(capsys, installed, photos, tmp_path, monkeypatch):
    import sys

    from instructir_desktop import cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a person at a terminal
    monkeypatch.setattr(cli, "SLOW_LOAD_NOTE_S", 0.0)  # every load counts as slow
    code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", "too dark",
                       "-o", str(tmp_path / "a.png"), "--model", installed)  # fmt: skip
    assert code == 0 and "preparing the model for this computer" in err
    monkeypatch.setattr(cli, "SLOW_LOAD_NOTE_S", 60.0)
    code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", "too dark",
                       "-o", str(tmp_path / "b.png"), "--model", installed)  # fmt: skip
    assert code == 0 and "preparing" not in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # a script: no notes
    monkeypatch.setattr(cli, "SLOW_LOAD_NOTE_S", 0.0)
    code, _, err = run(capsys, "restore", str(photos / "a.png"), "-i", "too dark",
                       "-o", str(tmp_path / "c.png"), "--model", installed)  # fmt: skip
    assert code == 0 and "preparing" not in err


def test_an_instruction_too_long_to_read_whole_is_refused_not_cut(capsys):
    story = "We went to the lake on a cloudy day with the whole family. " * 20
    code, _, err = run(capsys, "intent", "--model", "instructir-lite", story + "too dark")
    assert code == 2 and "characters long; say what is wrong" in err
    code, out, _ = run(capsys, "intent", "--model", "instructir-lite", story[:900] + "too dark")
    assert code == 0 and out


def test_a_request_for_a_little_of_a_fix_is_applied_at_half_strength(
    capsys, installed, photos, tmp_path
):
    """The model has no degree; 'a bit' is honoured by the strength, unless --strength says."""

    def restore(name, text, *strength):
        target = tmp_path / name
        code, out, err = run(
            capsys, "restore", str(photos / "a.png"), "-i", text, "-o", str(target),
            "--model", installed, "--device", "cpu", *strength,
        )  # fmt: skip
        assert code == 0, err
        return np.asarray(Image.open(target)).astype(int), out + err

    gentle, said = restore("gentle.png", "reduce the noise a bit")
    assert "at 50% strength, as 'reduce the noise a bit' asks for part of the fix" in said
    half, _ = restore("half.png", "reduce the noise", "--strength", "0.5")
    full, said_full = restore("full.png", "reduce the noise")
    asked_full, said_asked = restore("asked.png", "reduce the noise a bit", "--strength", "1")

    def same_fix(a, b):
        # The degree words stay in the instruction the network reads: its embedding moves a
        # little, and the output by a level or two here and there (bf16 rounding included).
        d = np.abs(a - b)
        return d.max() <= 3 and d.mean() < 1

    assert same_fix(gentle, half) and same_fix(asked_full, full)
    assert np.abs(gentle - full).mean() > 10  # half of the fix, not all of it
    assert "part of the fix" not in said_full + said_asked
