"""The plug-in's GIMP-independent helpers (tests/test_gimp_plugin.py has the procedure and
the dialog): the bridge client (finding, starting and proving the bridge), the words put to the
user, the PNG codec and layer arithmetic."""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import test_gimp_plugin
from fake_gi import (
    FakeImage,
)
from PIL import Image

from instructir_desktop.bridge.info import read_bridge_info, write_bridge_info
from instructir_desktop.bridge.server import BridgeServer
from instructir_desktop.core.errors import CancelledError
from instructir_desktop.core.images import encode_image, load_image_bytes, to_uint8, to_uint16
from instructir_desktop.core.packs import TASK_PROMPTS, TASKS

# The plug-in and a real bridge, as tests/test_gimp_plugin.py sets them up.
plugin = test_gimp_plugin.plugin
client = test_gimp_plugin.client
reader = test_gimp_plugin.reader
server = test_gimp_plugin.server
free_port = test_gimp_plugin.free_port
make_layer = test_gimp_plugin.make_layer
run = test_gimp_plugin.run


# ---------------------------------------------------------------- the client and the codec


def test_tasks_match_core(client):
    assert client.TASKS == TASKS and client.TASK_PROMPTS == TASK_PROMPTS
    assert set(client.TASK_LABELS) == set(TASKS)


def test_read_intent_uses_the_bridges_gate(client):
    one = {"task": "lowlight", "confidence": 0.984}
    clear = client.read_intent({"results": [one], "min_confidence": 0.5})
    assert (clear.line, clear.unclear) == ("Understood as: Too dark (98%)", False)
    steps = [{"task": "lowlight", "confidence": 0.9}, {"task": "denoise", "confidence": 0.8}]
    split = client.read_intent({"results": [{**one, "steps": steps}]})
    assert (split.line, split.unclear) == ("Understood as: Too dark, then Noise", False)
    assert client.read_intent({"results": [{}]}).line == ""
    unsure = client.read_intent({"results": [{"task": "dehaze", "confidence": 0.21}]})
    assert unsure.unclear and unsure.line.startswith("Not sure what to fix (Haze / fog, 21%)")
    assert "Apply as written" in unsure.line
    stricter = client.read_intent({"results": [one], "min_confidence": 0.99})
    assert stricter.unclear  # the bridge's threshold wins over the built-in one
    note = "InstructIR cannot darken a photo."
    darken = client.read_intent({"results": [{**one, "note": note}]})
    assert darken.unclear and darken.line.startswith(note) and "Too dark" not in darken.line
    flagged = [{"task": "lowlight", "confidence": 0.9, "note": note}, steps[1]]
    assert client.read_intent({"results": [{**one, "steps": flagged}]}).unclear


def test_gate_matches_core(client):
    from instructir_desktop.core.packs import DEFAULT_MIN_CONFIDENCE

    assert client.MIN_CONFIDENCE == DEFAULT_MIN_CONFIDENCE


def test_layer_name_and_rect_and_depth(client):
    assert client.layer_name("  too   dark ") == "IR: too dark"
    long = client.layer_name("word " * 40)
    assert long == "IR: word word word word…"  # cut at a word, fits the Layers dock
    assert len(client.layer_name("x" * 40)) == len("IR: ") + 24
    assert client.layer_name(TASK_PROMPTS["denoise"]) == "IR: Noise"
    assert client.undo_name("too  dark") == "InstructIR: too dark"
    assert len(client.undo_name("word " * 40)) == len("InstructIR: ") + 60
    assert client.intersect_rect((True, 1, 2, 3, 4)) == (1, 2, 3, 4)
    assert client.intersect_rect((False, 0, 0, 0, 0)) is None
    assert client.intersect_rect((1, 2, 3, 4)) == (1, 2, 3, 4)
    assert not client.is_high_bit_depth(SimpleNamespace(value_name="GIMP_PRECISION_U8_LINEAR"))
    for p in ("U16_NON_LINEAR", "U32_LINEAR", "HALF_LINEAR", "FLOAT_PERCEPTUAL", "DOUBLE_LINEAR"):
        assert client.is_high_bit_depth(SimpleNamespace(value_name=f"GIMP_PRECISION_{p}"))


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_codec_round_trips_and_reads_pillow_filters(client, depth, channels):
    rng = np.random.default_rng(depth * 10 + channels)
    dtype = np.uint16 if depth == 16 else np.uint8
    samples = rng.integers(0, 1 << depth, (9, 13, channels), dtype=np.int64).astype(dtype)
    be = samples.astype(">u2").tobytes() if depth == 16 else samples.tobytes()
    png = client.encode_png(13, 9, be, depth, channels)
    assert client.decode_png(png) == (13, 9, depth, channels, be)
    photo = load_image_bytes(png)  # a real decoder agrees
    np.testing.assert_array_equal(
        (to_uint16 if depth == 16 else to_uint8)(photo.pixels),
        samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=2),
    )
    rgba = np.frombuffer(
        client.png_samples_to_gegl(be, depth, channels, 9 * 13), "=" + dtype().dtype.str[1:]
    )
    rgba = rgba.reshape(9, 13, 4)
    colour = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=2)
    np.testing.assert_array_equal(rgba[..., :3], colour)
    alpha = samples[..., -1] if channels in (2, 4) else (1 << depth) - 1
    np.testing.assert_array_equal(rgba[..., 3], alpha)


def test_png_decoder_handles_all_filter_types(client):
    rng = np.random.default_rng(7)
    smooth = np.cumsum(rng.integers(0, 4, (20, 17, 4)), axis=1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(smooth, "RGBA").save(buf, "PNG")  # Pillow picks filters per row
    raw = buf.getvalue()
    w, h, depth, channels, samples = client.decode_png(raw)
    assert (w, h, depth, channels) == (17, 20, 8, 4)
    assert samples == smooth.tobytes()
    sixteen = encode_image(load_image_bytes(raw), "PNG", bit_depth=16)  # core's writer
    assert client.decode_png(sixteen)[2] == 16
    with pytest.raises(client.BridgeError):
        client.decode_png(b"not a png")


def test_gegl_samples_become_big_endian(client):
    native = np.array([1, 258, 65535], "=u2").tobytes()
    assert client.gegl_to_png_samples(native, 16) == np.array([1, 258, 65535], ">u2").tobytes()
    assert client.gegl_to_png_samples(b"\x01\x02", 8) == b"\x01\x02"


def test_find_bridge_info_order(client, tmp_path, monkeypatch):
    monkeypatch.delenv("INSTRUCTIR_CONFIG_DIR")
    home = tmp_path / "home"
    plugin_dir = tmp_path / "plug-in"
    plugin_dir.mkdir()
    env = {"HOME": str(home)}
    assert client.find_bridge_info(plugin_dir, env) is None
    location = {"token": "L" * 43, "port": 1111, "command": ["/opt/instructir"]}
    (plugin_dir / "bridge-location.json").write_text(json.dumps(location))
    info = client.find_bridge_info(plugin_dir, env)
    assert (info.token, info.port, info.command) == ("L" * 43, 1111, ["/opt/instructir"])
    default = home / ".config" / "InstructIR" / "bridge.json"
    default.parent.mkdir(parents=True)
    default.write_text(json.dumps({"token": "D" * 43, "url": "http://127.0.0.1:2222"}))
    info = client.find_bridge_info(plugin_dir, env)
    assert (info.token, info.port, info.command) == ("D" * 43, 2222, ["/opt/instructir"])
    recorded = tmp_path / "real" / "bridge.json"
    recorded.parent.mkdir()
    recorded.write_text(json.dumps({"token": "R" * 43, "port": 3333, "command": ["x"]}))
    location["config_file"] = str(recorded)
    (plugin_dir / "bridge-location.json").write_text(json.dumps(location))
    assert client.find_bridge_info(plugin_dir, env).token == "R" * 43
    override = tmp_path / "override"
    override.mkdir()
    (override / "bridge.json").write_text(json.dumps({"token": "E" * 43}))
    env["INSTRUCTIR_CONFIG_DIR"] = str(override)
    info = client.find_bridge_info(plugin_dir, env)
    assert info.token == "E" * 43 and info.port == client.DEFAULT_PORT


def test_default_config_dir_matches_platformdirs(client, monkeypatch):
    import platformdirs

    monkeypatch.delenv("INSTRUCTIR_CONFIG_DIR")
    env = dict(os.environ)
    env.pop("XDG_CONFIG_HOME", None)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    if sys.platform.startswith("linux"):
        assert client.default_config_dir(env) == Path(
            platformdirs.user_config_dir("InstructIR", "InstructIR")
        )
    win = client.default_config_dir({"LOCALAPPDATA": "C:/Users/a/AppData/Local"}, "win32")
    assert win == Path("C:/Users/a/AppData/Local/InstructIR/InstructIR")
    mac = client.default_config_dir({"HOME": "/Users/a"}, "darwin")
    assert mac == Path("/Users/a/Library/Application Support/InstructIR")


def test_connect_starts_the_bridge_and_waits(client, reader, tmp_path):
    port = free_port()
    write_bridge_info({"token": "s" * 43, "port": port})
    info = client.BridgeInfo(
        f"http://127.0.0.1:{port}", "s" * 43, ["instructir"], tmp_path / "b.json"
    )
    started = []

    def popen(argv, log):
        srv = BridgeServer(lambda pack: reader, port=port)
        srv.start()
        started.append((argv, srv))
        return SimpleNamespace(poll=lambda: None)

    messages = []
    bridge = client.connect(
        info, popen=popen, sleep=lambda s: time.sleep(0.01), on_wait=messages.append
    )
    try:
        assert started[0][0] == ["instructir", "serve", "--port", str(port)]
        assert bridge.health()["authorized"] and messages == ["Starting the InstructIR bridge…"]
    finally:
        started[0][1].stop()


_SERVE = """
import sys
from instructir_desktop.bridge.server import BridgeServer
port = int(sys.argv[1])
srv = BridgeServer(lambda pack: None, port=port)
srv.well_known_port = port
srv.start()
print("up", flush=True)
sys.stdin.readline()
srv.stop()
print("stopped", flush=True)
"""


def test_a_bridge_on_another_port_leaves_a_live_bridges_record_alone(client, plugin, reader):
    """``instructir serve`` (a child process) holds the well-known port; the app's bridge
    falls back to any port. The plug-in keeps finding the live bridge, after the app quits
    too, and uses the app's once ``serve`` stops, never starting one of its own."""
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def no_second_bridge(argv, log):
        raise AssertionError(f"the plug-in started a bridge: {argv}")

    def plugin_finds():
        info = client.find_bridge_info(plugin.PLUGIN_DIR)
        bridge = client.connect(info, popen=no_second_bridge, wait_s=1)
        assert bridge.health()["authorized"]
        return bridge.port

    def app_bridge():
        with pytest.raises(OSError):  # as app/bridge_host.py does: the well-known port first
            BridgeServer(lambda pack: reader, port=port).start()
        srv = BridgeServer(lambda pack: reader)
        srv.well_known_port, srv.file_check_s = port, 0.05
        srv.start()
        return srv

    app = None
    try:
        assert serve.stdout.readline().strip() == "up"
        app = app_bridge()
        assert app.port != port and not app.recorded
        info = read_bridge_info()
        assert (info["port"], info["pid"], info["running"]) == (port, serve.pid, True)
        assert plugin_finds() == port
        app.stop()  # the app quits: the file still names the live bridge
        info = read_bridge_info()
        assert (info["port"], info["pid"], info["running"]) == (port, serve.pid, True)
        assert plugin_finds() == port

        app = app_bridge()
        serve.stdin.write("\n")
        serve.stdin.flush()
        assert serve.stdout.readline().strip() == "stopped"
        deadline = time.monotonic() + 10
        while not app.recorded:  # the app's bridge takes the file over
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert plugin_finds() == app.port
    finally:
        if app is not None:
            app.stop()
        serve.kill()
        serve.wait(10)
        serve.stdin.close()
        serve.stdout.close()
    assert read_bridge_info()["running"] is False


def test_connect_reports_a_bridge_that_dies(client, tmp_path):
    port = free_port()
    info = client.BridgeInfo(
        f"http://127.0.0.1:{port}", "t" * 43, ["instructir"], tmp_path / "b.json"
    )

    def popen(argv, log):
        log.write_text("instructir serve: The model pack 'instructir-lite' is not installed.\n")
        return SimpleNamespace(poll=lambda: 2)

    with pytest.raises(client.BridgeNotRunning, match="is not installed"):
        client.connect(info, popen=popen, sleep=lambda s: None, wait_s=5)
    with pytest.raises(client.BridgeNotRunning, match="could not start"):
        client.connect(
            info, popen=lambda argv, log: (_ for _ in ()).throw(OSError("no such file")), wait_s=1
        )


def test_run_job_cancel_posts_cancel(client, tiny_restorer):
    class WaitsForCancel:
        pack_id = "tiny-test"

        def plan(self, text):
            return [SimpleNamespace(text=text)]

        def restore(self, image, instruction, *, strength=1.0, progress=None, cancel=None):
            deadline = time.monotonic() + 10
            while not cancel() and time.monotonic() < deadline:
                time.sleep(0.02)
            raise CancelledError("Cancelled.")

    srv = BridgeServer(lambda pack: WaitsForCancel())
    srv.start()
    try:
        bridge = client.BridgeClient(srv.url, srv.token)
        png = client.encode_png(8, 8, bytes(8 * 8 * 4), 8)
        polls = iter([False, False, True])
        with pytest.raises(client.JobCancelled):
            client.run_job(
                bridge, png, "denoise", 1.0, as_written=True, should_cancel=lambda: next(polls)
            )
        assert srv.list_jobs()["jobs"] == []  # cancelled, then deleted by the client
    finally:
        srv.stop()


# ---------------------------------------------------------------- the bridge proves itself


class Squatter(http.server.BaseHTTPRequestHandler):
    """Another program on the bridge's port that answers like a bridge and records requests."""

    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Squatter.seen.append((self.command, self.path, dict(self.headers), len(body)))
        data = json.dumps(
            {"ok": True, "authorized": True, "id": "x", "state": "done", "results": []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-InstructIR-Proof", "0" * 64)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer


def test_a_squatter_on_the_port_never_gets_the_token_or_the_layer(plugin):
    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Squatter)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    Squatter.seen = []
    token = "k" * 43
    try:
        port = squatter.server_address[1]
        write_bridge_info({"token": token, "port": port, "url": f"http://127.0.0.1:{port}"})
        image = FakeImage()
        status, error = run(plugin, image, make_layer(image))
    finally:
        squatter.shutdown()
        squatter.server_close()
    assert status == "execution-error" and "not the InstructIR bridge" in error
    assert len(image.layers) == 1
    assert Squatter.seen and all(method == "GET" for method, *_ in Squatter.seen)
    for _, _, headers, size in Squatter.seen:
        assert size == 0 and token not in json.dumps(headers)


def test_every_answer_must_carry_the_proof(client, server, monkeypatch):
    bridge = client.BridgeClient(server.url, server.token)
    assert bridge.verify()["ok"] and bridge.health()["authorized"]
    monkeypatch.setattr(server, "token", "z" * 43)  # the server no longer proves our token
    with pytest.raises(client.NotTheBridge):
        bridge.status("deadbeef")
    assert not bridge.verified  # and the token is not sent again before a new proof


def test_proof_is_the_bridges_and_binds_the_port(client):
    from instructir_desktop.bridge.handler import response_proof

    args = ("t" * 43, "n" * 32, 47841, 200, b"{}")
    assert client.response_proof(*args) == response_proof(*args)
    assert client.response_proof("t" * 43, "n" * 32, 47842, 200, b"{}") != response_proof(*args)


def test_a_busy_bridge_is_reported_as_busy(client, server):
    server._httpd._slots = threading.BoundedSemaphore(1)
    idle = socket.create_connection(("127.0.0.1", server.port))
    try:
        time.sleep(0.2)
        bridge = client.BridgeClient(server.url, server.token)
        with pytest.raises(client.BridgeError, match="busy") as caught:
            bridge.verify(timeout=5)
        assert not isinstance(caught.value, client.NotTheBridge) and not bridge.verified
    finally:
        idle.close()


# ---------------------------------------------------------------- when the bridge lets go


def test_a_layer_over_the_bridges_limit_is_refused_before_it_is_sent(plugin, reader):
    srv = BridgeServer(lambda pack: reader, max_body_bytes=64 << 10)
    srv.start()
    try:
        bridge = plugin.client.BridgeClient(srv.url, srv.token)
        noise = os.urandom(8 << 20)  # would reset the connection part-way if it were sent
        with pytest.raises(plugin.client.BridgeError, match="too large") as caught:
            bridge.submit(noise, "remove the noise", 1.0)
        assert caught.value.status == 413 and "is not running" not in str(caught.value)
        message = str(caught.value)
        assert "its pixels take 8 MiB and the bridge accepts up to 65,536 bytes" in message
        image = FakeImage()
        layer = make_layer(image, w=200, h=160)  # 125 KiB of pixels, noise: larger than 64 KiB
        status, error = run(plugin, image, layer)
        assert status == "execution-error" and "too large for the InstructIR bridge" in error
        assert "Select a smaller area" in error and len(image.layers) == 1
        assert srv.list_jobs()["jobs"] == []
    finally:
        srv.stop()


def _slow_bridge(reader, port: int = 0) -> tuple[BridgeServer, threading.Event]:
    started = threading.Event()

    class Slow:
        pack_id = "tiny-test"

        def describe(self):
            return reader.describe()

        def plan(self, text):
            return reader.plan(text)

        def intent(self, text):
            return reader.intent(text)

        def restore(self, image, instruction, *, strength=1.0, progress=None, cancel=None):
            started.set()
            deadline = time.monotonic() + 20
            while not cancel() and time.monotonic() < deadline:
                time.sleep(0.02)
            raise CancelledError("Cancelled.")

    srv = BridgeServer(lambda pack: Slow(), port=port)
    srv.start()
    return srv, started


def _run_in_thread(plugin, image, layer) -> dict:
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run(plugin, image, layer)))
    thread.start()
    outcome["thread"] = thread
    return outcome


def test_a_bridge_that_restarts_mid_job_is_reported_and_the_image_is_untouched(plugin, reader):
    srv, started = _slow_bridge(reader)
    port = srv.port
    image = FakeImage()
    layer = make_layer(image)
    outcome = _run_in_thread(plugin, image, layer)
    again = None
    try:
        assert started.wait(30)
        srv.stop()
        again, _ = _slow_bridge(reader, port)  # same port, same token, none of the old jobs
        outcome["thread"].join(30)
    finally:
        for s in (srv, again):
            if s is not None:
                s.stop()
    status, error = outcome["result"]
    assert status == "execution-error", error
    assert "nothing was changed" in error and "run the filter again" in error.lower()
    assert "There is no job" not in error
    assert image.layers == [layer] and image.undo_depth == 0 and image.undo_groups == 0


def test_a_job_the_bridge_no_longer_knows_is_reported(plugin, reader):
    srv, started = _slow_bridge(reader)
    image = FakeImage()
    layer = make_layer(image)
    outcome = _run_in_thread(plugin, image, layer)
    try:
        assert started.wait(30)
        with srv._lock:  # as after a restart between two polls: the job is unknown (404)
            srv._jobs.clear()
        outcome["thread"].join(30)
    finally:
        srv.stop()
    status, error = outcome["result"]
    assert status == "execution-error"
    assert error == (
        "The InstructIR bridge restarted and no longer knows this job, so nothing was changed. "
        "Run the filter again."
    )
    assert image.layers == [layer] and image.undo_groups == 0


def test_a_bridge_that_goes_away_mid_job_is_reported(plugin, reader):
    srv, started = _slow_bridge(reader)
    port = srv.port
    image = FakeImage()
    layer = make_layer(image)
    outcome = _run_in_thread(plugin, image, layer)
    try:
        assert started.wait(30)
        srv._httpd.shutdown()  # the bridge vanishes: nothing answers on its port any more
        srv._httpd.server_close()
        outcome["thread"].join(60)
    finally:
        srv.stop()
    status, error = outcome["result"]
    assert status == "execution-error"
    assert "stopped answering while it was restoring the layer, so nothing was changed" in error
    assert f"`instructir serve --port {port}`" in error and "Errno" not in error
    assert image.layers == [layer] and image.undo_groups == 0


@pytest.mark.parametrize("abandoned", [False, True])
def test_a_job_the_bridge_cancels_is_an_error_not_a_silent_cancel(plugin, reader, abandoned):
    srv, started = _slow_bridge(reader)
    image = FakeImage()
    layer = make_layer(image)
    outcome = _run_in_thread(plugin, image, layer)
    try:
        assert started.wait(30)
        (job,) = srv.list_jobs()["jobs"]
        if abandoned:  # as the lease watcher does when GIMP stops polling
            srv._jobs[job["id"]].abandoned_by_client = True
        srv.cancel_job(job["id"])  # InstructIR Desktop closing cancels jobs this way
        outcome["thread"].join(30)
    finally:
        srv.stop()
    status, error = outcome["result"]
    assert status == "execution-error" and "nothing was changed" in error
    assert ("heard nothing from GIMP" in error) == abandoned
    assert image.layers == [layer] and image.undo_groups == 0
