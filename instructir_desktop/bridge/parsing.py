"""Parsing a bridge request's body: a job (JSON or multipart) and the texts to interpret.

Every malformed request is refused here with an ``HTTPError`` that names the problem (400,
413 for an image too large to open, 415 for another content type), before anything is queued.
A multipart body is split in place, so the image's bytes are copied out once and the caller
can drop the body before the image is decoded.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.policy
import json
from typing import Any

from instructir_desktop.bridge.errors import HTTPError
from instructir_desktop.core.errors import ImageTooLargeError, InstructIRError
from instructir_desktop.core.images import Photo, load_image_bytes
from instructir_desktop.core.phrasing import clean_instruction

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_STEPS",
    "parse_submit_fields",
    "finish_submit",
    "parse_intent",
]

# The largest JSON body, and the largest multipart field other than the image.
MAX_JSON_BYTES = 1 << 20
MAX_STEPS = 16
_TRUE = ("1", "true", "yes", "on")

SubmitFields = tuple[dict, bytes, str]


def parse_submit_fields(content_type: str | None, body: bytearray) -> SubmitFields:
    """(fields, image bytes, name) from a JSON or multipart job request; 400 when malformed.

    Only the image's bytes are copied out of ``body``, so the caller can drop the body before
    the image is decoded."""
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return _multipart(content_type or "", body)
    if ctype not in ("application/json", "text/json"):
        raise HTTPError(415, "Send application/json or multipart/form-data.")
    fields = _json_body(body)
    raw = fields.pop("image", None)
    if not isinstance(raw, str) or not raw:
        raise HTTPError(400, "Give the image as base64 text in the 'image' field.")
    try:
        image = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, "The 'image' field is not valid base64.") from None
    return fields, image, str(fields.get("name") or "the image")


def finish_submit(
    fields: dict, image: bytes, name: str
) -> tuple[Photo, list[tuple[str, float]], str | None, float | None, bool]:
    """(photo, steps, pack, lease, as_written) from the parsed fields; 400 when malformed."""
    steps = _steps(fields)
    pack = fields.get("pack")
    if pack is not None and (not isinstance(pack, str) or not pack.strip()):
        raise HTTPError(400, "'pack' must be a model pack id such as 'instructir-7d'.")
    lease = fields.get("lease_s")
    if lease is not None and (not _is_number(lease) or not 1 <= lease <= 3600):
        raise HTTPError(400, "'lease_s' must be a number of seconds between 1 and 3600.")
    as_written = fields.get("as_written", False)
    if not isinstance(as_written, bool):
        raise HTTPError(400, "'as_written' must be true or false.")
    try:
        photo = load_image_bytes(image, name=name)
    except ImageTooLargeError as exc:
        raise HTTPError(413, str(exc)) from None
    except InstructIRError as exc:
        raise HTTPError(400, str(exc)) from None
    return photo, steps, pack, None if lease is None else float(lease), as_written


def parse_intent(body: bytes) -> tuple[list[str], str | None]:
    """(texts, pack) from a POST /intent body; 400 when malformed."""
    fields = _json_body(body)
    texts = fields.get("texts", fields.get("text"))
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or len(texts) > 64:
        raise HTTPError(400, "Give 'text' (or 'texts', at most 64) to interpret.")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise HTTPError(400, "Every text must be non-empty.")
    pack = fields.get("pack")
    return texts, pack if isinstance(pack, str) and pack else None


def _json_body(body: bytes | bytearray) -> dict:
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPError(400, f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPError(400, "The request body is JSON nested too deeply.") from None
    except ValueError:  # an integer longer than Python converts (4300 digits)
        raise HTTPError(400, "The request body has a number with too many digits.") from None
    if not isinstance(obj, dict):
        raise HTTPError(400, "The request body must be a JSON object.")
    return obj


def _multipart(content_type: str, body: bytearray) -> SubmitFields:
    """Split a multipart body in place: small fields are decoded, the image part copied once."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise HTTPError(400, "The multipart body could not be read (check the boundary).")
    delimiter = b"--" + boundary
    fields: dict[str, Any] = {}
    image, name = None, "the image"
    view = memoryview(body)
    try:
        pos = body.find(delimiter)
        parts = 0
        while pos >= 0:
            start = pos + len(delimiter)
            if body[start : start + 2] == b"--":
                break
            head_end = body.find(b"\r\n\r\n", start)
            if head_end < 0:
                break
            nxt = body.find(b"\r\n" + delimiter, head_end + 4)
            if nxt < 0:
                break
            parts += 1
            headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(
                bytes(view[start:head_end]).lstrip(b"\r\n") + b"\r\n\r\n"
            )
            field_name = headers.get_param("name", header="content-disposition")
            payload = view[head_end + 4 : nxt]
            encoding = (headers.get("Content-Transfer-Encoding") or "").strip().lower()
            if field_name == "image":
                image = bytes(payload)
                if encoding == "base64":
                    image = base64.b64decode(image)
                name = headers.get_filename() or name
            elif len(payload) > MAX_JSON_BYTES:
                raise HTTPError(400, f"The '{field_name}' field is too large.")
            else:
                _multipart_field(fields, field_name, bytes(payload))
            pos = nxt + 2
        if not parts:
            raise HTTPError(400, "The multipart body could not be read (check the boundary).")
    finally:
        view.release()
    if not image:
        raise HTTPError(400, "The multipart body has no 'image' file part.")
    return fields, image, name


def _boundary(content_type: str) -> bytes | None:
    msg = email.message.Message()
    msg["Content-Type"] = content_type
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        return None
    return boundary.encode("latin-1", "replace")


def _multipart_field(fields: dict, field_name: Any, payload: bytes) -> None:
    if field_name == "request":
        fields.update(_json_body(payload))
    elif field_name in ("instruction", "instructions"):
        fields.setdefault("instructions", []).append(payload.decode("utf-8", "replace"))
    elif field_name in ("strength", "lease_s"):
        try:
            fields[field_name] = float(payload)
        except ValueError:
            raise HTTPError(400, f"'{field_name}' must be a number.") from None
    elif field_name == "pack":
        fields["pack"] = payload.decode("utf-8", "replace")
    elif field_name == "as_written":
        fields["as_written"] = payload.decode("utf-8", "replace").strip().lower() in _TRUE


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _strength(value: Any, where: str) -> float:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise HTTPError(400, f"{where} must be a number between 0 and 1.")
    return float(value)


def _steps(fields: dict) -> list[tuple[str, float]]:
    raw = fields.get("instructions", fields.get("instruction"))
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise HTTPError(400, 'Give at least one instruction, e.g. "remove the noise".')
    if len(raw) > MAX_STEPS:
        raise HTTPError(400, f"Give at most {MAX_STEPS} instructions per job.")
    default = _strength(fields.get("strength", 1.0), "'strength'")
    steps = []
    for item in raw:
        text, strength = item, default
        if isinstance(item, dict):
            text = item.get("instruction")
            strength = _strength(item.get("strength", default), "Each step's 'strength'")
        if not isinstance(text, str) or not text.strip():
            raise HTTPError(400, "Every instruction must be non-empty text.")
        # Refused here (400), not after the photo waited in the queue: no words, too long.
        steps.append((clean_instruction(text, words=True), strength))
    return steps
