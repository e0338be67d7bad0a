"""The one job pipeline (core/jobs.py): typed events, priorities, cancel, intents between
tiles, the confidence gate, and failures that leave the model thread running."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from instructir_desktop.core.errors import CancelledError, UnclearInstructionError
from instructir_desktop.core.jobs import (
    PRIORITY,
    Cancelled,
    Failed,
    Finished,
    IntentRequest,
    JobKind,
    JobQueue,
    LoadRequest,
    ModelHost,
    Progress,
    RestoreRequest,
    Started,
    Step,
    StepDone,
)


def photo(h=48, w=64, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


class Recorder:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, ev):
        with self.lock:
            self.events.append(ev)

    def of(self, job_id):
        with self.lock:
            return [e for e in self.events if e.job_id == job_id]


class Gated:
    """A restorer stand-in whose restore waits for ``release`` between its 'tiles'."""

    def __init__(self, inner, tiles=50):
        self.inner, self.tiles = inner, tiles
        self.pack_id = inner.pack_id
        self.started = threading.Event()
        self.release = threading.Event()
        self.seen_intents_during_restore = 0
        self.restoring = False

    def intent(self, text):
        if self.restoring:
            self.seen_intents_during_restore += 1
        return self.inner.intent(text)

    def plan(self, text):
        return self.inner.plan(text)

    def intent_row(self, text):
        return self.inner.intent_row(text)

    def restore(self, image, instruction, *, strength=1.0, progress=None, cancel=None):
        self.started.set()
        self.restoring = True
        try:
            for i in range(self.tiles):
                if cancel():
                    raise CancelledError("Cancelled.")
                progress((i + 1) / self.tiles, f"tile {i + 1}/{self.tiles}")
                self.release.wait(0.02)
            return self.inner.restore(image, instruction, strength=strength)
        finally:
            self.restoring = False


@pytest.fixture
def queue(tiny_restorer):
    rec = Recorder()
    q = JobQueue(ModelHost(lambda request: tiny_restorer), listener=rec)
    q.recorder = rec
    q.start()
    yield q
    q.stop()


def test_a_restore_applies_its_steps_in_order_and_reports_typed_events(queue, tiny_restorer):
    img = photo()
    request = RestoreRequest(img, [Step("denoise"), Step("too dark", 0.5)], tile=32)
    job = queue.submit(JobKind.RESTORE, request, tag="t")
    out = job.result(60)
    manual = tiny_restorer.restore(
        tiny_restorer.restore(img, "denoise", tile=32), "too dark", strength=0.5, tile=32
    )
    np.testing.assert_array_equal(out, manual)
    events = queue.recorder.of(job.job_id)
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    assert all(e.kind is JobKind.RESTORE and e.tag == "t" for e in events)
    steps_done = [e for e in events if isinstance(e, StepDone)]
    assert [(e.step, e.steps, e.instruction) for e in steps_done] == [
        (1, 2, "denoise"),
        (2, 2, "too dark"),
    ]
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].fraction == pytest.approx(1.0)
    assert all(e.tiles > 1 and 1 <= e.tile <= e.tiles and e.steps == 2 for e in progress)
    assert [e.fraction for e in progress] == sorted(e.fraction for e in progress)


def test_the_queue_runs_the_most_urgent_job_first(tiny_restorer):
    rec = Recorder()
    q = JobQueue(ModelHost(lambda request: tiny_restorer), listener=rec)
    full = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("a")]), priority=3)
    preview = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("b")]), priority=2)
    intent = q.submit(JobKind.INTENT, IntentRequest("too dark"))
    assert [j.job_id for j in q.pending()] == [intent.job_id, preview.job_id, full.job_id]
    q.start()
    try:
        full.result(60)
        finished = [e.job_id for e in rec.events if isinstance(e, Finished)]
        assert finished == [intent.job_id, preview.job_id, full.job_id]
    finally:
        q.stop()


def test_cancel_stops_a_running_restore_between_tiles_and_a_queued_one(tiny_restorer):
    gated = Gated(tiny_restorer)
    rec = Recorder()
    q = JobQueue(ModelHost(lambda request: gated), listener=rec).start()
    try:
        running = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")]))
        waiting = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("y")]))
        assert gated.started.wait(30)
        q.cancel(waiting.job_id)
        q.cancel(running.job_id)
        for job in (running, waiting):
            with pytest.raises(CancelledError):
                job.result(30)
            assert isinstance(rec.of(job.job_id)[-1], Cancelled)
        assert not any(isinstance(e, Finished) for e in rec.events)
    finally:
        q.stop()


def test_an_intent_is_answered_between_the_tiles_of_a_long_restore(tiny_restorer):
    gated = Gated(tiny_restorer, tiles=400)
    q = JobQueue(ModelHost(lambda request: gated)).start()
    try:
        restore = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")]))
        assert gated.started.wait(30)
        t0 = time.monotonic()
        plan = q.submit(JobKind.INTENT, IntentRequest("too dark", split=False)).result(30)
        assert time.monotonic() - t0 < 5 and not restore.done.is_set()
        assert plan[0].task == tiny_restorer.intent("too dark").task
        assert gated.seen_intents_during_restore == 1
        gated.release.set()
        restore.result(60)
    finally:
        q.stop()


def test_the_gate_refuses_an_unclear_instruction(queue, tiny_restorer):
    assert tiny_restorer.intent("remove the noise").confidence < 0.5
    request = RestoreRequest(photo(), [Step("remove the noise")], min_confidence=0.5)
    job = queue.submit(JobKind.RESTORE, request)
    with pytest.raises(UnclearInstructionError, match="unclear"):
        job.result(30)
    failed = queue.recorder.of(job.job_id)[-1]
    assert isinstance(failed, Failed) and failed.error_type == "UnclearInstructionError"
    request.min_confidence = None
    assert queue.submit(JobKind.RESTORE, request).result(60).shape == (48, 64, 3)


def test_failures_are_typed_and_the_model_thread_goes_on(tiny_restorer):
    def loader(request):
        if request.pack_id == "broken":
            raise RuntimeError("boom")
        return tiny_restorer

    rec = Recorder()
    q = JobQueue(ModelHost(loader), listener=rec).start()
    try:
        bad = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")], pack="broken"))
        with pytest.raises(Exception, match="boom"):
            bad.result(30)
        failed = rec.of(bad.job_id)[-1]
        assert isinstance(failed, Failed) and failed.error_type == "InternalError"
        # The pack the job named is broken, not the default model.
        assert q.host.describe()["model"] == "not loaded" and q.host.error is None
        empty = q.submit(JobKind.RESTORE, RestoreRequest(photo(), []))
        with pytest.raises(Exception, match="at least one"):
            empty.result(30)
        ok = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")]))
        assert ok.result(60).shape == (48, 64, 3)
        assert q.host.state == "ready"
        again = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")], pack="broken"))
        with pytest.raises(Exception, match="boom"):
            again.result(30)
        assert q.host.state == "not loaded"
        assert q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")])).result(60).size
        assert q.host.describe()["model"] == "ready"
    finally:
        q.stop()


def test_a_default_model_that_fails_to_load_is_reported_broken(tiny_restorer):
    def loader(request):
        if request.pack_id in (None, "broken"):
            raise RuntimeError("boom")
        return tiny_restorer

    q = JobQueue(ModelHost(loader, default_pack="broken")).start()
    try:
        load = q.submit(JobKind.LOAD, LoadRequest(None, "broken"))
        with pytest.raises(Exception, match="boom"):
            load.result(30)
        assert q.host.describe() == {"model": "error", "model_error": "boom"}
        job = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")]))
        with pytest.raises(Exception, match="boom"):
            job.result(30)
        assert q.host.state == "error"
    finally:
        q.stop()


def test_load_reports_the_catalog_first_then_the_model(tiny_pack):
    rec = Recorder()
    q = JobQueue(listener=rec)
    description = q.run(JobKind.LOAD, LoadRequest(tiny_pack, device="cpu", backend="torch"))
    started = rec.events[0]
    assert isinstance(started, Started) and "lowlight" in started.info["tasks"]
    assert description["pack"] == q.host.restorer.pack_id and description["seconds"] >= 0
    assert q.host.describe()["model"] == "ready"


def test_stop_cancels_what_waits(tiny_restorer):
    rec = Recorder()
    q = JobQueue(ModelHost(lambda request: tiny_restorer), listener=rec)
    jobs = [q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")])) for _ in range(3)]
    q.start()
    q.stop()
    for job in jobs:
        assert job.done.wait(30)
    with pytest.raises(Exception, match="shutting down"):
        q.submit(JobKind.INTENT, IntentRequest("x"))
    assert PRIORITY["intent"] < PRIORITY["preview"] < PRIORITY["full"]


def test_what_the_restorer_did_to_fit_in_memory_reaches_the_listener(tiny_restorer):
    class Squeezed(Gated):
        notices = ["Out of GPU memory: ran with 256-px tiles."]

    rec = Recorder()
    q = JobQueue(ModelHost(lambda request: Squeezed(tiny_restorer, tiles=2)), listener=rec)
    job = q.submit(JobKind.RESTORE, RestoreRequest(photo(), [Step("x")]))
    q.start()
    try:
        job.result(30)
        notes = [e.message for e in rec.of(job.job_id) if type(e).__name__ == "Notice"]
        assert notes == ["Out of GPU memory: ran with 256-px tiles."]
    finally:
        q.stop()
