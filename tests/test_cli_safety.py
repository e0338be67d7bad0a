"""The command line never loses a file and answers bad arguments with one line, before any
model work: outputs never land on inputs, two inputs never share an output, arguments are
checked up front, and anything unexpected becomes one line plus a log."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from instructir_desktop import cli
from instructir_desktop.cli import main
from instructir_desktop.core.paths import cache_dir, data_dir


@pytest.fixture(autouse=True)
def apply_any_instruction(monkeypatch):
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "0")


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if the model is loaded: every check here comes before model work."""

    def refuse(args):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(cli, "_open_queue", refuse)


def save(path, seed=0, size=(40, 56)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path)
    return path.read_bytes()


def run(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("instructir: error: ")
    return lines[0]


def test_a_folder_restored_into_itself_never_overwrites_a_sibling(capsys, tmp_path, no_model):
    folder = tmp_path / "in4"
    originals = {p: save(folder / p, seed=i) for i, p in enumerate(("a.jpg", "a.png"))}
    code, _, err = run(capsys, "restore", folder, "-i", "remove the noise", "-o", folder,
                       "--format", "jpeg")  # fmt: skip
    assert code == 2 and "overwrite the original" in one_line(err)
    for name, data in originals.items():
        assert (folder / name).read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "a.png"]


def test_an_output_never_lands_on_another_input(capsys, tmp_path, no_model):
    top = save(tmp_path / "in3" / "photo.jpg", seed=1)
    save(tmp_path / "in3" / "sub" / "photo.jpg", seed=2)
    code, _, err = run(capsys, "restore", tmp_path / "in3" / "photo.jpg",
                       tmp_path / "in3" / "sub" / "photo.jpg", "-i", "denoise",
                       "-o", tmp_path / "in3")  # fmt: skip
    assert code == 2 and "in3/photo.jpg" in one_line(err)
    assert (tmp_path / "in3" / "photo.jpg").read_bytes() == top


def test_one_input_onto_itself_is_refused(capsys, tmp_path, no_model):
    data = save(tmp_path / "x.png")
    code, _, err = run(capsys, "restore", tmp_path / "x.png", "-i", "denoise", "-o",
                       tmp_path / "x.png")  # fmt: skip
    assert code == 2 and "never overwritten" in one_line(err)
    assert (tmp_path / "x.png").read_bytes() == data


@pytest.mark.parametrize(
    "names, fmt",
    [(("a/x.jpg", "b/x.jpg"), None), (("ok.jpg", "ok.png"), "png")],
)
def test_two_inputs_never_share_an_output(capsys, tmp_path, names, fmt, no_model):
    inputs = [tmp_path / "in2" / n for n in names]
    for i, p in enumerate(inputs):
        save(p, seed=i)
    extra = ["--format", fmt] if fmt else []
    out = tmp_path / "out"
    code, _, err = run(capsys, "restore", *inputs, "-i", "denoise", "-o", out, *extra)
    line = one_line(err)
    assert code == 2 and ("both be saved" in line or "overwrite the original" in line)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "args, words",
    [
        (["--quality", "500"], "--quality must be between 1 and 100"),
        (["--quality", "-5"], "--quality must be between 1 and 100"),
        (["--tile", "1"], "--tile must be between 64"),
        (["--tile", "100000"], "--tile must be between 64"),
        (["--strength", "2"], "--strength"),
    ],
)
def test_bad_numbers_are_one_line_before_any_work(capsys, tmp_path, args, words, no_model):
    save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "o.webp", *args)  # fmt: skip
    assert code == 2 and words in one_line(err)


def test_a_tile_beyond_the_memory_budget_is_refused(capsys, tmp_path, installed, monkeypatch):
    monkeypatch.setattr(
        "instructir_desktop.core.restorer.default_memory_budget", lambda d: 64 << 20
    )
    save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "o.png", "--model", installed, "--tile", "8000")  # fmt: skip
    assert code == 2 and "does not fit the memory budget" in one_line(err)
    assert not (tmp_path / "o.png").exists()


def test_an_output_folder_under_a_file_is_refused_before_work(capsys, tmp_path, no_model):
    save(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "afile").write_text("not a folder")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "out" / "afile" / "x.jpg")  # fmt: skip
    assert code == 2 and "afile' is a file, not a folder" in one_line(err)


def test_serve_with_an_impossible_port_is_one_line(capsys):
    code, _, err = run(capsys, "serve", "--port", "99999")
    assert code == 2 and "--port must be between 0 and 65535" in one_line(err)


def test_an_instruction_with_undecodable_bytes_is_one_line(capsys, tmp_path, no_model):
    save(tmp_path / "a.png")
    text = b"remove the noise \xff".decode("utf-8", "surrogateescape")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", text, "-o", tmp_path / "o.png")
    assert code == 2 and "not valid text" in one_line(err)


def test_an_unknown_model_is_not_offered_for_download(capsys, tmp_path):
    save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "o.png", "--model", "nosuch")  # fmt: skip
    line = one_line(err)
    assert code == 2 and "no model pack 'nosuch'" in line and "download nosuch" not in line


def test_a_corrupt_input_among_good_ones_exits_1_and_the_good_one_is_written(
    capsys, tmp_path, installed
):
    folder = tmp_path / "in"
    save(folder / "good.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "._good.png").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS leaves these
    (folder / "sub.png").mkdir()  # a folder with an image's name is not an input
    code, _, err = run(capsys, "restore", folder, "-i", "denoise", "-o", tmp_path / "out",
                       "--model", installed, "--device", "cpu")  # fmt: skip
    assert code == 1 and "bad.jpg" in err  # a partial failure: one photo was restored
    assert "._good" not in err and "sub.png" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]
    # Alone, the unreadable file is bad input: nothing was done.
    code, _, err = run(capsys, "restore", folder / "bad.jpg", "-i", "denoise",
                       "-o", tmp_path / "out2", "--model", installed)  # fmt: skip
    assert code == 2 and "bad.jpg" in err


def test_anything_unexpected_is_one_line_and_a_log(capsys, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("a very\nlong internal message " + "x" * 500)

    monkeypatch.setattr("instructir_desktop.core.outputs.plan_outputs", boom)
    save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "o.png")  # fmt: skip
    line = one_line(err)
    assert code == 1 and "RuntimeError" in line and len(line) < 400
    log = cache_dir() / "logs" / "instructir-cli.log"
    assert str(log) in line and "Traceback" in log.read_text() and "boom" in log.read_text()


def test_out_of_memory_is_one_line(capsys, tmp_path, monkeypatch):
    def oom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("instructir_desktop.core.outputs.plan_outputs", oom)
    save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "o.png")  # fmt: skip
    assert code == 1 and "not enough memory" in one_line(err)


def _damaged_pack(tiny_pack, change):
    import json

    target = data_dir() / "packs" / "tiny-test"
    shutil.copytree(tiny_pack, target)
    manifest = json.loads((target / "manifest.json").read_text())
    change(manifest)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return "tiny-test"


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m["network"].update(width=100000), "impossible network shape"),
        (lambda m: m["network"].update(enc_blks=[1, 1, 1, 1, 1, 1, 1, 1]), "levels"),
        (lambda m: m["network"].update(width=16), "do not match"),
        (lambda m: m["text_encoder"].update(kind="package", package="os"), "not one this app"),
        (lambda m: m.update(files="nonsense"), "damaged"),
    ],
)
def test_a_damaged_manifest_is_one_short_line(capsys, tmp_path, tiny_pack, change, words):
    pack = _damaged_pack(tiny_pack, change)
    save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-i", "denoise", "-o",
                       tmp_path / "o.png", "--model", pack, "--device", "cpu")  # fmt: skip
    line = one_line(err)
    assert code == 2 and words in line and len(line) < 600
    assert not (tmp_path / "o.png").exists()


def test_a_photo_beyond_the_memory_budget_is_refused_before_the_model(
    capsys, tmp_path, monkeypatch, no_model
):
    monkeypatch.setenv("INSTRUCTIR_MEMORY_BUDGET_MB", "64")
    Image.new("RGB", (3000, 2000)).save(tmp_path / "big.png")  # 6 MP: ~330 MB to restore
    code, _, err = run(capsys, "restore", tmp_path / "big.png", "-i", "denoise", "-o",
                       tmp_path / "o.png")  # fmt: skip
    assert code == 2 and "big.png" in one_line(err)


def test_a_reader_that_goes_away_is_not_an_error():
    """`instructir intent … | head -1`: the rest of the output is dropped, quietly, exit 0."""
    import subprocess
    import sys

    texts = ["too dark", "remove the noise"] * 150
    proc = subprocess.Popen(
        [sys.executable, "-m", "instructir_desktop.cli", "intent", "--model", "instructir-lite",
         *texts],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout.readline().startswith(b"lowlight")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0 and err == b"", err[-2000:]


def test_a_photo_named_twice_is_restored_once_and_a_black_mask_is_warned_about(
    capsys, tmp_path, installed
):
    save(tmp_path / "in" / "p.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "black.png")
    twice = [tmp_path / "in" / "p.png", tmp_path / "in" / ".." / "in" / "p.png", tmp_path / "in"]
    code, out, err = run(capsys, "restore", *twice, "-i", "denoise", "-o", tmp_path / "out",
                         "--mask", tmp_path / "black.png", "--model", installed)  # fmt: skip
    assert code == 0, err
    assert out.count("-> ") == 1 and "black everywhere" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["p.png"]
