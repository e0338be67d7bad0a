"""Progressive rendering: a small first level, then the preview, then full resolution, each
replacing the last on the canvas; a smaller or older frame never replaces a larger one."""

from __future__ import annotations

import time

import numpy as np
import pytest
import test_ui_editing
from test_ui_editing import WAIT, idle, make_photo, open_and_wait, type_instruction

from instructir_desktop.app import files
from instructir_desktop.app.render import Frame
from instructir_desktop.core.errors import CancelledError
from instructir_desktop.core.jobs import Cancelled, Failed, Finished

make_window = test_ui_editing.make_window  # windows on the tiny pack


@pytest.fixture
def three_levels(monkeypatch, make_window, tmp_path, qtbot):
    """A window with a 128 x 96 photo open as three levels: first (32 px), preview (64), full."""
    monkeypatch.setattr(files, "FIRST_EDGE", 32)
    window = make_window(preview_edge=64)
    open_and_wait(qtbot, window, make_photo(tmp_path / "photo.png", size=(128, 96)))
    return window


def record_canvas(window, monkeypatch) -> list[tuple[tuple, float, int]]:
    """Every composite the canvas is given: (the document it shows, its scale, layer count)."""
    shown: list[tuple[tuple, float, int]] = []
    scheduler, canvas = window.session.scheduler, window.canvas
    original = canvas.set_after

    def set_after(pyramid):
        state = tuple(scheduler.current_fp(lv.name) for lv in scheduler.levels)
        shown.append((state, pyramid.scale, len(window.session.document.layers)))
        original(pyramid)

    monkeypatch.setattr(canvas, "set_after", set_after)
    return shown


def test_prepare_adds_a_first_level_only_well_below_the_next(monkeypatch, tmp_path):
    from instructir_desktop.app.document import Source
    from instructir_desktop.core.images import load_image

    def names(size, preview_edge):
        path = make_photo(tmp_path / f"p{size[0]}.png", size=size)
        photo = load_image(path)
        levels, _ = files.prepare(Source(photo, path.read_bytes(), path.name, path), preview_edge)
        return [(lv.name, max(lv.size)) for lv in levels]

    monkeypatch.setattr(files, "FIRST_EDGE", 40)
    assert names((200, 150), 100) == [("first", 40), ("preview", 100), ("full", 200)]
    assert names((200, 150), 50) == [("preview", 50), ("full", 200)]  # 50 < 1.5 x 40
    assert names((80, 60), 100) == [("first", 40), ("full", 80)]
    assert names((50, 40), 100) == [("full", 50)]


def test_instruction_renders_first_then_preview_then_full(qtbot, three_levels, monkeypatch):
    window = three_levels
    session, scheduler, doc = window.session, window.session.scheduler, window.session.document
    assert [lv.name for lv in scheduler.levels] == ["first", "preview", "full"]
    shown = record_canvas(window, monkeypatch)
    frames: list[tuple[str, tuple, int, bool]] = []
    scheduler.frameReady.connect(
        lambda f: frames.append(
            (
                f.level,
                f.image.shape[:2],
                len(doc.layers),
                bool(doc.layers) and doc.layers[-1].id in session.thumbnails,
            )
        )
    )

    worker = scheduler.worker
    asked: list[tuple[tuple, bool]] = []  # (image size, quick) of each restore asked for
    restore = worker.restore

    def recording_restore(image, instruction, **kwargs):
        asked.append((image.shape[:2], kwargs.get("quick", False)))
        return restore(image, instruction, **kwargs)

    monkeypatch.setattr(worker, "restore", recording_restore)
    type_instruction(qtbot, window, "remove the noise please")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)

    # Only the first level may run in a standard tile shape (a glimpse, not the release's
    # exact computation); the preview and the full resolution never do.
    assert asked == [((24, 32), True), ((48, 64), False), ((96, 128), False)]
    # The layer and its thumbnail come with the first level; then each larger level follows.
    assert frames == [
        ("first", (24, 32), 1, True),
        ("preview", (48, 64), 1, True),
        ("full", (96, 128), 1, True),
    ]
    with_layer = [scale for _, scale, layers in shown if layers == 1]
    assert with_layer == [0.25, 0.5, 1.0]  # each replaced the last on the canvas
    assert window.canvas._after is scheduler.frame("full").pyramid


def test_smaller_or_older_frames_never_replace_a_larger_one(qtbot, three_levels, monkeypatch):
    window = three_levels
    session, scheduler, doc = window.session, window.session.scheduler, window.session.document
    type_instruction(qtbot, window, "remove the noise please")
    qtbot.waitUntil(lambda: len(doc.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    shown = record_canvas(window, monkeypatch)
    emitted: list[str] = []
    scheduler.frameReady.connect(lambda f: emitted.append(f.level))

    # A first-level frame of the shown document that arrives late is kept, never shown.
    full = scheduler.frame("full")
    first = scheduler.frame("first")
    scheduler._frames.pop("first")
    scheduler._on_frame(Frame("first", first.fingerprint, first.image, first.pyramid))
    assert emitted == [] and scheduler.best_frame() is full
    assert window.canvas._after is full.pyramid

    # A frame of a document that has moved on is dropped.
    layer_id = doc.layers[0].id
    session.set_strength(layer_id, 0.5)
    stale = Frame("full", full.fingerprint, full.image, full.pyramid)
    scheduler._on_frame(stale)
    assert scheduler._frames["full"] is full and emitted == []
    idle(qtbot, window)
    half = scheduler.frame("full").image
    assert not np.array_equal(half, full.image)

    # Strength changes and an undo: per document shown, the scale only grows.
    session.set_strength(layer_id, 0.2)
    idle(qtbot, window)
    window.undo_action.trigger()
    idle(qtbot, window)
    assert shown, "the canvas was never updated"
    for (state, scale, _), (next_state, next_scale, _) in zip(shown, shown[1:]):
        if state == next_state:
            assert next_scale >= scale
    assert shown[-1][1] == 1.0 and window.canvas._after is scheduler.frame("full").pyramid


def test_an_undo_cancels_the_full_render_it_no_longer_needs(qtbot, three_levels):
    """The full-resolution render of a layer that was undone stops at its next tile; the
    canvas ends on the document as it is, at full resolution."""
    window = three_levels
    session, scheduler, doc = window.session, window.session.scheduler, window.session.document
    restorer = session.worker.host.restorer
    full_size = scheduler.levels[-1].base.shape[:2]
    inner = restorer.restore
    started = []

    def endless_at_full_size(image, instruction, *, progress=None, cancel=None, **kw):
        if image.shape[:2] != full_size:
            return inner(image, instruction, progress=progress, cancel=cancel, **kw)
        started.append(instruction)
        for i in range(3000):  # about a minute unless cancelled: only a cancel ends it
            if cancel is not None and cancel():
                raise CancelledError("Cancelled.")
            if progress is not None:
                progress(min(0.99, i / 3000), f"tile {i + 1}")
            time.sleep(0.02)
        raise AssertionError("the full render was not cancelled")

    restorer.restore = endless_at_full_size
    events: list = []
    session.worker.event.connect(events.append)
    type_instruction(qtbot, window, "remove the noise please")
    qtbot.waitUntil(lambda: len(doc.layers) == 1 and bool(started), timeout=WAIT)
    assert scheduler.activity == "full"
    job_id = scheduler._job.job_id
    assert scheduler.frame("preview") is not None  # the preview is shown meanwhile
    window.undo_action.trigger()
    qtbot.waitUntil(
        lambda: any(isinstance(e, Cancelled) and e.job_id == job_id for e in events),
        timeout=10_000,
    )
    idle(qtbot, window)
    assert not doc.layers and not any(
        isinstance(e, (Finished, Failed)) and e.job_id == job_id for e in events
    )
    assert scheduler.best_frame().level == "full"
    assert window.canvas._after is scheduler.frame("full").pyramid


def test_the_model_gets_ready_for_first_renders_before_and_after_a_photo_opens(
    qtbot, make_window, monkeypatch, tmp_path
):
    """With no photo open, the loaded model gets the first render of any 4:3 photo ready (the
    standard shapes); a photo's first level is then asked for as a quick render."""
    from instructir_desktop.core.tiling import QUICK_BOXES

    window = make_window(preview_edge=64)
    scheduler = window.session.scheduler
    calls: list[tuple[list, list]] = []
    monkeypatch.setattr(
        scheduler.worker, "prepare", lambda sizes, tile, quick: calls.append((sizes, quick))
    )
    scheduler.configure(pack=scheduler.pack or "tiny", tile=None)
    assert calls[-1] == ([], list(QUICK_BOXES))
    monkeypatch.setattr(files, "FIRST_EDGE", 32)
    open_and_wait(qtbot, window, make_photo(tmp_path / "photo.png", size=(128, 96)))
    assert calls[-1] == ([(48, 64), (96, 128)], [(24, 32)])
