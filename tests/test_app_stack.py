"""The non-destructive stack without Qt: keys, cache, compositing, pyramids."""

from __future__ import annotations

import numpy as np
import pytest

from instructir_desktop.app.stack import (
    RenderCache,
    StepSpec,
    blend,
    build_pyramid,
    chain,
    evaluate,
    level_fingerprint,
    preview_size,
    resize_rgb,
    thumbnail,
)

RNG = np.random.default_rng(0)
BASE = RNG.random((8, 10, 3), dtype=np.float32)
FP = level_fingerprint("src", (8, 10))


def fake_restore(x: np.ndarray, instruction: str) -> np.ndarray:
    """A deterministic stand-in for the model: depends on input and instruction."""
    return np.clip(x * 0.5 + (len(instruction) % 7) / 10, 0, 1).astype(np.float32)


def render(steps, cache):
    """Evaluate, filling missing restores with fake_restore like the scheduler would."""
    while True:
        result = evaluate(BASE, FP, steps, "pack", cache)
        if result.missing is None:
            return result
        cache.put_restored(
            result.missing.key, fake_restore(result.missing.image, result.missing.instruction)
        )


def reference(steps):
    x = BASE
    for s in steps:
        if s.visible and s.strength > 0:
            y = fake_restore(x, s.instruction)
            x = x + np.float32(s.strength) * (y - x)
    return x


def test_composite_follows_the_formula():
    steps = [
        StepSpec("a", "remove the noise", 1.0, True),
        StepSpec("b", "too dark", 0.4, True),
        StepSpec("c", "hidden one", 1.0, False),
        StepSpec("d", "sharper", 0.7, True),
    ]
    result = render(steps, RenderCache())
    np.testing.assert_allclose(result.image, reference(steps), atol=1e-6)


def test_empty_stack_is_the_source_itself():
    result = evaluate(BASE, FP, [], "pack", RenderCache())
    assert result.image is BASE and result.fingerprint == FP


def test_only_downstream_layers_recompute():
    cache = RenderCache()
    steps = [StepSpec("a", "one", 1.0, True), StepSpec("b", "two", 1.0, True)]
    render(steps, cache)
    # Changing the top layer's strength needs no restore at all (its y is cached)...
    changed = [steps[0], StepSpec("b", "two", 0.3, True)]
    assert evaluate(BASE, FP, changed, "pack", cache).missing is None
    # ...changing the bottom layer's strength re-runs only the layer above it.
    changed = [StepSpec("a", "one", 0.5, True), steps[1]]
    result = evaluate(BASE, FP, changed, "pack", cache)
    assert result.missing is not None and result.missing.layer_id == "b"


def test_strength_zero_and_hidden_are_identity_without_restore():
    cache = RenderCache()
    steps = [StepSpec("a", "one", 0.0, True), StepSpec("b", "two", 1.0, False)]
    result = evaluate(BASE, FP, steps, "pack", cache)
    assert result.missing is None and result.image is BASE
    links = chain(FP, steps, "pack", (8, 10))
    assert [link.key for link in links] == [None, None]


def test_keys_depend_on_input_instruction_pack_and_resolution():
    steps = [StepSpec("a", "one", 1.0, True)]
    key = chain(FP, steps, "pack", (8, 10))[0].key
    assert chain(FP, steps, "other", (8, 10))[0].key != key
    assert chain(FP, steps, "pack", (4, 5))[0].key != key
    assert chain("x", steps, "pack", (8, 10))[0].key != key
    assert chain(FP, [StepSpec("z", "one", 0.5, True)], "pack", (8, 10))[0].key == key


def test_cache_is_bounded_and_read_only():
    one = np.zeros((10, 10, 3), np.float32)
    cache = RenderCache(max_bytes=one.nbytes * 2)
    for i in range(4):
        cache.put_composite(str(i), np.full_like(one, i))
    assert cache.composite("0") is None and cache.composite("3") is not None
    assert cache.nbytes <= one.nbytes * 2
    with pytest.raises(ValueError):
        cache.composite("3")[0, 0, 0] = 1.0


def test_blend_strength_one_returns_restored_without_copy():
    y = np.ones((2, 2, 3), np.float32)
    assert blend(BASE[:2, :2], y, 1.0) is y
    np.testing.assert_allclose(blend(np.zeros_like(y), y, 0.25), 0.25)


def test_preview_size_and_resize():
    assert preview_size(100, 50, 200) is None
    assert preview_size(4000, 3000, 1000) == (1000, 750)
    small = resize_rgb(RNG.random((40, 60, 3), dtype=np.float32), (30, 20))
    assert small.shape == (20, 30, 3) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0


def test_pyramid_halves_down_to_min_edge():
    image = RNG.random((1000, 600, 3), dtype=np.float32)
    pyramid = build_pyramid(image, 2000, "fp", min_edge=128)
    sizes = [level.shape[:2] for level in pyramid.levels]
    assert sizes[0] == (1000, 600) and sizes[1] == (500, 300) and max(sizes[-1]) <= 128
    assert pyramid.scale == pytest.approx(0.3) and pyramid.levels[0].dtype == np.uint8


def test_thumbnail_is_small_rgb():
    thumb = thumbnail(RNG.random((300, 200, 3), dtype=np.float32), edge=64)
    assert max(thumb.shape[:2]) <= 64 and thumb.shape[2] == 3 and thumb.dtype == np.uint8
