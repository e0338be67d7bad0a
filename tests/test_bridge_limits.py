"""The bridge under hostile or heavy use, over real HTTP on 127.0.0.1: answers prove the
token, the Host header names the loopback port, connections and bodies are bounded, and a
crash leaves no stale "running" file (tests/test_bridge.py has jobs, tokens and cancel)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import test_bridge

from instructir_desktop.bridge.info import read_bridge_info
from instructir_desktop.bridge.server import BridgeServer

# The helpers and the running bridge of tests/test_bridge.py.
server = test_bridge.server
call = test_bridge.call
wait = test_bridge.wait
make_photo = test_bridge.make_photo
png_bytes = test_bridge.png_bytes
INSTRUCTION = test_bridge.INSTRUCTION


def _multipart_body(fields: dict, png: bytes, boundary: str = "b0undary") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_multipart_as_written_field(server):
    body, ctype = _multipart_body(
        {"instruction": INSTRUCTION, "as_written": "true"}, png_bytes(make_photo(seed=9))
    )
    status, _, data = call(server, "POST", "/jobs", body, {"Content-Type": ctype})
    assert status == 202, data
    assert wait(server, json.loads(data)["id"])["state"] == "done"
    body, ctype = _multipart_body({"instruction": INSTRUCTION}, png_bytes(make_photo(seed=9)))
    job = json.loads(call(server, "POST", "/jobs", body, {"Content-Type": ctype})[2])
    assert wait(server, job["id"])["error_type"] == "UnclearInstructionError"
    image = base64.b64encode(png_bytes(make_photo(8, 8))).decode()
    bad = {"image": image, "instruction": INSTRUCTION, "as_written": "yes"}
    status, _, data = call(server, "POST", "/jobs", bad)
    assert status == 400 and "as_written" in json.loads(data)["error"]


def test_answers_carry_a_proof_of_the_token(server):
    from instructir_desktop.bridge.handler import response_proof

    nonce = "n" * 32
    for token in (None, True):  # the proof comes without sending the token
        status, headers, data = call(
            server, "GET", "/health", headers={"X-InstructIR-Nonce": nonce}, token=token
        )
        proof = response_proof(server.token, nonce, server.port, status, data)
        assert headers["X-InstructIR-Proof"] == proof
    status, headers, data = call(server, "GET", "/nope", headers={"X-InstructIR-Nonce": nonce})
    assert status == 404
    assert headers["X-InstructIR-Proof"] == response_proof(
        server.token, nonce, server.port, 404, data
    )
    assert "X-InstructIR-Proof" not in call(server, "GET", "/health")[1]
    other = response_proof("x" * 43, nonce, server.port, 200, b"{}")
    assert other != response_proof(server.token, nonce, server.port, 200, b"{}")


def test_host_header_must_name_the_loopback_port(server):
    for host in (f"evil.example:{server.port}", "127.0.0.1:1", "localhost"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/health", headers={"Host": host})
        resp = conn.getresponse()
        assert resp.status == 403 and "127.0.0.1" in json.loads(resp.read())["error"]
        conn.close()
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/health", headers={"Host": host})
        assert conn.getresponse().status == 200
        conn.close()


def test_connections_are_bounded_and_fifty_parallel_submissions_get_answers(server):
    assert server._httpd.request_queue_size >= 64
    body = {"image": base64.b64encode(png_bytes(make_photo(8, 8))).decode(), "instruction": "x"}
    statuses, errors = [], []

    def one() -> None:
        try:
            statuses.append(call(server, "POST", "/jobs", body)[0])
        except OSError as exc:  # a reset or refused connection
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(statuses) == 50
    assert set(statuses) <= {202, 503} and 202 in statuses

    # The answers can reach the clients before their handler threads give the slots back; a
    # thread still running would release into the smaller semaphore below.
    slots, deadline = server._httpd._slots, time.monotonic() + 10
    while slots._value != slots._initial_value and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slots._value == slots._initial_value
    server._httpd._slots = threading.BoundedSemaphore(2)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        status, _, data = call(server, "GET", "/health", timeout=5)
        assert status == 503 and "busy" in json.loads(data)["error"]
        assert time.monotonic() - t0 < 2
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 30  # idle connections time out; the slots come back
    while call(server, "GET", "/health")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert call(server, "GET", "/health")[0] == 200


def test_a_large_multipart_body_is_held_once(monkeypatch):
    import tracemalloc

    from instructir_desktop.bridge import parsing

    png = png_bytes(make_photo(8, 8))
    pad = b"x" * (32 << 20)  # 32 MiB image part: PIL rejects it, after the split
    body, ctype = _multipart_body({"instruction": INSTRUCTION}, png + pad)
    buffer = bytearray(body)
    del body
    tracemalloc.start()
    try:
        fields, image, _ = parsing.parse_submit_fields(ctype, buffer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image == png + pad and fields["instructions"] == [INSTRUCTION]
    assert peak < 1.2 * len(buffer)  # the image part copied once, nothing else of that size


def test_bridge_file_says_not_running_after_a_crash(tiny_pack, tmp_path):
    path = tmp_path / "cfg" / "bridge.json"
    code = (
        "import sys, time\n"
        "from instructir_desktop.bridge.server import BridgeServer\n"
        f"srv = BridgeServer(lambda p: None, token_file={str(path)!r})\n"
        "srv.start()\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        info = read_bridge_info(path)
        assert info["running"] and info["pid"] == proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert json.loads(path.read_text())["running"] is True  # what the crash left behind
        info = read_bridge_info(path)
        assert info["running"] is False and info["pid"] is None
    finally:
        proc.kill()
        proc.stdout.close()
    srv = BridgeServer(lambda p: None, token_file=path)
    srv.start()  # a starting bridge rewrites it
    try:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        srv.stop()


def _post_raw(server, path: str, body: bytes, ctype: str = "application/json"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", path, body, {"X-InstructIR-Token": server.token, "Content-Type": ctype})
    resp = conn.getresponse()
    answer = resp.status, json.loads(resp.read())
    conn.close()
    return answer


def test_hostile_json_is_a_bad_request_not_an_internal_error(server):
    nested = b"[" * 100_000 + b"]" * 100_000
    status, answer = _post_raw(server, "/jobs", nested)
    assert status == 400 and answer["error"] == "The request body is JSON nested too deeply."
    long_number = b'{"text": "x", "pack": ' + b"9" * 5000 + b"}"
    status, answer = _post_raw(server, "/intent", long_number)
    assert status == 400 and "too many digits" in answer["error"]
    assert "sys." not in answer["error"]
    assert call(server, "GET", "/health")[0] == 200


def test_an_instruction_without_words_or_too_long_is_refused_before_it_queues(server):
    image = base64.b64encode(png_bytes(make_photo())).decode()
    for text, words in (("🙂🙂", "has no words"), ("x " * 600, "at most 1000 characters")):
        body = {"image": image, "instruction": text, "as_written": True}
        status, _, data = call(server, "POST", "/jobs", body)
        assert status == 400 and words in json.loads(data)["error"], data
    assert server.list_jobs()["jobs"] == []


def _job_head(server, length: int) -> bytes:
    return (
        f"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"X-InstructIR-Token: {server.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_cut_off_or_stalled_upload_is_answered(server, monkeypatch):
    from instructir_desktop.bridge.handler import BridgeRequestHandler

    body = json.dumps({"image": "A" * 40_000, "instruction": INSTRUCTION}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_job_head(server, len(body)) + body[:10_000])
        sock.shutdown(socket.SHUT_WR)  # the client gave up half-way but still listens
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 400") and b"10,000 of 40," in answer
    assert b"cut off" in answer

    monkeypatch.setattr(BridgeRequestHandler, "timeout", 1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_job_head(server, len(body)) + body[:500])  # then silence
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 408") and b"stalled for 1 s" in answer
    assert server.list_jobs()["jobs"] == [] and call(server, "GET", "/health")[0] == 200


def test_protocol_errors_and_other_methods_name_the_problem(server):
    status, _, data = call(server, "GET", "/jobs/" + "a" * 70_000)
    assert status == 414 and json.loads(data)["error"] == "Request-URI Too Long"
    status, headers, data = call(server, "HEAD", "/health")
    assert status == 200 and data == b"" and int(headers["Content-Length"]) > 0
    for method, path in (("PATCH", "/jobs"), ("OPTIONS", "/health")):
        status, _, data = call(server, method, path)
        assert status == 405 and json.loads(data)["error"] == f"{method} is not allowed on {path}."


def test_the_public_health_states_the_upload_limit(server):
    status, _, data = call(server, "GET", "/health", token=False)
    health = json.loads(data)
    assert status == 200 and not health["authorized"]
    assert health["max_body_bytes"] == server.max_body_bytes


def test_a_cancelled_jobs_result_says_it_was_cancelled(tiny_restorer):
    slow = test_bridge.SlowRestorer(tiny_restorer)
    srv = BridgeServer(lambda pack: slow)
    srv.start()
    try:
        running = test_bridge.submit(srv, make_photo())
        queued = test_bridge.submit(srv, make_photo(seed=1))
        assert slow.started.wait(30)
        status, _, data = call(srv, "GET", f"/jobs/{running}/result")
        assert status == 409 and "running; its result is not ready yet" in json.loads(data)["error"]
        call(srv, "POST", f"/jobs/{queued}/cancel", b"{}")
        status, _, data = call(srv, "GET", f"/jobs/{queued}/result")
        assert status == 409 and json.loads(data)["error"] == (
            "The job was cancelled, so it has no result."
        )
        call(srv, "POST", f"/jobs/{running}/cancel", b"{}")
    finally:
        srv.stop()


def _drip(port: int, answers: list) -> None:
    """A client that sends a request's head one byte every 0.2 s (each read by the bridge
    waits far less than its per-read timeout) and keeps the answer it gets."""
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 200
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(0.2)
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            sock.settimeout(5)
            answers.append((time.monotonic() - t0, data + _read_all(sock)))
            return
    answers.append((time.monotonic() - t0, b""))


def test_a_request_head_dripped_byte_by_byte_gets_408_and_frees_its_slot(server):
    server.head_timeout_s = 1.0
    server._httpd._slots = threading.BoundedSemaphore(2)
    answers: list = []
    drippers = [threading.Thread(target=_drip, args=(server.port, answers)) for _ in range(2)]
    for t in drippers:
        t.start()
    time.sleep(0.4)
    status, _, data = call(server, "GET", "/health", timeout=5)
    assert status == 503 and "busy" in json.loads(data)["error"]  # both slots are held
    for t in drippers:
        t.join(10)
    assert len(answers) == 2
    for seconds, answer in answers:
        assert answer.startswith(b"HTTP/1.0 408") and b"within 1 s" in answer, answer
        assert 0.9 < seconds < 3
    deadline = time.monotonic() + 5
    while call(server, "GET", "/health")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert call(server, "GET", "/health")[0] == 200

    # A connection that sends nothing is closed at the deadline without an answer.
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
        assert idle.recv(4096) == b""
    assert time.monotonic() - t0 < 3

    # A prompt client is unaffected, and a body may take longer than the head's deadline.
    body = json.dumps({"text": INSTRUCTION}).encode()
    head = (
        f"POST /intent HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"X-InstructIR-Token: {server.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[:5])
        time.sleep(1.5)
        sock.sendall(body[5:])
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 200"), answer
