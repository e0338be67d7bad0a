"""The local bridge over real HTTP on 127.0.0.1: jobs, tokens, limits, cancel, concurrency."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from instructir_desktop.bridge import server as bridge_mod
from instructir_desktop.bridge.info import read_bridge_info
from instructir_desktop.bridge.server import BridgeServer, plain_png
from instructir_desktop.cli import serve_forever
from instructir_desktop.core.errors import CancelledError
from instructir_desktop.core.images import (
    Photo,
    encode_image,
    load_image_bytes,
    to_uint8,
    to_uint16,
)

INSTRUCTION = "remove the noise"
NOT_AN_IMAGE = base64.b64encode(b"hello, not a photo").decode()


def make_photo(h: int = 24, w: int = 32, seed: int = 0, alpha: bool = False, depth: int = 8):
    rng = np.random.default_rng(seed)
    pixels = rng.random((h, w, 3), dtype=np.float32)
    a = rng.random((h, w), dtype=np.float32) if alpha else None
    scale = 65535.0 if depth == 16 else 255.0
    pixels = np.round(pixels * scale) / scale  # exactly representable at this depth
    if a is not None:
        a = np.round(a * scale) / scale
    return Photo(pixels.astype(np.float32), a, depth, None, None, "PNG")


def png_bytes(photo: Photo, fmt: str = "PNG") -> bytes:
    return encode_image(photo, fmt, bit_depth=photo.bit_depth)


def call(server, method, path, body=None, headers=None, token=True, timeout=30):
    """(status, headers, body) without raising on HTTP errors."""
    hdrs = dict(headers or {})
    if token is True:
        hdrs["X-InstructIR-Token"] = server.token
    elif isinstance(token, str):
        hdrs["X-InstructIR-Token"] = token
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(server.url + path, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def submit(server, photo, instruction=INSTRUCTION, **fields):
    """POST a job; applied as written unless the test says otherwise (the tiny test pack's
    head is not sure of anything)."""
    body = {
        "image": base64.b64encode(png_bytes(photo)).decode(),
        "instruction": instruction,
        "as_written": True,
    }
    body.update(fields)
    status, _, data = call(server, "POST", "/jobs", body)
    assert status == 202, data
    return json.loads(data)["id"]


def wait(server, job_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, data = call(server, "GET", f"/jobs/{job_id}")
        assert status == 200, data
        job = json.loads(data)
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def result(server, job_id, query=""):
    status, headers, data = call(server, "GET", f"/jobs/{job_id}/result{query}")
    assert status == 200, data
    assert headers["Content-Type"] == "image/png"
    return data


def expected(restorer, photo, instruction=INSTRUCTION, strength=1.0):
    image = photo.pixels if photo.alpha is None else np.dstack([photo.pixels, photo.alpha])
    return restorer.restore(image, instruction, strength=strength)


class SlowRestorer:
    """Delegates to the tiny restorer but takes ~10 s in 'tiles', checking cancel between."""

    def __init__(self, inner, tiles: int = 200) -> None:
        self.inner, self.tiles = inner, tiles
        self.pack_id = inner.pack_id
        self.started = threading.Event()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def describe(self):
        return self.inner.describe()

    def intent(self, text):
        return self.inner.intent(text)

    def plan(self, text):
        return self.inner.plan(text)

    def intent_row(self, text):
        return self.inner.intent_row(text)

    def restore(self, image, instruction, *, strength=1.0, progress=None, cancel=None):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.set()
        try:
            for i in range(self.tiles):
                if cancel is not None and cancel():
                    raise CancelledError("Cancelled.")
                if progress is not None:
                    progress(i / self.tiles, f"tile {i + 1}/{self.tiles}")
                time.sleep(0.05)
            return self.inner.restore(image, instruction, strength=strength)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def server(tiny_restorer):
    srv = BridgeServer(lambda pack: tiny_restorer)
    srv.start()
    yield srv
    srv.stop()


def test_good_job_matches_restorer(server, tiny_restorer):
    photo = make_photo()
    job_id = submit(server, photo)
    job = wait(server, job_id)
    assert job["state"] == "done", job
    assert (job["width"], job["height"], job["bit_depth"]) == (32, 24, 8)
    out = load_image_bytes(result(server, job_id))
    assert out.bit_depth == 8 and out.alpha is None
    want = to_uint8(expected(tiny_restorer, photo))
    np.testing.assert_array_equal(to_uint8(out.pixels), want)
    # The plug-in's fast variant holds the same pixels.
    plain = load_image_bytes(result(server, job_id, "?filter=none"))
    np.testing.assert_array_equal(to_uint8(plain.pixels), want)


def test_multipart_stack_of_instructions_with_strength(server, tiny_restorer):
    photo = make_photo(seed=3)
    boundary = "b0undary"
    parts = [
        ("instruction", "it is too dark"),
        ("instruction", INSTRUCTION),
        ("strength", "0.5"),
        ("as_written", "true"),
    ]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in parts
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png_bytes(photo)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, _, data = call(server, "POST", "/jobs", body, ctype)
    assert status == 202, data
    job = wait(server, json.loads(data)["id"])
    assert job["instructions"] == ["it is too dark", INSTRUCTION]
    out = load_image_bytes(result(server, job["id"]))
    step1 = tiny_restorer.restore(photo.pixels, "it is too dark", strength=0.5)
    want = tiny_restorer.restore(step1, INSTRUCTION, strength=0.5)
    np.testing.assert_array_equal(to_uint8(out.pixels), to_uint8(want))


def test_sixteen_bit_png_and_tiff_stay_sixteen_bit(server, tiny_restorer):
    photo = make_photo(depth=16, alpha=True, seed=5)
    for fmt in ("PNG", "TIFF"):
        image = base64.b64encode(png_bytes(photo, fmt)).decode()
        body = {"image": image, "instruction": "dehaze", "as_written": True}
        status, _, data = call(server, "POST", "/jobs", body)
        assert status == 202, data
        job = wait(server, json.loads(data)["id"])
        assert job["bit_depth"] == 16
        raw = result(server, job["id"])
        assert raw[24] == 16  # IHDR bit depth
        out = load_image_bytes(raw)
        assert out.bit_depth == 16
        want = expected(tiny_restorer, photo, "dehaze")
        np.testing.assert_array_equal(to_uint16(out.pixels), to_uint16(want[..., :3]))
        np.testing.assert_array_equal(to_uint16(out.alpha), to_uint16(photo.alpha))


def test_token_required_and_checked(server):
    for token in (None, "wrong-" + "x" * 40):
        status, _, data = call(server, "GET", "/jobs", token=token)
        assert status == 401
        assert "token" in json.loads(data)["error"]
        status, _, _ = call(server, "POST", "/jobs", {"image": "", "instruction": "x"}, token=token)
        assert status == 401
    status, _, _ = call(
        server, "GET", "/jobs", headers={"Authorization": f"Bearer {server.token}"}, token=None
    )
    assert status == 200


def test_health_shows_details_only_with_token(server):
    status, _, data = call(server, "GET", "/health", token=None)
    anonymous = json.loads(data)
    assert status == 200 and anonymous["ok"] and not anonymous["authorized"]
    assert "pack" not in anonymous and "token" not in data.decode()
    job = wait(server, submit(server, make_photo()))
    assert job["state"] == "done"
    health = json.loads(call(server, "GET", "/health")[2])
    assert health["authorized"] and health["pack"] == "tiny-test" and health["device"] == "cpu"
    assert health["model"] == "ready" and health["queued"] == 0


@pytest.mark.parametrize(
    ("body", "ctype", "status", "words"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (json.dumps({"instruction": "x"}).encode(), "application/json", 400, "image"),
        (json.dumps({"image": "@@@", "instruction": "x"}).encode(), None, 400, "base64"),
        (json.dumps({"image": NOT_AN_IMAGE, "instruction": "x"}).encode(), None, 400, "not a"),
        (b"x", "text/plain", 415, "multipart"),
        (b"--x--", "multipart/form-data; boundary=zz", 400, "multipart"),
        (b"--zz\r\n\r\nhi\r\n--zz--\r\n", "multipart/form-data; boundary=zz", 400, "'image'"),
    ],
)
def test_malformed_requests_get_400_with_message(server, body, ctype, status, words):
    got, _, data = call(
        server, "POST", "/jobs", body, {"Content-Type": ctype or "application/json"}
    )
    assert got == status
    assert words in json.loads(data)["error"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"instruction": "   "}, "non-empty"),
        ({"instructions": []}, "at least one"),
        ({"strength": 2}, "between 0 and 1"),
        ({"strength": True}, "between 0 and 1"),
        ({"pack": 5}, "pack"),
        ({"lease_s": 0}, "lease_s"),
    ],
)
def test_bad_job_fields(server, fields, words):
    body = {"image": base64.b64encode(png_bytes(make_photo())).decode(), "instruction": "x"}
    body.update(fields)
    status, _, data = call(server, "POST", "/jobs", body)
    assert status == 400
    assert words in json.loads(data)["error"]


def test_unknown_routes_and_jobs(server):
    assert call(server, "GET", "/nope")[0] == 404
    assert call(server, "GET", "/jobs/deadbeef")[0] == 404
    assert call(server, "PUT", "/jobs")[0] == 405
    assert call(server, "GET", "/jobs/deadbeef/result")[0] == 404


def test_oversized_body_is_refused_before_reading(tiny_restorer):
    srv = BridgeServer(lambda pack: tiny_restorer, max_body_bytes=4096)
    srv.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.putrequest("POST", "/jobs")
        conn.putheader("X-InstructIR-Token", srv.token)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(200 << 20))  # 200 MiB announced...
        conn.endheaders()
        conn.send(b"{" + b" " * 1000)  # ...but only a sliver sent: the server must not wait
        resp = conn.getresponse()
        assert resp.status == 413
        assert "too large" in json.loads(resp.read())["error"]
        conn.close()
        assert call(srv, "GET", "/health")[0] == 200
    finally:
        srv.stop()


def test_cancel_running_and_queued_jobs(tiny_restorer):
    slow = SlowRestorer(tiny_restorer)
    srv = BridgeServer(lambda pack: slow)
    srv.start()
    try:
        first = submit(srv, make_photo())
        second = submit(srv, make_photo(seed=1))
        assert slow.started.wait(10)
        queued = json.loads(call(srv, "GET", f"/jobs/{second}")[2])
        assert queued["state"] == "queued" and queued["position"] == 0
        status, _, data = call(srv, "POST", f"/jobs/{second}/cancel", b"{}")
        assert status == 200 and json.loads(data)["state"] == "cancelled"
        running = json.loads(call(srv, "GET", f"/jobs/{first}")[2])
        assert running["state"] == "running" and 0 <= running["progress"] < 1
        t0 = time.monotonic()
        assert call(srv, "POST", f"/jobs/{first}/cancel", b"{}")[0] == 200
        assert wait(srv, first)["state"] == "cancelled"
        assert time.monotonic() - t0 < 2.0
        status, _, data = call(srv, "GET", f"/jobs/{first}/result")
        assert status == 409 and json.loads(data)["state"] == "cancelled"
        assert call(srv, "DELETE", f"/jobs/{first}")[0] == 200
        assert call(srv, "GET", f"/jobs/{first}")[0] == 404
    finally:
        srv.stop()


def test_abandoned_job_is_cancelled_after_its_lease(tiny_restorer):
    slow = SlowRestorer(tiny_restorer)
    srv = BridgeServer(lambda pack: slow)
    srv.start()
    try:
        job_id = submit(srv, make_photo(), lease_s=1)
        assert slow.started.wait(10)
        time.sleep(1.6)  # nobody polls: like a plug-in GIMP killed
        job = srv._jobs[job_id]
        deadline = time.monotonic() + 5
        while job.state != "cancelled" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.state == "cancelled" and "abandoned" in job.message
    finally:
        srv.stop()


def test_several_clients_at_once_one_model_job_at_a_time(tiny_restorer):
    slow = SlowRestorer(tiny_restorer, tiles=4)
    srv = BridgeServer(lambda pack: slow)
    srv.start()
    photos = [make_photo(seed=10 + i) for i in range(5)]
    outcomes: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            job = wait(srv, submit(srv, photos[i], f"instruction number {i}"))
            assert job["state"] == "done", job
            outcomes[i] = to_uint8(load_image_bytes(result(srv, job["id"])).pixels)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert slow.max_active == 1
        for i, photo in enumerate(photos):
            want = tiny_restorer.restore(photo.pixels, f"instruction number {i}")
            np.testing.assert_array_equal(outcomes[i], to_uint8(want))
    finally:
        srv.stop()


def test_server_survives_garbage_and_internal_errors(server, monkeypatch):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"\x00\xff\xfe GARBAGE \r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(
            b"POST /jobs HTTP/1.1\r\nX-InstructIR-Token: " + server.token.encode()
            + b"\r\nContent-Length: 1000\r\n\r\n{\"ima"
        )  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(
            b"POST /jobs HTTP/1.1\r\nX-InstructIR-Token: " + server.token.encode()
            + b"\r\nContent-Length: lots\r\n\r\n"
        )  # fmt: skip
        assert b" 400 " in s.recv(4096)
    monkeypatch.setattr(server, "list_jobs", lambda: 1 / 0)
    status, _, data = call(server, "GET", "/jobs")
    assert status == 500 and "Internal error" in json.loads(data)["error"]
    assert call(server, "GET", "/health")[0] == 200
    job = wait(server, submit(server, make_photo()))
    assert job["state"] == "done"


def test_a_pack_that_is_not_installed_is_refused_and_a_broken_one_fails_its_job_only(
    tiny_restorer, tiny_pack
):
    from instructir_desktop.core.paths import data_dir

    shutil.copytree(tiny_pack, data_dir() / "packs" / "broken")  # installed, fails to load

    def get_restorer(pack):
        if pack == "broken":
            raise RuntimeError("boom")
        return tiny_restorer

    srv = BridgeServer(get_restorer)
    srv.start()
    try:
        assert wait(srv, submit(srv, make_photo()))["state"] == "done"
        image = base64.b64encode(png_bytes(make_photo())).decode()
        job = {"image": image, "instruction": INSTRUCTION, "pack": "missing"}
        status, _, data = call(srv, "POST", "/jobs", job)
        answer = json.loads(data)
        assert status == 400 and answer["pack"] == "missing"
        assert "'missing' is not installed" in answer["error"]
        assert "instructir-lite" in answer["error"] and "tiny-test" in answer["error"]
        assert answer["installed"] == ["broken", "instructir-lite", "tiny-test"]
        assert answer["error_type"] == "ModelNotInstalledError"
        status, _, data = call(srv, "POST", "/intent", {"text": "foggy", "pack": "missing"})
        assert status == 400 and "'missing' is not installed" in json.loads(data)["error"]
        assert srv.list_jobs()["jobs"][-1]["state"] == "done"  # nothing was queued
        health = json.loads(call(srv, "GET", "/health")[2])
        assert health["model"] == "ready" and health["pack"] == "tiny-test"

        job = wait(srv, submit(srv, make_photo(), pack="broken"))
        assert job["state"] == "failed" and job["error_type"] == "InternalError"
        health = json.loads(call(srv, "GET", "/health")[2])
        assert health["model"] == "not loaded" and health["model_error"] is None
        assert wait(srv, submit(srv, make_photo()))["state"] == "done"
        health = json.loads(call(srv, "GET", "/health")[2])
        assert health["model"] == "ready" and health["pack"] == "tiny-test"
    finally:
        srv.stop()


def test_intent_and_suggestions(server):
    status, _, data = call(server, "GET", "/intent")
    body = json.loads(data)
    assert status == 200 and len(body["tasks"]) == 7
    assert set(body["suggestions"]) == set(body["tasks"])
    status, _, data = call(server, "POST", "/intent", {"texts": ["too dark", "foggy"]})
    body = json.loads(data)
    assert status == 200 and len(body["results"]) == 2
    assert body["results"][0]["task"] in body["tasks"]
    assert call(server, "POST", "/intent", {"text": "  "})[0] == 400


def test_bridge_file_is_private_and_token_persists(tiny_restorer, tmp_path):
    path = tmp_path / "cfg" / "bridge.json"
    srv = BridgeServer(lambda pack: tiny_restorer, token_file=path)
    srv.start()
    info = read_bridge_info(path)
    assert info["running"] and info["port"] == srv.port and info["url"] == srv.url
    assert info["token"] == srv.token and len(srv.token) >= 32
    assert info["command"] and info["pid"] == os.getpid()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = srv.token
    srv.stop()
    info = read_bridge_info(path)
    assert info["running"] is False and info["pid"] is None
    again = BridgeServer(lambda pack: tiny_restorer, token_file=path)
    assert again.token == token


def test_plain_png_is_a_valid_png():
    samples = (np.arange(5 * 7 * 4).reshape(5, 7, 4) * 997) % 65536
    photo = load_image_bytes(plain_png(samples.astype(np.uint16)))
    assert photo.bit_depth == 16
    np.testing.assert_array_equal(to_uint16(photo.pixels), samples[..., :3])
    rgb8 = (np.arange(3 * 4 * 3).reshape(3, 4, 3) * 7 % 256).astype(np.uint8)
    np.testing.assert_array_equal(to_uint8(load_image_bytes(plain_png(rgb8)).pixels), rgb8)


def test_serve_forever_refuses_a_missing_pack(capsys):
    assert serve_forever("not-installed-pack", "cpu", 0) == 2
    assert "no model pack 'not-installed-pack'" in capsys.readouterr().err


def test_serve_forever_process_prints_url_and_stops_on_sigterm(tiny_pack, tmp_path):
    packs = Path(os.environ["INSTRUCTIR_DATA_DIR"]) / "packs" / "tiny-test"
    shutil.copytree(tiny_pack, packs)
    code = "import sys; from instructir_desktop.cli import serve_forever; "
    code += "sys.exit(serve_forever('tiny-test', 'cpu', 0))"
    root = Path(bridge_mod.__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split()[3]
        token = read_bridge_info()["token"]
        req = urllib.request.Request(url + "/health", headers={"X-InstructIR-Token": token})
        deadline = time.monotonic() + 180
        while True:
            health = json.loads(urllib.request.urlopen(req, timeout=5).read())
            if health.get("model") == "ready" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert health["model"] == "ready" and health["pack"] == "tiny-test"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert read_bridge_info()["running"] is False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_message_asking_for_several_fixes_runs_them_in_order():
    """With the real bundled pack: "too dark and grainy" is brightened, then denoised."""
    from instructir_desktop.core.packs import LITE_ID
    from instructir_desktop.core.resources import resource_path
    from instructir_desktop.core.restorer import Restorer

    pack = resource_path("packs", LITE_ID)
    if not (pack / "manifest.json").is_file():
        pytest.skip("no bundled pack")
    lite = Restorer(pack, device="cpu", backend="torch")
    srv = BridgeServer(lambda pack: lite)
    srv.start()
    try:
        message = "it's too dark and grainy"
        status, _, data = call(srv, "POST", "/intent", {"texts": [message]})
        steps = json.loads(data)["results"][0]["steps"]
        assert [(s["task"], s["text"]) for s in steps] == [
            ("lowlight", "it's too dark"),
            ("denoise", "grainy"),
        ]
        photo = make_photo(seed=5)
        job = wait(srv, submit(srv, photo, instruction=message))
        assert job["state"] == "done", job
        want = lite.restore(lite.restore(photo.pixels, "it's too dark"), "grainy")
        out = load_image_bytes(result(srv, job["id"]))
        np.testing.assert_array_equal(to_uint8(out.pixels), to_uint8(want))
    finally:
        srv.stop()


def test_an_unclear_instruction_is_refused_unless_applied_as_written(server, tiny_restorer):
    """The app's confidence gate: the tiny pack's head is sure of nothing."""
    photo = make_photo(seed=8)
    intent = tiny_restorer.intent(INSTRUCTION)
    assert intent.confidence < 0.5
    job = wait(server, submit(server, photo, as_written=False))
    assert job["state"] == "failed" and job["error_type"] == "UnclearInstructionError"
    assert "unclear" in job["error"] and f"{intent.confidence * 100:.0f}%" in job["error"]
    job = wait(server, submit(server, photo, as_written=True))
    assert job["state"] == "done"
