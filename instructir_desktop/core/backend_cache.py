"""What ``backends.choose_backend`` measures once and keeps in the cache folder: how far each
reduced-precision backend is from torch fp32 (``Verdicts``), and how fast each usable backend
runs (``fastest``), per weights, machine and library versions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_write_text
from .descriptor import ModelDescriptor
from .network_graph import openvino_form_version
from .openvino_levels import LEVELS_VERSION


def state_fingerprint(net: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def openvino_version() -> str:
    try:
        import openvino

        return str(openvino.__version__)
    except (ImportError, AttributeError):
        return ""


class Verdicts:
    """How far each reduced-precision backend is from torch fp32 (dB), cached beside the
    timings: measuring it runs the reference network, which costs more than the rest of a
    warm start. ``measure(backend, reference)`` measures one."""

    def __init__(self, folder: Path, descriptor: ModelDescriptor, measure: Callable) -> None:
        self.path = folder / "backend-agreement.json"
        self.descriptor = descriptor
        self.measure = measure
        self._fingerprint: str | None = None
        self.changed = False
        try:
            known = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        self.known = known if isinstance(known, dict) else {}

    def _key(self, backend) -> str:
        if self._fingerprint is None:
            self._fingerprint = getattr(backend, "fingerprint", None) or state_fingerprint(
                self.descriptor.net
            )
        return "|".join(
            [
                self._fingerprint,
                platform.machine(),
                platform.processor() or "",
                torch.__version__,
                openvino_version(),
                openvino_form_version(),
                LEVELS_VERSION,
                backend.label,
            ]
        )

    def agreement(self, backend, reference) -> float:
        key = self._key(backend)
        value = self.known.get(key)
        if not isinstance(value, (int, float)):
            value = float(self.measure(backend, reference))
            self.known[key] = min(value, 999.0)  # identical outputs: inf is not JSON
            self.changed = True
        return float(value)

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self.known, indent=1))
        except OSError:
            pass  # a read-only cache only costs the check again next time


def fastest(
    usable: list, descriptor: ModelDescriptor, folder: Path, measure: Callable
) -> tuple[object, dict[str, float]]:
    """Time each usable backend once per pack and machine (cached; ``measure(backends)`` gives
    their seconds per megapixel); return the fastest and every timing."""
    # The OpenVINO backend already hashed the weights to name its converted model.
    fingerprint = next(
        (b.fingerprint for b in usable if hasattr(b, "fingerprint")), None
    ) or state_fingerprint(descriptor.net)
    key = "|".join(
        [
            fingerprint,
            platform.machine(),
            platform.processor() or "",
            str(os.cpu_count()),
            str(torch.get_num_threads()),
            torch.__version__,
            openvino_version(),
            openvino_form_version(),
            LEVELS_VERSION,
            *(b.label for b in usable),
            "torch-graph" if descriptor.frozen else "torch-eager",
        ]
    )
    cache = folder / "backend-speed.json"
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    timings = known.get(key)
    if not isinstance(timings, dict) or len(timings) != len(usable):
        speeds = measure(usable)
        timings = {b.label: t for b, t in zip(usable, speeds)}
        known[key] = timings
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache, json.dumps(known, indent=1))
        except OSError:
            pass  # a read-only cache only costs the timing again next time
    chosen = min(usable, key=lambda b: timings.get(b.label, float("inf")))
    return chosen, dict(timings)
