"""The Restorer on a tiny generated pack: tiling, progress, cancel, alpha, strength, dtypes,
and the choice of backend and precision."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from instructir_desktop.core import backends, openvino_shapes
from instructir_desktop.core import restorer as restorer_mod
from instructir_desktop.core.backends import choose_backend, resolve_precision
from instructir_desktop.core.descriptor import psnr
from instructir_desktop.core.errors import (
    CancelledError,
    DeviceError,
    EmptyInstructionError,
    InstructIRError,
)
from instructir_desktop.core.openvino_shapes import CompiledShape
from instructir_desktop.core.restorer import Restorer, resolve_device
from instructir_desktop.core.tiling import QUICK_BOXES, blend_weights, plan_tiles


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


def test_cpu_torch_runs_the_frozen_graph_traced_at_load(restorer_at):
    """In fp32 the TorchScript graph is traced and optimised while the model loads, not on the
    first photo, and later photos reuse it whatever their size."""
    fp32 = restorer_at("fp32")
    d = fp32.backend.descriptor
    assert fp32.backend.name == "torch" and d.frozen
    graph = d._graph
    assert graph is not None
    out = fp32.restore(np.random.default_rng(3).random((37, 61, 3)), "remove the noise")
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


def test_tiles_are_balanced_and_start_on_the_network_grid():
    # 1224 wide with 512 tiles: three balanced tiles, not 512, 512 and a sliver.
    tiles = plan_tiles(816, 1224, 512, 64, multiple=16)
    assert len(tiles) == 6
    for t in tiles:
        assert t.y0 % 16 == 0 and t.x0 % 16 == 0  # same phase as the whole photo
        assert (t.y1 == 816 or t.shape[0] % 16 == 0) and (t.x1 == 1224 or t.shape[1] % 16 == 0)
        assert max(t.shape) < 512 + 16
    rows = sorted({(t.y0, t.y1) for t in tiles})
    cols = sorted({(t.x0, t.x1) for t in tiles})
    for spans in (rows, cols):
        assert all(b0 < a1 - 63 for (_, a1), (b0, _) in zip(spans, spans[1:]))  # overlap >= 64
    covered = sum(t.shape[0] * t.shape[1] for t in tiles) / (816 * 1224)
    assert covered < 1.3
    assert plan_tiles(100, 60, 512, 64, multiple=16) == [plan_tiles(100, 60, 512)[0]]
    with pytest.raises(ValueError):
        plan_tiles(1000, 1000, 500, 64, multiple=16)


def test_borders_look_like_their_neighbours(tiny_restorer):
    """Mirrored context instead of the network's zero padding: the first and last rows and
    columns differ from their neighbours no more than inner rows do."""
    yy, xx = np.mgrid[0:96, 0:128] / 128.0
    img = np.dstack([0.2 + 0.3 * xx, 0.3 + 0.2 * yy, 0.25 + 0.1 * xx * yy]).astype(np.float32)
    out = tiny_restorer.restore(img, "make it brighter")
    inner = np.abs(np.diff(out[8:-8], axis=0)).mean()
    for edge in (np.abs(out[0] - out[1]), np.abs(out[-1] - out[-2])):
        assert edge.mean() < 3 * inner
    inner = np.abs(np.diff(out[:, 8:-8], axis=1)).mean()
    for edge in (np.abs(out[:, 0] - out[:, 1]), np.abs(out[:, -1] - out[:, -2])):
        assert edge.mean() < 3 * inner


def test_tiled_matches_full_frame_closely(restorer_at, precision_policy):
    r = restorer_at(precision_policy)
    assert r.backend.precision == precision_policy
    img = photo(200, 300)
    full = r.restore(img, "make it sharper", tile=512)
    tiled = r.restore(img, "make it sharper", tile=128)
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


def test_reduced_precision_only_within_45_db(restorer_at):
    """torch bf16 runs on every CPU (emulated where it is not native) and the tiny pack stays
    within 45 dB of fp32 there, so the bf16 branch is what runs here."""
    bf16, fp32 = restorer_at("bf16"), restorer_at("fp32")
    assert bf16.backend.precision == "bf16" and fp32.backend.precision == "fp32"
    img = photo(96, 128)
    a = bf16.restore(img, "denoise")
    b = fp32.restore(img, "denoise")
    assert backends.MIN_PSNR_DB <= psnr(a, b) < float("inf")


def test_precision_falls_back_to_fp32_when_it_would_lose_quality(
    tiny_pack, monkeypatch, precision_policy
):
    monkeypatch.setattr(backends, "MIN_PSNR_DB", 500.0)
    r = Restorer(tiny_pack, device="cpu", backend="torch")
    assert r.backend.precision == "fp32"


def test_the_precision_policy(monkeypatch):
    """auto: INSTRUCTIR_PRECISION if set, else fp16 on CUDA, bf16 on CPUs with native bf16,
    else fp32. An explicit precision wins over the variable."""
    monkeypatch.delenv("INSTRUCTIR_PRECISION")
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(backends, "cpu_supports_bf16", lambda native=native: native)
        assert resolve_precision("auto", "cpu") == expected
        assert resolve_precision("auto", "mps") == "fp32"
        assert resolve_precision("auto", "cuda") == "fp16"
        for forced in ("fp32", "bf16", "fp16"):
            monkeypatch.setenv("INSTRUCTIR_PRECISION", forced)
            assert resolve_precision("auto", "cpu") == forced
            assert resolve_precision("auto", "cuda") == forced
            assert resolve_precision("fp32", "cpu") == "fp32"
            assert resolve_precision("bf16", "cuda") == "bf16"
        monkeypatch.setenv("INSTRUCTIR_PRECISION", " Auto ")
        assert resolve_precision("auto", "cpu") == expected
        monkeypatch.setenv("INSTRUCTIR_PRECISION", "")
        assert resolve_precision("auto", "cpu") == expected
        monkeypatch.delenv("INSTRUCTIR_PRECISION")


def test_unknown_precisions_are_refused(tiny_pack, monkeypatch):
    with pytest.raises(InstructIRError, match="Unknown precision 'int4'"):
        Restorer(tiny_pack, device="cpu", backend="torch", precision="int4")
    monkeypatch.setenv("INSTRUCTIR_PRECISION", "half")
    with pytest.raises(InstructIRError, match="Unknown precision 'half' in INSTRUCTIR_PRECISION"):
        Restorer(tiny_pack, device="cpu", backend="torch")
    # An explicit precision does not read the variable at all.
    assert Restorer(tiny_pack, device="cpu", backend="torch", precision="fp32").backend


def test_on_a_native_bf16_cpu_auto_is_bf16_unless_pinned(tiny_pack, monkeypatch):
    """A CPU with native bf16 (simulated): auto runs bf16; INSTRUCTIR_PRECISION=fp32, which
    the test suite sets unless told otherwise, keeps the fp32 results the tests compare."""
    monkeypatch.setattr(backends, "cpu_supports_bf16", lambda: True)
    monkeypatch.delenv("INSTRUCTIR_PRECISION")
    assert Restorer(tiny_pack, device="cpu", backend="torch").backend.precision == "bf16"
    monkeypatch.setenv("INSTRUCTIR_PRECISION", "fp32")
    assert Restorer(tiny_pack, device="cpu", backend="torch").backend.precision == "fp32"
    pinned = Restorer(tiny_pack, device="cpu", backend="torch", precision="bf16")
    assert pinned.backend.precision == "bf16"


needs_openvino = pytest.mark.skipif(
    not backends.openvino_available(), reason="OpenVINO is not installed"
)


def openvino_precision(policy: str) -> str:
    """What the OpenVINO backend runs at under a policy: bf16 only where its CPU plugin runs
    bf16 (not on a plain AVX2 CPU), else fp32."""
    return policy if policy == "fp32" or backends.openvino_runs(policy) else "fp32"


@needs_openvino
def test_openvino_backend_matches_torch(tiny_pack, tmp_path, restorer_at, precision_policy):
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    assert ov.backend.name == "openvino"
    assert ov.backend.precision == openvino_precision(precision_policy)
    ref = restorer_at("fp32")
    img = photo(100, 140)
    assert psnr(ov.restore(img, "denoise"), ref.restore(img, "denoise")) >= 45
    # The converted model is cached: a second Restorer reuses it.
    assert list((tmp_path / "ov").glob("*.xml"))


@needs_openvino
def test_prepare_compiles_the_shapes_a_restore_then_uses(tiny_pack, tmp_path):
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    compiled = ov.backend._compiled
    before = set(compiled)
    sizes = [(45, 51), (200, 300)]  # one tile (latency), several tiles (throughput)
    ov.prepare(sizes, tile=96)
    helper = [t for t in threading.enumerate() if t.name == "instructir-compile"]
    assert len(helper) == 1
    helper[0].join(120)
    prepared = set(compiled) - before
    assert {mode for _h, _w, mode in prepared} == {"LATENCY", "THROUGHPUT"}
    # The single-tile shape (what the user waits for) has had its slower first run; the
    # several-tile one has not (a long render, where one tile's first run is noise).
    assert {key[2]: compiled[key].warm for key in prepared} == {
        "LATENCY": True,
        "THROUGHPUT": False,
    }
    cold = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    for h, w in sizes:
        img = photo(h, w)
        assert np.array_equal(
            ov.restore(img, "denoise", tile=96), cold.restore(img, "denoise", tile=96)
        )
    assert set(compiled) - before == prepared  # nothing left to compile at Enter
    ov.prepare(sizes, tile=96)  # all there and run: no helper
    assert not [t for t in threading.enumerate() if t.name == "instructir-compile"]


def own_shape(r: Restorer, h: int, w: int, tile: int) -> tuple[int, int]:
    """The tile shape an h x w photo of one tile runs in, padded to the size multiple."""
    m = r.descriptor.size_multiple
    th, tw = r._plan(h, w, tile)[2][0].shape
    return th + (-th) % m, tw + (-tw) % m


@needs_openvino
def test_a_quick_render_runs_in_a_standard_shape_and_stays_close_to_its_own(
    tiny_pack, tmp_path, restorer_at
):
    """The app's first render of a photo of any common aspect ratio runs in one of two
    standard tile shapes (compiled once), mirrored pixels around the photo."""
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    compiled = ov.backend._compiled
    tile = ov.tile_size()
    standard = {ov._quick_shape(h, w, tile, ov.backend) for h, w in QUICK_BOXES}
    assert len(standard) == 2 and None not in standard
    landscape, portrait = (ov._quick_shape(h, w, tile, ov.backend) for h, w in QUICK_BOXES)
    for h, w, expected in [(331, 496, landscape), (279, 496, landscape), (496, 331, portrait)]:
        img = photo(h, w, seed=h)
        quick = ov.restore(img, "denoise", quick=True)
        assert quick.shape == img.shape
        assert (*expected, "LATENCY") in compiled
        assert not any(key[:2] == own_shape(ov, h, w, tile) for key in compiled)
        assert np.array_equal(ov.restore(img, "denoise", quick=True), quick)  # deterministic
        assert psnr(quick, ov.restore(img, "denoise")) >= 30
    # A panorama would compute mostly padding: its own shape; several tiles: as ever.
    assert ov._quick_shape(150, 496, tile, ov.backend) is None
    assert ov._quick_shape(331, 496, 128, ov.backend) is None
    # torch runs any shape as it comes: a quick render is the render.
    torch_restorer = restorer_at("fp32")
    img = photo(331, 496)
    assert np.array_equal(
        torch_restorer.restore(img, "denoise", quick=True), torch_restorer.restore(img, "denoise")
    )


class _GatedCore:
    """An OpenVINO Core whose compiles wait until ``gate`` is set."""

    def __init__(self, core) -> None:
        self._core = core
        self.gate = threading.Event()
        self.compiling = threading.Event()

    def compile_model(self, *args, **kwargs):
        self.compiling.set()
        assert self.gate.wait(60)
        return self._core.compile_model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._core, name)


@needs_openvino
def test_prepare_gets_the_standard_shapes_ready_and_drops_what_a_later_photo_does_not_need(
    tiny_pack, tmp_path, monkeypatch
):
    monkeypatch.setattr(backends.os, "cpu_count", lambda: 2)  # one compile at a time
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    gated = _GatedCore(ov.backend.core)
    ov.backend.core = gated
    tile = ov.tile_size()
    landscape, portrait = (ov._quick_shape(h, w, tile, ov.backend) for h, w in QUICK_BOXES)
    # No photo open yet: both standard shapes, landscape first.
    ov.prepare([], quick=list(QUICK_BOXES))
    assert gated.compiling.wait(60)  # the landscape shape is compiling
    # A landscape photo opens: its first render needs that shape, not the portrait one.
    ov.prepare([(60, 70)], quick=[(331, 496)])
    gated.gate.set()
    for helper in [t for t in threading.enumerate() if t.name == "instructir-compile"]:
        helper.join(120)
    compiled = ov.backend._compiled
    own = own_shape(ov, 60, 70, tile)
    assert (*landscape, "LATENCY") in compiled and (*own, "LATENCY") in compiled
    assert (*portrait, "LATENCY") not in compiled
    assert ov.backend._photo_shapes == {(*landscape, "LATENCY"), (*own, "LATENCY")}
    assert all(compiled[key].warm for key in ov.backend._photo_shapes)
    # With no photo open the standard shapes are compiled but not run: their working memory
    # (0.37 GB for the official network's two) waits for a photo.
    fresh = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    fresh.prepare([], quick=list(QUICK_BOXES))
    for helper in [t for t in threading.enumerate() if t.name == "instructir-compile"]:
        helper.join(120)
    standard = {(*landscape, "LATENCY"), (*portrait, "LATENCY")}
    assert standard <= set(fresh.backend._compiled)
    assert not any(fresh.backend._compiled[key].warm for key in standard)


class _MeetingCore:
    """An OpenVINO Core whose compiles wait for each other: ``parties`` of them must be in
    ``compile_model`` at once, or the barrier breaks."""

    def __init__(self, core, parties: int) -> None:
        self._core = core
        self.barrier = threading.Barrier(parties, timeout=60)

    def compile_model(self, *args, **kwargs):
        self.barrier.wait()
        return self._core.compile_model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._core, name)


@needs_openvino
def test_prepare_compiles_a_photos_shapes_side_by_side_where_cores_are_to_spare(
    tiny_pack, tmp_path, monkeypatch
):
    """Compiling a shape takes a little more than one core: the first render's shape and the
    full photo's compile at once where there are two cores for each."""
    monkeypatch.setattr(backends.os, "cpu_count", lambda: 4)
    assert backends.compile_workers(2) == 2 and backends.compile_workers(5) == 2
    assert backends.compile_workers(1) == 1
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    meeting = _MeetingCore(ov.backend.core, parties=2)
    ov.backend.core = meeting
    levels = [(45, 51), (90, 120)]  # one tile each: two shapes
    ov.prepare(levels)
    for helper in [t for t in threading.enumerate() if t.name == "instructir-compile"]:
        helper.join(120)
    assert not meeting.barrier.broken
    assert len(ov.backend._photo_shapes) == 2
    assert ov.backend._photo_shapes <= set(ov.backend._compiled)
    for cores in (1, 2, 3):  # one at a time: the first render's shape is ready soonest
        monkeypatch.setattr(backends.os, "cpu_count", lambda cores=cores: cores)
        assert backends.compile_workers(2) == 1


@needs_openvino
def test_a_warm_up_steps_aside_for_a_restore(tiny_pack, tmp_path):
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    img = photo(600, 800)
    reference = ov.restore(img, "denoise")
    key = max(ov.backend._compiled, key=lambda k: k[0] * k[1])  # the photo's one tile
    shape = ov.backend._compiled_for(*key)
    shape.warm = False
    textdim = ov.descriptor.net.config.textdim
    inputs = [np.zeros((1, 3, key[0], key[1]), np.float32), np.zeros((1, textdim), np.float32)]
    # A restore already running: no warm-up.
    assert shape.warm_up(inputs, busy=lambda: True) is False
    # A restore starting while it runs: it cancels itself and gives its request back.
    calls = iter([False])
    assert shape.warm_up(inputs, busy=lambda: next(calls, True)) is False
    assert not shape.warm and len(shape._idle) == shape.in_flight

    # A restore of the same shape while the warm-up runs: the restore cancels it, takes its
    # request (no second one, no second working memory) and gives the same photo.
    outcome = []
    helper = threading.Thread(target=lambda: outcome.append(shape.warm_up(inputs, lambda: False)))
    helper.start()
    while shape._warming is None and helper.is_alive():
        time.sleep(0.001)
    assert np.array_equal(ov.restore(img, "denoise"), reference)
    helper.join(30)
    assert outcome in ([False], [True])  # cancelled, or it had just finished
    assert len(shape._idle) == shape.in_flight and shape.warm

    # At exit, a warm-up in flight is cancelled and waited for.
    shape.warm = False
    outcome.clear()
    helper = threading.Thread(target=lambda: outcome.append(shape.warm_up(inputs, lambda: False)))
    helper.start()
    while shape._warming is None and helper.is_alive():
        time.sleep(0.001)
    openvino_shapes.cancel_warm_ups()
    helper.join(30)
    assert outcome in ([False], [True]) and not openvino_shapes._WARMING
    assert len(shape._idle) == shape.in_flight and shape.warm == outcome[0]


@needs_openvino
def test_openvino_takes_larger_tiles_than_torch_within_the_memory_budget(tiny_pack, tmp_path):
    from instructir_desktop.core.restorer import CPU_MAX_TILE, OPENVINO_MAX_TILE

    folder = tmp_path / "ov"
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=folder)
    torch_ = Restorer(tiny_pack, device="cpu", backend="torch")
    assert torch_.tile_size() == CPU_MAX_TILE
    assert ov.tile_size() == OPENVINO_MAX_TILE  # a 1 MP photo is one tile
    ov_small = Restorer(
        tiny_pack, device="cpu", backend="openvino", cache_folder=folder, memory_budget=64 << 20
    )
    torch_small = Restorer(tiny_pack, device="cpu", backend="torch", memory_budget=64 << 20)
    assert torch_small.tile_size() < ov_small.tile_size() < OPENVINO_MAX_TILE
    assert ov_small.tile_size() % ov_small.descriptor.size_multiple == 0


@needs_openvino
def test_openvino_keeps_a_few_compiled_shapes_and_frees_the_memory_of_the_others(
    tiny_pack, tmp_path, monkeypatch
):
    """Every new photo size compiles new shapes, each 0.3-0.7 GB for the official network:
    without a bound an editing session's memory grows with every photo it opens."""
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    released = []
    release = CompiledShape.release
    monkeypatch.setattr(
        CompiledShape, "release", lambda self: (released.append(self), release(self))
    )
    sizes = [(40 + 16 * i, 60) for i in range(backends.MAX_COMPILED_SHAPES + 2)]
    first = ov.restore(photo(*sizes[0]), "denoise")
    first_shapes = set(ov.backend._compiled)
    for h, w in sizes[1:]:
        ov.restore(photo(h, w), "denoise")
        assert 0 < len(ov.backend._compiled) <= backends.MAX_COMPILED_SHAPES
    assert released  # the shapes a restore did not use gave their working memory back
    # The first shape was dropped; it compiles again and gives the same result.
    assert not first_shapes & set(ov.backend._compiled)
    assert np.array_equal(ov.restore(photo(*sizes[0]), "denoise"), first)


@needs_openvino
def test_the_photo_being_edited_keeps_the_memory_of_its_single_tile_shapes(
    tiny_pack, tmp_path, monkeypatch
):
    """Each instruction runs the first render and then the full render of a small photo:
    freeing one's memory while the other runs would page it in again every time."""
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    released = []
    release = CompiledShape.release
    monkeypatch.setattr(
        CompiledShape, "release", lambda self: (released.append(self), release(self))
    )
    monkeypatch.setattr(backends, "MAX_COMPILED_SHAPES", 8)  # released, not dropped
    levels = [(45, 51), (90, 120)]  # the first render and the full photo, one tile each
    ov.prepare(levels)
    for helper in [t for t in threading.enumerate() if t.name == "instructir-compile"]:
        helper.join(120)
    photo_shapes = {key: ov.backend._compiled[key] for key in ov.backend._photo_shapes}
    assert len(photo_shapes) == 2 and all(s.warm for s in photo_shapes.values())
    for h, w in levels + levels:
        ov.restore(photo(h, w), "denoise")
    ov.restore(photo(60, 70), "denoise")  # another single-tile shape
    assert not set(released) & set(photo_shapes.values())
    ov.restore(photo(200, 300), "denoise", tile=96)  # several tiles: a large render
    assert set(photo_shapes.values()) <= set(released)


@needs_openvino
def test_openvino_tiles_in_flight_match_torch_and_cancel(tiny_pack, tmp_path, restorer_at):
    ov = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path / "ov")
    ref = restorer_at("fp32")
    img = photo(200, 300)
    seen = []
    out = ov.restore(img, "denoise", tile=96, progress=lambda f, m: seen.append(f))
    assert len(seen) > 3 and seen[-1] == pytest.approx(1.0)
    assert psnr(out, ref.restore(img, "denoise", tile=96)) >= 45
    with pytest.raises(CancelledError):
        ov.restore(img, "denoise", tile=96, cancel=cancel_after(3))


@needs_openvino
def test_auto_backend_times_both_keeps_the_faster_and_caches_the_verdict(
    tiny_pack, tmp_path, monkeypatch, precision_policy
):
    folder = tmp_path / "ov"
    first = Restorer(tiny_pack, device="cpu", cache_folder=folder)
    timings = first.describe()["backend_timings"]
    ov_precision = openvino_precision(precision_policy)
    names = {"openvino": f"openvino:{ov_precision}", "torch": f"torch:{precision_policy}"}
    if ov_precision != "fp32":  # OpenVINO at bf16 is timed with its lower levels at fp32 too
        names["openvino lower fp32"] = f"openvino:{ov_precision}+fp32-lower"
    assert set(timings) == set(names.values())
    assert all(t > 0 for t in timings.values())
    faster = min(timings, key=timings.get)
    assert first.backend.label == faster
    assert first.describe()["lower_levels_fp32"] == faster.endswith("+fp32-lower")

    # The verdict is kept per pack, precision and machine: no second timing, and it is what
    # decides.
    def no_timing(*_args, **_kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(backends, "seconds_per_megapixel", no_timing)
    cache = folder / "backend-speed.json"
    for winner in names:
        data = json.loads(cache.read_text())
        assert len(data) == 1
        for key in data:
            data[key] = {label: 1.0 if kind == winner else 2.0 for kind, label in names.items()}
        cache.write_text(json.dumps(data))
        chosen = Restorer(tiny_pack, device="cpu", cache_folder=folder)
        assert chosen.backend.label == names[winner]
        assert chosen.backend_timings[names[winner]] == 1.0
    assert not list(folder.glob("*.tmp"))


@needs_openvino
def test_openvino_reports_the_precision_it_runs_at(tiny_pack, tmp_path, monkeypatch):
    """OpenVINO keeps f32 without a word where its CPU plugin cannot run a reduced precision
    (bf16 on a plain AVX2 CPU, f16 on most): the backend refuses it instead, and the Restorer
    uses OpenVINO fp32 beside torch at that precision."""
    import openvino as ov

    r = Restorer(tiny_pack, device="cpu", backend="torch", precision="fp32")
    folder = tmp_path / "ov"
    for precision, hint in (("bf16", ov.Type.bf16), ("fp16", ov.Type.f16)):
        if backends.openvino_runs(precision):
            shape = backends.OpenVINOBackend(r.descriptor, folder, precision)._compiled_for(32, 32)
            assert shape.model.get_property("INFERENCE_PRECISION_HINT") == hint
        else:
            with pytest.raises(InstructIRError, match=f"does not run {precision}"):
                backends.OpenVINOBackend(r.descriptor, folder, precision)
    # An AVX2 CPU, as OpenVINO sees it.
    monkeypatch.setattr(backends, "openvino_runs", lambda precision: precision == "fp32")
    chosen, _ = choose_backend(r.descriptor, "openvino", "bf16", folder)
    assert (chosen.name, chosen.precision) == ("openvino", "fp32")
    _, timings = choose_backend(r.descriptor, "auto", "bf16", folder)
    assert set(timings) == {"openvino:fp32", "torch:bf16"}


def test_auto_backend_without_openvino_is_torch_and_unknown_backends_are_refused(
    tiny_pack, tmp_path, monkeypatch
):
    monkeypatch.setattr(backends, "openvino_available", lambda: False)
    r = Restorer(tiny_pack, device="cpu", cache_folder=tmp_path / "ov")
    assert r.backend.name == "torch" and r.backend_timings == {}
    assert not (tmp_path / "ov" / "backend-speed.json").exists()
    with pytest.raises(InstructIRError, match="Unknown backend 'cuda-fast'"):
        Restorer(tiny_pack, device="cpu", backend="cuda-fast")


def test_a_greyscale_photo_stays_greyscale(restorer_at, precision_policy):
    """The network may tint a black-and-white photo; the result is its luma, on every channel."""
    from instructir_desktop.core.images import LUMA

    r = restorer_at(precision_policy)
    rng = np.random.default_rng(3)
    grey = np.repeat(rng.random((40, 56, 1), dtype=np.float32), 3, axis=2)
    out = r.restore(grey, "make the colours pop")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    tinted = r.restore(grey + np.float32([0, 0, 1e-3]), "make the colours pop")
    assert np.abs(tinted[..., 0] - tinted[..., 2]).max() > 0.1  # the network does tint it
    # The 1e-3 tint is below bf16's resolution (8 significant bits: steps of 2**-8 near 1),
    # so in bf16 the two inputs reach the network rounded differently.
    atol = {"fp32": 2e-3, "bf16": 1e-2}[precision_policy]
    np.testing.assert_allclose(out[..., 0], tinted[..., :3] @ LUMA, atol=atol)
