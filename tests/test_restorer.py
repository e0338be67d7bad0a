"""The Restorer on a tiny generated pack: tiling, progress, cancel, alpha, strength, dtypes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instructir_desktop.core import backends
from instructir_desktop.core import restorer as restorer_mod
from instructir_desktop.core.descriptor import psnr
from instructir_desktop.core.errors import (
    CancelledError,
    DeviceError,
    EmptyInstructionError,
    InstructIRError,
)
from instructir_desktop.core.restorer import Restorer, RestoreRequest, Step, resolve_device
from instructir_desktop.core.tiling import blend_weights, plan_tiles


def photo(h=150, w=230, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 9) * np.cos(yy / 7)], axis=2)
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)


def cancel_after(n: int):
    """A cancel callback that says yes from its (n + 1)-th call on."""
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > n

    return cancel


def test_restore_changes_the_photo_and_is_deterministic(tiny_restorer):
    img = photo()
    a = tiny_restorer.restore(img, "remove the noise")
    b = tiny_restorer.restore(img, "remove the noise")
    assert a.shape == img.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert psnr(a, img) < 60  # it did something
    assert a.min() >= 0 and a.max() <= 1


def test_cpu_torch_runs_the_frozen_graph_traced_at_load(tiny_restorer):
    """The TorchScript graph is traced and optimised while the model loads, not on the first
    photo, and later photos reuse it whatever their size."""
    d = tiny_restorer.backend.descriptor
    assert tiny_restorer.backend.name == "torch" and d.frozen
    graph = d._graph
    assert graph is not None
    out = tiny_restorer.restore(np.random.default_rng(3).random((37, 61, 3)), "remove the noise")
    assert out.shape == (37, 61, 3)
    assert d._graph is graph


def test_tiles_cover_the_image_and_blend_to_one():
    tiles = plan_tiles(300, 500, 128, 32)
    cover = np.zeros((300, 500))
    for t in tiles:
        cover[t.y0 : t.y1, t.x0 : t.x1] += blend_weights(t, 300, 500, 32)
    assert cover.min() > 0.0
    for t1, t2 in zip(tiles, tiles[1:]):
        if t1.y0 == t2.y0:
            assert t1.x1 - t2.x0 >= 32  # every overlap at least the requested width


def test_tiles_are_balanced_and_fit_the_size_multiple():
    # 1224 wide with 512 tiles: three tiles of 464 (not 512, 512 and a sliver), all one shape.
    tiles = plan_tiles(816, 1224, 512, 64, multiple=16)
    assert {t.shape for t in tiles} == {(448, 464)} and len(tiles) == 6
    covered = sum(t.shape[0] * t.shape[1] for t in tiles) / (816 * 1224)
    assert covered < 1.25
    assert plan_tiles(100, 60, 512, 64, multiple=16) == [plan_tiles(100, 60, 512)[0]]
    with pytest.raises(ValueError):
        plan_tiles(1000, 1000, 500, 64, multiple=16)


def test_tiled_matches_full_frame_closely(tiny_restorer):
    img = photo(200, 300)
    full = tiny_restorer.restore(img, "make it sharper", tile=512)
    tiled = tiny_restorer.restore(img, "make it sharper", tile=128)
    assert psnr(full, tiled) > 35


def test_progress_per_tile_and_cancel_between_tiles(tiny_restorer):
    img = photo(200, 300)
    seen = []
    tiny_restorer.restore(img, "denoise", tile=96, progress=lambda f, m: seen.append(f))
    assert len(seen) > 3 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    with pytest.raises(CancelledError):
        tiny_restorer.restore(img, "denoise", tile=96, cancel=cancel_after(2))


def test_alpha_is_passed_through_and_strength_blends(tiny_restorer):
    rgb = photo(64, 80)
    alpha = np.linspace(0, 1, 64 * 80, dtype=np.float32).reshape(64, 80, 1)
    rgba = np.concatenate([rgb, alpha], axis=2)
    out = tiny_restorer.restore(rgba, "too dark")
    assert out.shape == (64, 80, 4)
    assert np.array_equal(out[..., 3:], alpha)
    full = tiny_restorer.restore(rgb, "too dark")
    half = tiny_restorer.restore(rgb, "too dark", strength=0.5)
    np.testing.assert_allclose(half, rgb + 0.5 * (full - rgb), atol=1e-6)
    assert np.array_equal(tiny_restorer.restore(rgb, "too dark", strength=0.0), rgb)


def test_run_applies_steps_in_order_and_reports_events(tiny_restorer):
    img = photo(64, 64)
    events = []
    out = tiny_restorer.run(
        RestoreRequest(img, [Step("denoise"), Step("too dark", 0.5)], job_id="j1"),
        on_event=events.append,
    )
    manual = tiny_restorer.restore(tiny_restorer.restore(img, "denoise"), "too dark", strength=0.5)
    assert np.array_equal(out, manual)
    assert events[-1].event == "result" and events[-1].job_id == "j1"
    assert any(e.event == "progress" for e in events)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_instruction_is_refused(tiny_restorer, text):
    with pytest.raises(EmptyInstructionError, match="empty"):
        tiny_restorer.restore(photo(32, 32), text)


def test_intent_has_seven_probabilities(tiny_restorer):
    it = tiny_restorer.intent("  remove   the grain ")
    assert it.text == "remove the grain"
    assert list(it.probabilities) == list(tiny_restorer.manifest.labels)
    assert sum(it.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(restorer_mod, "available_devices", lambda: ["cpu"])
    with pytest.raises(DeviceError, match="not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_reduced_precision_only_within_45_db(tiny_pack):
    bf16 = Restorer(tiny_pack, device="cpu", backend="torch", precision="bf16")
    fp32 = Restorer(tiny_pack, device="cpu", backend="torch", precision="fp32")
    img = photo(96, 128)
    a = bf16.restore(img, "denoise")
    b = fp32.restore(img, "denoise")
    if bf16.backend.precision == "bf16":
        assert psnr(a, b) >= backends.MIN_PSNR_DB
    else:
        assert np.array_equal(a, b)


def test_precision_falls_back_to_fp32_when_it_would_lose_quality(tiny_pack, monkeypatch):
    monkeypatch.setattr(restorer_mod, "MIN_PSNR_DB", 500.0)
    r = Restorer(tiny_pack, device="cpu", backend="torch", precision="bf16")
    assert r.backend.precision == "fp32"


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_openvino_backend_matches_torch(tiny_pack, tmp_path):
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    assert ov.backend.name == "openvino"
    ref = Restorer(tiny_pack, device="cpu", backend="torch")
    img = photo(100, 140)
    assert psnr(ov.restore(img, "denoise"), ref.restore(img, "denoise")) >= 45
    # The converted model is cached: a second Restorer reuses it.
    assert list((tmp_path / "ov").glob("*.xml"))


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_openvino_tiles_in_flight_match_torch_and_cancel(tiny_pack, tmp_path):
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    ref = Restorer(tiny_pack, device="cpu", backend="torch")
    img = photo(200, 300)
    seen = []
    out = ov.restore(img, "denoise", tile=96, progress=lambda f, m: seen.append(f))
    assert len(seen) > 3 and seen[-1] == pytest.approx(1.0)
    assert psnr(out, ref.restore(img, "denoise", tile=96)) >= 45
    with pytest.raises(CancelledError):
        ov.restore(img, "denoise", tile=96, cancel=cancel_after(3))


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_auto_backend_times_both_keeps_the_faster_and_caches_the_verdict(
    tiny_pack, tmp_path, monkeypatch
):
    folder = tmp_path / "ov"
    first = Restorer(tiny_pack, device="cpu", cache_folder=folder)
    timings = first.describe()["backend_timings"]
    assert set(timings) == {"openvino:fp32", "torch:fp32"}
    assert all(t > 0 for t in timings.values())
    faster = min(timings, key=timings.get).split(":")[0]
    assert first.backend.name == faster

    # The verdict is kept per pack and machine: no second timing, and it is what decides.
    def no_timing(*_args, **_kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(restorer_mod, "seconds_per_megapixel", no_timing)
    cache = folder / "backend-speed.json"
    for winner, loser in (("openvino", "torch"), ("torch", "openvino")):
        data = json.loads(cache.read_text())
        for key in data:
            data[key] = {f"{winner}:fp32": 1.0, f"{loser}:fp32": 2.0}
        cache.write_text(json.dumps(data))
        chosen = Restorer(tiny_pack, device="cpu", cache_folder=folder)
        assert chosen.backend.name == winner
        assert chosen.backend_timings[f"{winner}:fp32"] == 1.0


def test_auto_backend_without_openvino_is_torch_and_unknown_backends_are_refused(
    tiny_pack, tmp_path, monkeypatch
):
    monkeypatch.setattr(restorer_mod, "openvino_available", lambda: False)
    r = Restorer(tiny_pack, device="cpu", cache_folder=tmp_path / "ov")
    assert r.backend.name == "torch" and r.backend_timings == {}
    assert not (tmp_path / "ov" / "backend-speed.json").exists()
    with pytest.raises(InstructIRError, match="Unknown backend 'cuda-fast'"):
        Restorer(tiny_pack, device="cpu", backend="cuda-fast")


def test_a_greyscale_photo_stays_greyscale(tiny_restorer):
    """The network may tint a black-and-white photo; the result is its luma, on every channel."""
    from instructir_desktop.core.images import LUMA

    rng = np.random.default_rng(3)
    grey = np.repeat(rng.random((40, 56, 1), dtype=np.float32), 3, axis=2)
    out = tiny_restorer.restore(grey, "make the colours pop")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    tinted = tiny_restorer.restore(grey + np.float32([0, 0, 1e-3]), "make the colours pop")
    assert not np.array_equal(tinted[..., 0], tinted[..., 2])  # the network does tint it
    np.testing.assert_allclose(out[..., 0], tinted[..., :3] @ LUMA, atol=2e-3)
