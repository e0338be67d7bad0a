"""The GIMP-independent half of the InstructIR plug-in: finding and starting the bridge,
talking to it, a small PNG codec and the layer/selection arithmetic.

Runs inside GIMP's own Python (3.10+, stdlib only, no Pillow or numpy) and in the test suite,
which drives it against a real bridge and a fake ``gi.repository.Gimp``.
"""

from __future__ import annotations

import array
import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "PROCEDURE",
    "TASKS",
    "TASK_PROMPTS",
    "TASK_LABELS",
    "BridgeError",
    "BridgeNotRunning",
    "JobCancelled",
    "BridgeInfo",
    "BridgeClient",
    "find_bridge_info",
    "connect",
    "run_job",
    "layer_name",
    "understood",
    "clean_instruction",
    "intersect_rect",
    "is_high_bit_depth",
    "babl_format",
    "encode_png",
    "decode_png",
    "gegl_to_png_samples",
    "png_samples_to_gegl",
]

PROCEDURE = "python-fu-instructir"
DEFAULT_PORT = 47841
LOCATION_FILE = "bridge-location.json"
APP_NAME = "InstructIR"
LEASE_S = 20.0
MAX_NAME_CHARS = 60

# Same order and prompts as instructir_desktop.core.packs (a test keeps them equal).
TASKS = ("denoise", "deblur", "derain", "dehaze", "lowlight", "superres", "enhance")
TASK_PROMPTS = {
    "denoise": "Remove the noise from this photo",
    "deblur": "Remove the blur and make it sharp",
    "derain": "Remove the rain from this photo",
    "dehaze": "Remove the haze and fog",
    "lowlight": "The photo is too dark, brighten it",
    "superres": "Increase the resolution and detail",
    "enhance": "Improve the colours and contrast",
}
TASK_LABELS = {
    "denoise": "Noise",
    "deblur": "Blur",
    "derain": "Rain",
    "dehaze": "Haze / fog",
    "lowlight": "Too dark",
    "superres": "Low detail",
    "enhance": "Dull colours",
}

START_HINT = (
    "Start the InstructIR bridge, then run the filter again: open InstructIR Desktop, or run "
    "`instructir serve` in a terminal."
)
INSTALL_HINT = (
    "Run `instructir gimp install` (or Help → Install GIMP plug-in in InstructIR Desktop) once, "
    "then restart GIMP."
)


class BridgeError(Exception):
    """A problem the photographer must read: the message says what happened and what to do."""


class BridgeNotRunning(BridgeError):
    """Nothing answers on the bridge's address."""


class JobCancelled(BridgeError):
    """The job was cancelled (by the user, or the bridge shut down)."""


class BridgeInfo:
    """Where the bridge listens, its token and the command that starts it."""

    def __init__(self, url: str, token: str, command: list[str] | None, source: Path) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.command = command
        self.source = source

    @property
    def port(self) -> int:
        try:
            return int(self.url.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return DEFAULT_PORT

    def __repr__(self) -> str:
        return f"BridgeInfo({self.url!r}, source={str(self.source)!r})"


def default_config_dir(env: dict | None = None, platform: str | None = None) -> Path:
    """The app's config folder as platformdirs computes it (the plug-in cannot import it)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if env.get("INSTRUCTIR_CONFIG_DIR"):
        return Path(env["INSTRUCTIR_CONFIG_DIR"]).expanduser()
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(local) / APP_NAME / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / APP_NAME


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_bridge_info(plugin_dir: Path, env: dict | None = None) -> BridgeInfo | None:
    """Read the bridge file: $INSTRUCTIR_CONFIG_DIR, then the path recorded at install, then
    the platform's config folder, then the copy kept beside the plug-in (Snap/Flatpak GIMP
    may not see the user's config folder)."""
    env = os.environ if env is None else env
    location = _read_json(plugin_dir / LOCATION_FILE) or {}
    candidates = []
    if env.get("INSTRUCTIR_CONFIG_DIR"):
        candidates.append(Path(env["INSTRUCTIR_CONFIG_DIR"]).expanduser() / "bridge.json")
    if isinstance(location.get("config_file"), str):
        candidates.append(Path(location["config_file"]))
    candidates.append(default_config_dir(env) / "bridge.json")
    for path in candidates:
        info = _read_json(path)
        if info and isinstance(info.get("token"), str):
            return _info_from(info, path, fallback_command=location.get("command"))
    if isinstance(location.get("token"), str):
        return _info_from(location, plugin_dir / LOCATION_FILE, None)
    return None


def _info_from(data: dict, source: Path, fallback_command: Any) -> BridgeInfo:
    port = data.get("port") if isinstance(data.get("port"), int) else DEFAULT_PORT
    url = data.get("url") if isinstance(data.get("url"), str) else f"http://127.0.0.1:{port}"
    command = data.get("command") or fallback_command
    if not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
        command = None
    return BridgeInfo(url, data["token"], command, source)


class BridgeClient:
    """A tiny HTTP client for the bridge (urllib; loopback only)."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes, str]:
        headers = {"X-InstructIR-Token": self.token, "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        # No proxy: a proxy would see the token and cannot reach this computer's loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout or self.timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            data = exc.read()
            raise BridgeError(_error_message(exc.code, data)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BridgeNotRunning(
                f"The InstructIR bridge at {self.url} does not answer ({reason}). {START_HINT}"
            ) from None

    def _json(self, method: str, path: str, body: bytes | None = None, **kw: Any) -> dict:
        ctype = kw.pop("content_type", "application/json" if body is not None else None)
        _, data, _ = self._request(method, path, body, ctype, **kw)
        try:
            return json.loads(data)
        except ValueError:
            raise BridgeError("The InstructIR bridge sent an unreadable answer.") from None

    def health(self, timeout: float | None = None) -> dict:
        return self._json("GET", "/health", timeout=timeout)

    def submit(
        self, png: bytes, instruction: str, strength: float, lease_s: float | None = LEASE_S
    ) -> dict:
        """Send the pixels (multipart upload, no base64) and queue a job."""
        fields = {"instruction": instruction, "strength": repr(float(strength))}
        if lease_s:
            fields["lease_s"] = repr(float(lease_s))
        body, ctype = _multipart(fields, ("image", "layer.png", "image/png", png))
        return self._json("POST", "/jobs", body, content_type=ctype, timeout=max(self.timeout, 120))

    def status(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{job_id}")

    def result(self, job_id: str) -> bytes:
        _, data, _ = self._request("GET", f"/jobs/{job_id}/result?filter=none", timeout=300)
        return data

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/jobs/{job_id}/cancel", b"{}")

    def delete(self, job_id: str) -> None:
        try:
            self._request("DELETE", f"/jobs/{job_id}")
        except BridgeError:
            pass  # it expires on its own

    def intent(self, text: str, timeout: float = 2.0) -> dict:
        body = json.dumps({"text": text}).encode()
        return self._json("POST", "/intent", body, timeout=timeout)


def _error_message(status: int, data: bytes) -> str:
    try:
        message = json.loads(data).get("error") or ""
    except (ValueError, AttributeError):
        message = ""
    if status == 401:
        return f"The InstructIR bridge refused the plug-in (wrong token). {INSTALL_HINT}"
    if status == 413:
        return f"The layer is too large for the InstructIR bridge. {message}".strip()
    return message or f"The InstructIR bridge answered with error {status}."


def _multipart(fields: dict, file: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    boundary = "instructir-" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode()
            + value.encode("utf-8")
            + b"\r\n"
        )
    name, filename, ctype, data = file
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
    )
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _popen_detached(argv: list[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    kwargs: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log}
    if os.name == "nt":
        flags = 0x00000008 | 0x00000200 | 0x08000000  # DETACHED, NEW_PROCESS_GROUP, NO_WINDOW
        kwargs["creationflags"] = flags
    else:
        kwargs["start_new_session"] = True  # GIMP kills the plug-in's process group on cancel
    try:
        return subprocess.Popen(argv, **kwargs)
    finally:
        log.close()


def connect(
    info: BridgeInfo | None,
    *,
    start: bool = True,
    wait_s: float = 180.0,
    on_wait: Callable[[str], None] | None = None,
    popen: Callable[[list[str], Path], Any] = _popen_detached,
    sleep: Callable[[float], None] = time.sleep,
    log_dir: Path | None = None,
) -> BridgeClient:
    """A client for a bridge that answers with our token; starts ``instructir serve`` when
    nothing answers and the install recorded how."""
    if info is None:
        raise BridgeError(f"The plug-in cannot find the InstructIR bridge settings. {INSTALL_HINT}")
    client = BridgeClient(info.url, info.token)
    try:
        health = client.health(timeout=3.0)
    except BridgeNotRunning:
        if not start or not info.command:
            raise
        health = _start_bridge(client, info, wait_s, on_wait, popen, sleep, log_dir)
    if not health.get("authorized"):
        raise BridgeError(
            f"The InstructIR bridge refused the plug-in (wrong token). {INSTALL_HINT}"
        )
    return client


def _start_bridge(client, info, wait_s, on_wait, popen, sleep, log_dir) -> dict:
    argv = list(info.command) + ["serve", "--port", str(info.port)]
    log_path = (log_dir or info.source.parent) / "bridge-gimp.log"
    if on_wait:
        on_wait("Starting the InstructIR bridge…")
    try:
        proc = popen(argv, log_path)
    except OSError as exc:
        raise BridgeNotRunning(
            f"GIMP could not start the InstructIR bridge ({' '.join(argv)}: {exc}). {START_HINT}"
        ) from None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        sleep(0.5)
        try:
            return client.health(timeout=2.0)
        except BridgeNotRunning:
            pass
        if proc is not None and proc.poll() is not None:
            raise BridgeNotRunning(
                f"The InstructIR bridge stopped while starting{_log_tail(log_path)}. {START_HINT}"
            )
    raise BridgeNotRunning(f"The InstructIR bridge did not start in {wait_s:.0f} s. {START_HINT}")


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1]}" if lines else ""


def run_job(
    client: BridgeClient,
    png: bytes,
    instruction: str,
    strength: float,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    poll_s: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """Submit, poll until done (reporting progress), fetch the PNG and delete the job."""
    job = client.submit(png, instruction, strength)
    job_id = job["id"]
    try:
        while True:
            if should_cancel is not None and should_cancel():
                _cancel_and_wait(client, job_id, sleep)
                raise JobCancelled("Cancelled.")
            state = job.get("state")
            if on_progress is not None:
                on_progress(float(job.get("progress") or 0.0), _describe(job))
            if state == "done":
                return client.result(job_id)
            if state == "failed":
                raise BridgeError(job.get("error") or "InstructIR could not restore the layer.")
            if state == "cancelled":
                raise JobCancelled(f"The InstructIR job was cancelled ({job.get('message')}).")
            sleep(poll_s)
            job = client.status(job_id)
    finally:
        client.delete(job_id)


def _cancel_and_wait(client: BridgeClient, job_id: str, sleep: Callable[[float], None]) -> None:
    """Ask the bridge to cancel; wait briefly for it to stop (it does between tiles)."""
    job = client.cancel(job_id)
    deadline = time.monotonic() + 5.0
    while job.get("state") not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
        sleep(0.1)
        job = client.status(job_id)


def _describe(job: dict) -> str:
    if job.get("state") == "queued":
        ahead = job.get("position") or 0
        return f"InstructIR: waiting ({ahead} photo(s) ahead)" if ahead else "InstructIR: waiting"
    return f"InstructIR: {job.get('message') or job.get('state')}"


def clean_instruction(text: str | None) -> str:
    """Collapse whitespace; an empty instruction is an error the user can fix."""
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise BridgeError(
            "Type what is wrong with the photo, for example 'it is too dark' or "
            "'remove the noise', or pick one of the suggestions."
        )
    return cleaned


def understood(result: dict) -> str:
    """The dialog's line for one /intent result: "Understood as: Too dark (98%)", or the
    steps a restore applies when they differ: "Understood as: Too dark, then Noise". A
    warning from the model ("cannot darken a photo") follows on its own line."""
    steps = result.get("steps") or []
    notes = [r["note"] for r in (result, *steps) if r.get("note")]
    warning = f"\nCareful: {notes[0]}" if notes else ""
    if steps:
        names = [TASK_LABELS.get(s.get("task", ""), s.get("task", "")) for s in steps]
        return "Understood as: " + ", then ".join(names) + warning
    task = result.get("task", "")
    if not task:
        return ""
    confidence = 100 * float(result.get("confidence") or 0)
    return f"Understood as: {TASK_LABELS.get(task, task)} ({confidence:.0f}%)" + warning


def layer_name(instruction: str) -> str:
    """``InstructIR: <instruction>``, shortened with an ellipsis when long."""
    text = " ".join(instruction.split())
    if len(text) > MAX_NAME_CHARS:
        text = text[: MAX_NAME_CHARS - 1].rstrip() + "…"
    return f"InstructIR: {text}"


def intersect_rect(mask_intersect: Any) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) in drawable coordinates from ``drawable.mask_intersect()``: the whole
    drawable without a selection, the selection's bounds inside it otherwise; None when the
    selection misses the drawable."""
    values = tuple(mask_intersect)
    ok, rect = (values[0], values[1:]) if len(values) == 5 else (True, values)
    x, y, w, h = (int(v) for v in rect)
    if not ok or w <= 0 or h <= 0:
        return None
    return x, y, w, h


def is_high_bit_depth(precision: Any) -> bool:
    """True for 16/32-bit integer and half/float/double images (``Gimp.Precision``)."""
    name = str(getattr(precision, "value_name", None) or precision).upper()
    return "U8" not in name


def babl_format(high_bit_depth: bool) -> str:
    """Gamma-encoded RGBA, as the model was trained; babl converts from the image's space."""
    return "R'G'B'A u16" if high_bit_depth else "R'G'B'A u8"


def gegl_to_png_samples(data: bytes, bit_depth: int) -> bytes:
    """Gegl gives native-endian u16; PNG stores big-endian."""
    if bit_depth == 16 and sys.byteorder == "little":
        samples = array.array("H")
        samples.frombytes(data)
        samples.byteswap()
        return samples.tobytes()
    return bytes(data)


def png_samples_to_gegl(samples: bytes, bit_depth: int, channels: int, pixels: int) -> bytes:
    """PNG samples (grey, grey+alpha, RGB or RGBA) → native-endian RGBA for Gegl."""
    values = array.array("H" if bit_depth == 16 else "B")
    values.frombytes(samples)
    if bit_depth == 16 and sys.byteorder == "little":
        values.byteswap()
    if channels == 4:
        return values.tobytes()
    out = array.array(values.typecode, bytes(pixels * 4 * values.itemsize))
    for c in range(3):
        out[c::4] = values[(c if channels == 3 else 0) :: channels]
    if channels == 2:
        out[3::4] = values[1::2]
    else:
        out[3::4] = array.array(values.typecode, [(1 << bit_depth) - 1]) * pixels
    return out.tobytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(width: int, height: int, samples: bytes, bit_depth: int, channels: int = 4) -> bytes:
    """A PNG of big-endian ``samples`` (rows top to bottom), filter 0, fast deflate."""
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    stride = width * channels * bit_depth // 8
    if len(samples) != stride * height:
        raise ValueError("sample data does not match the image size")
    rows = b"".join(b"\x00" + samples[y * stride : (y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows, 1))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(width, height, bit depth, channels, big-endian samples) of a non-interlaced 8/16-bit
    grey/RGB(A) PNG. Filter-0 rows are fast; other filters work, slowly (pure Python)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise BridgeError("The InstructIR bridge did not send a PNG image.")
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise BridgeError("The PNG from the InstructIR bridge has no header.")
    width, height, depth, colour_type, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour_type)
    if channels is None or depth not in (8, 16) or interlace:
        raise BridgeError("The PNG from the InstructIR bridge is in an unexpected format.")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        raise BridgeError("The PNG from the InstructIR bridge is damaged.") from None
    bpp = channels * depth // 8
    stride = width * bpp
    if len(raw) < (stride + 1) * height:
        raise BridgeError("The PNG from the InstructIR bridge is truncated.")
    filters = raw[:: stride + 1][:height]
    if not any(filters):
        rows = b"".join(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)] for y in range(height))
        return width, height, depth, channels, rows
    return width, height, depth, channels, _unfilter(raw, height, stride, bpp)


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> bytes:
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            elif kind != 0:
                raise BridgeError("The PNG from the InstructIR bridge is damaged.")
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return bytes(out)
