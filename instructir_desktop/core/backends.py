"""Inference backends for one padded tile: torch (always works) and OpenVINO (optional, CPU).

A backend takes a tile already padded to the network's size multiple and returns the restored
tile (float32, clamped). OpenVINO gets the network converted once per pack and cached on disk,
and one compiled model per tile shape.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .descriptor import ModelDescriptor, PaddedNet, psnr

__all__ = [
    "TorchBackend",
    "OpenVINOBackend",
    "openvino_available",
    "cpu_supports_bf16",
    "MIN_PSNR_DB",
    "agrees_with_fp32",
    "seconds_per_megapixel",
    "state_fingerprint",
]

# Reduced precision is used only where the output stays this close to float32.
MIN_PSNR_DB = 45.0


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class TorchBackend:
    name = "torch"

    def __init__(self, descriptor: ModelDescriptor, dtype: torch.dtype = torch.float32) -> None:
        self.descriptor = descriptor
        self.dtype = dtype

    @property
    def precision(self) -> str:
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def warm(self) -> None:
        """Trace and optimise the frozen fp32 graph now, while the model loads, instead of
        during the first photo (about 1.5 s for the lite pack, 3.5 s for the official one)."""
        d = self.descriptor
        if not (d.frozen and self.dtype == torch.float32):
            return
        side = 2 * d.size_multiple
        x = torch.full((1, 3, side, side), 0.5)
        e = torch.nn.functional.normalize(torch.ones(1, d.config.textdim), dim=1)
        for _ in range(2):  # TorchScript profiles the first run and optimises the second
            d(x, e)

    def run(self, tile: np.ndarray, e: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(tile))
        out = self.descriptor(x, torch.from_numpy(e), dtype=self.dtype)
        return out.cpu().numpy()

    def run_many(self, tiles: Iterable[np.ndarray], e: np.ndarray) -> Iterator[np.ndarray]:
        """Results in order. torch already spreads one tile over every core."""
        for tile in tiles:
            yield self.run(tile, e)


def state_fingerprint(net: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class OpenVINOBackend:
    """OpenVINO on the CPU. Converted IR cached in ``cache_folder``; compiled per tile shape."""

    name = "openvino"

    def __init__(
        self, descriptor: ModelDescriptor, cache_folder: Path, precision: str = "fp32"
    ) -> None:
        import openvino as ov

        self._ov = ov
        self.core = ov.Core()
        self.precision = precision
        self.descriptor = descriptor
        cache_folder = Path(cache_folder)
        cache_folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = state_fingerprint(descriptor.net)
        xml = cache_folder / f"instructir-{self.fingerprint}.xml"
        if not xml.is_file():
            self._convert(xml)
        self._xml = xml
        self._compiled: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()

    def _convert(self, xml: Path) -> None:
        ov = self._ov
        net = self.descriptor.net
        textdim = net.config.textdim
        m = net.size_multiple
        wrapper = PaddedNet(net).eval()
        example = (
            torch.rand(1, 3, 4 * m, 4 * m).contiguous(memory_format=torch.channels_last),
            torch.nn.functional.normalize(torch.randn(1, textdim), dim=1),
        )
        with torch.no_grad():
            model = ov.convert_model(
                wrapper,
                example_input=example,
                input=[ov.PartialShape([1, 3, -1, -1]), ov.PartialShape([1, textdim])],
            )
        tmp = xml.with_name(xml.stem + ".tmp.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        tmp.replace(xml)

    def _compiled_for(self, h: int, w: int, mode: str = "LATENCY"):
        with self._lock:
            compiled = self._compiled.get((h, w, mode))
            if compiled is None:
                model = self.core.read_model(str(self._xml))
                model.reshape({0: [1, 3, h, w], 1: [1, self.descriptor.net.config.textdim]})
                hint = "bf16" if self.precision == "bf16" else "f32"
                config = {
                    "INFERENCE_PRECISION_HINT": hint,
                    "PERFORMANCE_HINT": mode,
                    "CPU_DENORMALS_OPTIMIZATION": "YES",  # as torch.set_flush_denormal
                }
                compiled = self.core.compile_model(model, "CPU", config)
                self._compiled[(h, w, mode)] = compiled
            return compiled

    def run(self, tile: np.ndarray, e: np.ndarray) -> np.ndarray:
        compiled = self._compiled_for(tile.shape[2], tile.shape[3])
        request = compiled.create_infer_request()
        request.infer([np.ascontiguousarray(tile, np.float32), np.ascontiguousarray(e, np.float32)])
        return self._output(request)

    @staticmethod
    def _output(request) -> np.ndarray:
        return np.clip(request.get_output_tensor(0).data, 0.0, 1.0).astype(np.float32, copy=True)

    def run_many(self, tiles: Iterable[np.ndarray], e: np.ndarray) -> Iterator[np.ndarray]:
        """Results in order, several tiles in flight at once.

        OpenVINO's throughput mode runs one stream per core group; on a small CPU that beats
        spreading each tile over every core (about 10% on 2 cores for the official network),
        because tiles are independent. Tiles are pulled from ``tiles`` lazily, so a caller
        that raises from inside it (cancel) stops after the tiles already in flight.
        """
        e = np.ascontiguousarray(e, np.float32)
        pending: deque = deque()
        try:
            for tile in tiles:
                tile = np.ascontiguousarray(tile, np.float32)
                compiled = self._compiled_for(tile.shape[2], tile.shape[3], "THROUGHPUT")
                request = compiled.create_infer_request()
                request.start_async([tile, e])
                pending.append(request)
                limit = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
                while len(pending) >= max(1, limit):
                    done = pending.popleft()
                    done.wait()
                    yield self._output(done)
            while pending:
                done = pending.popleft()
                done.wait()
                yield self._output(done)
        finally:
            for request in pending:  # abandoned (cancel): let them finish before freeing
                request.wait()


def _calibration(size: int, textdim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed smooth + textured tile (1 x 3 x size x size) and a unit text embedding."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([xx, yy, 0.5 * (xx + yy)])[None]
    tile = np.clip(base + 0.1 * rng.standard_normal(base.shape).astype(np.float32), 0, 1)
    e = rng.standard_normal((1, textdim)).astype(np.float32)
    e /= np.linalg.norm(e)
    return tile, e


def agrees_with_fp32(backend, reference: TorchBackend, size: int = 128, seed: int = 0) -> float:
    """PSNR of ``backend`` against torch fp32 on a fixed smooth + textured calibration tile."""
    tile, e = _calibration(size, reference.descriptor.net.config.textdim, seed)
    return psnr(backend.run(tile, e), reference.run(tile, e))


def _run_batch(backend, batch: list[np.ndarray], e: np.ndarray) -> float:
    t0 = time.perf_counter()
    for _ in backend.run_many(batch, e):
        pass
    return time.perf_counter() - t0


def seconds_per_megapixel(
    backends: list, size: int = 256, tiles: int = 4, rounds: int = 3
) -> list[float]:
    """Measured speed of each backend the way the Restorer drives it: a batch of tiles through
    ``run_many``, after one warm-up pass each (which pays any compilation). The backends take
    turns round by round, so a burst of load from another program hits them alike; each
    keeps its best round."""
    if not backends:
        return []
    tile, e = _calibration(size, backends[0].descriptor.net.config.textdim, 1)
    batch = [tile] * tiles
    for backend in backends:
        _run_batch(backend, batch, e)
    best = [float("inf")] * len(backends)
    for r in range(rounds):
        order = range(len(backends)) if r % 2 == 0 else reversed(range(len(backends)))
        for i in order:
            best[i] = min(best[i], _run_batch(backends[i], batch, e))
    return [b / (tiles * size * size / 1e6) for b in best]
