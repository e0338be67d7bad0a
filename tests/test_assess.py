"""The photo assessor: estimators on synthetic degradations, the classifier on the sample
photo, ``instructir assess`` and ``restore -i auto`` (CLI contract, bad files), POST /assess."""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from instructir_desktop.bridge.server import BridgeServer
from instructir_desktop.cli import main
from instructir_desktop.core.assess import (
    APPLY_ORDER,
    SUGGEST_AT,
    Assessor,
    assess,
    default_weights_path,
)
from instructir_desktop.core.assess_features import FEATURE_NAMES, measure
from instructir_desktop.core.errors import ModelCorruptError
from instructir_desktop.core.packs import TASK_PROMPTS, TASKS
from instructir_desktop.core.paths import data_dir
from instructir_desktop.core.resources import resource_path
from instructir_desktop.training import degrade


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The bundled sample photo at a third of its size (400 x 267), float32 in [0, 1]."""
    with Image.open(resource_path("sample", "sample.jpg")) as im:
        im = im.convert("RGB").reduce(3)
        return np.asarray(im, np.float32) / 255


def as_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy()).permute(2, 0, 1)


def as_array(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy().astype(np.float32)


def noisy(a: np.ndarray, sigma: float = 25.0, seed: int = 0) -> np.ndarray:
    return as_array(degrade.add_gaussian_noise(as_tensor(a), sigma, seed))


def dark(a: np.ndarray) -> np.ndarray:
    return np.clip(a**1.6 * 0.12, 0, 1).astype(np.float32)


def save(a: np.ndarray, path) -> str:
    Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return str(path)


# ------------------------------------------------------------------ the estimators


def test_noise_sigma_is_read_in_255_units(photo):
    clean = measure(photo)["sigma"]
    at_25 = measure(noisy(photo, 25))["sigma"]
    at_10 = measure(noisy(photo, 10))["sigma"]
    assert clean < 4
    assert 20 < at_25 < 30 and 7 < at_10 < 13


def test_exposure_and_haze_on_the_thumbnail(photo):
    m, d = measure(photo), measure(dark(photo))
    assert m["frac_below_10"] < 0.3 < 0.9 < d["frac_below_10"]
    assert d["l_p99"] < 0.2 < m["l_p99"]
    rng = np.random.default_rng(0)
    hazy = measure(as_array(degrade.add_haze(as_tensor(photo), rng, beta=2.0)))
    assert hazy["dc_p10"] > m["dc_p10"] + 0.2 and hazy["sat_mean"] < m["sat_mean"]


def test_blur_resolution_and_rain_at_full_resolution(photo):
    rng = np.random.default_rng(1)
    m = measure(photo)
    blurred = measure(as_array(degrade.motion_blur(as_tensor(photo), rng, length=13)))
    small = measure(as_array(degrade.downscale(as_tensor(photo), rng, factor=2.0)))
    rainy = measure(as_array(degrade.add_rain(as_tensor(photo), rng)))
    assert blurred["wav_r12_max"] < m["wav_r12_max"] - 0.5
    assert small["spec_s6"] < m["spec_s6"] - 0.5
    assert rainy["streak_vertical"] > m["streak_vertical"] + 0.1


def test_any_size_and_a_fixed_feature_vector():
    rng = np.random.default_rng(0)
    for shape in ((9, 13, 3), (130, 70, 3), (300, 520, 3)):
        m = measure(rng.random(shape, dtype=np.float32))
        assert m.vector.shape == (len(FEATURE_NAMES),) and np.isfinite(m.vector).all()
    with pytest.raises(ValueError):
        measure(np.zeros((10, 10), np.float32))


def test_twelve_megapixels_within_budget():
    rng = np.random.default_rng(0)
    image = rng.random((3000, 4000, 3), dtype=np.float32)
    assess(image)
    cpu = []
    for _ in range(2):
        t0 = time.process_time()
        assess(image)
        cpu.append(time.process_time() - t0)
    assert min(cpu) < 0.3


# ------------------------------------------------------------------ the classifier


def test_clean_photo_is_not_flagged(photo):
    result = assess(photo)
    assert result.suggested == ()
    assert result.summary() == "Nothing obvious to fix."
    assert [f.task for f in result.findings] == sorted(
        TASKS, key=lambda t: -result.finding(t).score
    )


@pytest.mark.parametrize("task", ["denoise", "lowlight", "dehaze", "superres", "deblur"])
def test_a_clear_degradation_is_the_top_finding(photo, task):
    rng = np.random.default_rng(3)
    img = as_tensor(photo)
    bad = {
        "denoise": lambda: as_tensor(noisy(photo)),
        "lowlight": lambda: as_tensor(dark(photo)),
        "dehaze": lambda: degrade.add_haze(img, rng, beta=2.0),
        "superres": lambda: degrade.downscale(img, rng, factor=3.0),
        "deblur": lambda: degrade.motion_blur(img, rng, length=13),
    }[task]()
    result = assess(as_array(bad))
    assert result.findings[0].task == task and task in result.suggested


def test_suggestions_come_in_the_order_to_apply_them(photo):
    result = assess(noisy(dark(photo), 20))
    assert {"lowlight", "denoise"} <= set(result.suggested)
    assert list(result.suggested) == [t for t in APPLY_ORDER if t in result.suggested]
    assert all(result.finding(t).score >= SUGGEST_AT for t in result.suggested)
    assert result.summary().startswith("This photo looks too dark (")
    assert "below 10 % brightness" in result.finding("lowlight").evidence


def test_evidence_quotes_the_noise_level(photo):
    evidence = assess(noisy(photo, 25)).finding("denoise").evidence
    sigma = int(evidence.split("σ")[1].split()[0].strip(","))
    assert evidence.startswith("noise about σ ") and 20 <= sigma <= 30


def test_compare_says_what_is_gone_and_what_is_left(photo):
    before = assess(noisy(dark(photo), 20))
    after = assess(noisy(photo, 20))
    text = after.compare(before)
    assert text.startswith("It is bright enough") and "still noisy" in text
    assert assess(photo).compare(assess(photo)) == "Nothing obvious to fix."


def test_weights_are_small_and_damaged_weights_are_a_clear_error(tmp_path):
    assert default_weights_path().stat().st_size < 5 << 20
    bad = tmp_path / "assessor.json"
    bad.write_text('{"format": "instructir-assessor", "features": ["x"]}')
    with pytest.raises(ModelCorruptError, match="assessor"):
        Assessor(bad)
    with pytest.raises(ModelCorruptError):
        Assessor(tmp_path / "missing.json")


# ------------------------------------------------------------------ the command line


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photos(tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    save(photo, folder / "clean.png")
    save(noisy(dark(photo), 20), folder / "night.png")
    return folder


def test_assess_json_one_object_per_photo(capsys, photos):
    code, out, err = run(
        capsys, "assess", str(photos / "clean.png"), str(photos / "night.png"), "--json"
    )
    assert code == 0 and not err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == [str(photos / "clean.png"), str(photos / "night.png")]
    for row in rows:
        assert set(row) == {"path", "suggested", "findings"}
        assert sorted(f["task"] for f in row["findings"]) == sorted(TASKS)
        scores = [f["score"] for f in row["findings"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert all(isinstance(f["evidence"], str) and f["evidence"] for f in row["findings"])
        high = {f["task"] for f in row["findings"] if f["score"] >= SUGGEST_AT}
        assert row["suggested"] == [t for t in APPLY_ORDER if t in high]
    assert rows[0]["suggested"] == [] and rows[1]["suggested"][:2] == ["lowlight", "denoise"]


def test_assess_readable_line_per_photo_and_folders(capsys, photos):
    code, out, _ = run(capsys, "assess", str(photos))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0] == f"{photos / 'clean.png'}: Nothing obvious to fix."
    assert lines[1].startswith(f"{photos / 'night.png'}: This photo looks too dark (")
    assert "Fix: lowlight, then denoise" in lines[1]


def test_assess_bad_files_are_one_line_errors(capsys, photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, out, err = run(capsys, "assess", str(broken), str(photos / "clean.png"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "broken.jpg" in err
    assert out.startswith(str(photos / "clean.png"))  # the good photo is still assessed
    code, out, err = run(capsys, "assess", str(broken))  # alone: bad input, nothing done
    assert code == 2 and out == ""
    code, out, err = run(capsys, "assess", str(tmp_path / "nope.png"))
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def installed(tiny_pack, monkeypatch):
    monkeypatch.setenv("INSTRUCTIR_MIN_CONFIDENCE", "0")
    target = data_dir() / "packs" / "tiny-test"
    shutil.copytree(tiny_pack, target)
    return "tiny-test"


def test_restore_auto_applies_the_suggested_fixes_in_order(capsys, installed, photos, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys, "restore", str(photos / "night.png"), str(photos / "clean.png"),
        "-i", "auto", "-o", str(out_dir), "--model", installed, "--json",
    )  # fmt: skip
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    plans = {e["input"]: e for e in events if e["event"] == "plan"}
    night = plans[str(photos / "night.png")]
    assert night["instruction"] == "auto"
    assert [s["task"] for s in night["steps"]][:2] == ["lowlight", "denoise"]
    assert all(s["text"] == TASK_PROMPTS[s["task"]] for s in night["steps"])
    assert plans[str(photos / "clean.png")]["steps"] == []
    results = {e["input"]: e for e in events if e["event"] == "result"}
    assert set(results) == {str(photos / "night.png"), str(photos / "clean.png")}
    assert results[str(photos / "clean.png")]["skipped"]  # one result per input, always
    assert "skipped" not in results[str(photos / "night.png")]
    assert (out_dir / "night.png").exists() and not (out_dir / "clean.png").exists()


def test_restore_auto_says_what_it_applies(capsys, installed, photos, tmp_path):
    code, out, _ = run(
        capsys, "restore", str(photos / "night.png"), "-i", "auto",
        "-o", str(tmp_path / "o.png"), "--model", installed,
    )  # fmt: skip
    assert code == 0
    assert "the photo suggests" in out and "applied in this order: lowlight (" in out
    code, out, _ = run(
        capsys, "restore", str(photos / "clean.png"), "-i", "auto",
        "-o", str(tmp_path / "c.png"), "--model", installed,
    )  # fmt: skip
    assert code == 0 and "nothing obvious to fix; no file written" in out
    assert not (tmp_path / "c.png").exists()


def test_restore_auto_stands_alone(capsys, installed, photos, tmp_path):
    code, _, err = run(
        capsys, "restore", str(photos / "night.png"), "-i", "auto", "-i", "denoise",
        "-o", str(tmp_path / "o.png"), "--model", installed,
    )  # fmt: skip
    assert code == 2 and "-i auto" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ the bridge


def post(server, path, body, token=True):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-InstructIR-Token"] = server.token
    req = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def bridge(tiny_restorer):
    server = BridgeServer(lambda pack: tiny_restorer)
    server.start()
    yield server
    server.stop()


def test_bridge_assess_answers_with_steps_in_order(bridge, photos):
    image = base64.b64encode((photos / "night.png").read_bytes()).decode()
    status, answer = post(bridge, "/assess", {"image": image})
    assert status == 200
    assert [s["task"] for s in answer["steps"]] == answer["suggested"]
    assert answer["suggested"][:2] == ["lowlight", "denoise"]
    assert answer["steps"][0]["instruction"] == TASK_PROMPTS["lowlight"]
    assert answer["summary"].startswith("This photo looks too dark")
    assert len(answer["findings"]) == 7


def test_bridge_assess_needs_the_token_and_an_image(bridge, photos):
    image = base64.b64encode((photos / "clean.png").read_bytes()).decode()
    assert post(bridge, "/assess", {"image": image}, token=False)[0] == 401
    status, answer = post(bridge, "/assess", {"image": base64.b64encode(b"nope").decode()})
    assert status == 400 and answer["error"]
    assert post(bridge, "/assess", {"picture": image})[0] == 400
    status, answer = post(bridge, "/assess", {"image": image})
    assert status == 200 and answer["suggested"] == [] and answer["steps"] == []
    assert answer["summary"] == "Nothing obvious to fix."


def test_assess_goes_on_past_a_photo_beyond_the_memory_budget(capsys, photos, monkeypatch):
    from PIL import Image

    big = photos / "big.png"
    Image.new("RGB", (1600, 1200)).save(big)  # about 108 MB to edit; the budget is 64 MB
    monkeypatch.setenv("INSTRUCTIR_MEMORY_BUDGET_MB", "64")
    code, out, err = run(capsys, "assess", str(big), str(photos / "night.png"), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and "big.png" in err and "memory budget" in rows[0]["error"]
    assert rows[1]["path"] == str(photos / "night.png") and "error" not in rows[1]


def test_a_photo_of_one_tone_is_described_as_such():
    from instructir_desktop.core.assess import default_assessor

    result = default_assessor().assess(np.zeros((300, 400, 3), np.float32))
    enhance = next(f for f in result.findings if f.task == "enhance")
    assert enhance.evidence.startswith("all tones at under 1 % brightness")
