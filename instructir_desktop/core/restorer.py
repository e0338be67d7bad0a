"""The Restorer: one loaded pack that turns (photo, instruction) into a restored photo.

It owns the text encoder and the image network, picks device, precision, backend and tile
size, tiles big photos with blended overlaps, reports progress per tile and can be cancelled
between tiles (nothing partial is returned).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .backends import BACKENDS, TorchBackend, choose_backend
from .descriptor import ModelDescriptor
from .errors import CancelledError, DeviceError, InstructIRError
from .images import LUMA
from .integrity import verify_pack_files
from .memory_fallback import cpu_backend, restore_with_fallback
from .packs import MANIFEST_NAME, OFFICIAL_ID, PackManifest
from .text import InstructionEncoder, Intent, clean_instruction
from .tiling import (
    ACTIVATION_FACTOR,
    DEFAULT_OVERLAP,
    QUICK_BOXES,
    QUICK_MAX_WASTE,
    blend_weights,
    plan_tiles,
    tile_size_for_budget,
)
from .weights import load_state_dict

__all__ = [
    "Restorer",
    "resolve_device",
    "available_devices",
    "BACKENDS",
    "ProgressFn",
    "CancelFn",
]

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

# Tiles larger than this gain nothing on CPUs with torch (cache) and cost memory.
CPU_MAX_TILE = 512
# OpenVINO runs a 1280² tile as fast per pixel as a 512² one, and fewer tiles compute less
# overlap (a 1 MP photo or a preview is one tile); it also keeps far fewer activations in
# memory than torch: about 2.5 float32 feature maps per stream, budgeted as 6 for two.
OPENVINO_MAX_TILE = 1280
OPENVINO_ACTIVATION_FACTOR = 6
# Mirrored context around the photo, in pixels: enough for the borders to look like the rest.
BORDER_MARGIN = 8
GPU_MAX_TILE = 2048


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.insert(0, "mps")
    return devices


def resolve_device(name: str = "auto") -> torch.device:
    """auto → CUDA, then Apple MPS, then CPU. A forced device that is missing is an error."""
    name = (name or "auto").lower()
    available = available_devices()
    if name == "auto":
        for candidate in ("cuda", "mps", "cpu"):
            if candidate in available:
                return torch.device(candidate)
    if name not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unknown device '{name}'. Choose auto, cpu, cuda or mps.")
    if name not in available:
        raise DeviceError(
            f"The device '{name}' is not available on this computer (available: "
            f"{', '.join(available)})."
        )
    return torch.device(name)


class Restorer:
    """Loads a pack once; restores photos given as float32 H x W x 3 (or x 4, alpha kept)."""

    def __init__(
        self,
        pack_dir: Path,
        *,
        device: str = "auto",
        backend: str = "auto",
        precision: str = "auto",
        memory_budget: int | None = None,
        tile: int | None = None,
        cache_folder: Path | None = None,
    ) -> None:
        self.pack_dir = Path(pack_dir)
        self.manifest = PackManifest.load(self.pack_dir / MANIFEST_NAME)
        verify_pack_files(self.manifest, self.pack_dir)  # damaged weights never load
        self.device = resolve_device(device)
        # Near-zero activations become denormal floats, 10-100x slower on x86 CPUs; flushing
        # them to zero changes outputs by under 1e-37 and made the lite pack ~20% faster.
        torch.set_flush_denormal(True)
        self.encoder = InstructionEncoder(self.manifest, self.pack_dir)
        # The sentence encoder (importing transformers, seconds) loads beside the image
        # network; most of both is in C++ code that releases the GIL.
        text_loader = _Preload(lambda: self.encoder.sentence_encoder)
        state = load_state_dict(self.pack_dir / self.manifest.file("image").path)
        self.descriptor = ModelDescriptor.from_state_dict(self.manifest.network, state, self.device)
        self.memory_budget = memory_budget or default_memory_budget(self.device)
        self.fixed_tile = tile
        # The official pack computes exactly what the release does, zero padding included;
        # other packs see mirrored context at the photo's border (no odd first row).
        self.border_margin = 0 if self.manifest.id == OFFICIAL_ID else BORDER_MARGIN
        self.notices: list[str] = []  # what the last restore did to fit in memory
        # backend_timings: seconds per megapixel of each usable backend when ``auto`` had to
        # choose by speed. ``precision`` auto follows INSTRUCTIR_PRECISION (resolve_precision).
        self.backend, self.backend_timings = choose_backend(
            self.descriptor, backend, precision, cache_folder
        )
        if isinstance(self.backend, TorchBackend):
            self.backend.warm()
        text_loader.result()

    @property
    def pack_id(self) -> str:
        return self.manifest.id

    def describe(self) -> dict:
        return {
            "pack": self.manifest.id,
            "pack_version": self.manifest.version,
            "device": self.device.type,
            "backend": self.backend.name,
            "precision": self.backend.precision,
            # OpenVINO at bf16 with the levels from a quarter of the resolution down at fp32
            # (faster on CPUs that multiply fp32 as fast as bf16; see core/openvino_levels.py).
            "lower_levels_fp32": bool(getattr(self.backend, "lower_fp32", False)),
            "tile": self.tile_size(),
            "backend_timings": dict(self.backend_timings),
        }

    def tile_size(self) -> int:
        if self.fixed_tile:
            return self.fixed_tile
        cap, factor = GPU_MAX_TILE, ACTIVATION_FACTOR
        if self.device.type == "cpu":
            cap = CPU_MAX_TILE
            if self.backend.name == "openvino":
                cap, factor = OPENVINO_MAX_TILE, OPENVINO_ACTIVATION_FACTOR
        edge = tile_size_for_budget(
            self.memory_budget,
            self.manifest.network.width,
            multiple=self.descriptor.size_multiple,
            factor=factor,
        )
        return min(cap, edge)

    def intent(self, text: str) -> Intent:
        return self.encoder.intent(text)

    def plan(self, text: str) -> list[Intent]:
        """The steps one message asks for ("too dark and noisy" → lowlight, then denoise)."""
        return self.encoder.plan(text)

    def intent_row(self, text: str) -> dict:
        """The intent as a dict, with ``steps`` when a restore applies something else."""
        return self.encoder.intent_row(text)

    def restore(
        self,
        image: np.ndarray,
        instruction: str,
        *,
        strength: float = 1.0,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        tile: int | None = None,
        quick: bool = False,
    ) -> np.ndarray:
        """Apply one instruction. ``image``: float32 H x W x 3|4 in [0, 1]. Returns a new array.

        ``quick``: a preview that may run in a standard tile shape (see QUICK_BOXES) rather
        than its own; the same for the same photo every time, but not the release's exact
        computation: exports and full renders never ask for it."""
        instruction = clean_instruction(instruction)
        if not 0.0 <= strength <= 1.0:
            raise ValueError("strength must be between 0 and 1")
        image = _check_image(image)
        rgb, alpha = image[..., :3], image[..., 3:] if image.shape[2] == 4 else None
        if strength == 0.0:
            return image.copy()
        e = self.encoder.embedding(instruction).numpy()[None].astype(np.float32)
        # Out of GPU memory: smaller tiles, then the CPU; self.notices says what was done.
        restored, self.notices = restore_with_fallback(
            lambda edge, backend: self._tiled(rgb, e, edge, progress, cancel, backend, quick),
            tile or self.tile_size(),
            device=self.device,
            multiple=self.descriptor.size_multiple,
            make_cpu_backend=lambda: cpu_backend(self.descriptor),
            progress=progress,
            cpu_tile=CPU_MAX_TILE,
        )
        if _is_grey(rgb):  # a black-and-white photo stays black and white (no colour cast)
            restored = np.repeat(restored @ LUMA[:, None], 3, axis=2)
        if strength < 1.0:
            restored = rgb + np.float32(strength) * (restored - rgb)
        if alpha is not None:
            restored = np.concatenate([restored, alpha], axis=2)
        return restored

    def _plan(self, h: int, w: int, tile: int) -> tuple[int, int, list]:
        """The border margin, the overlap and the tiles of an h x w photo."""
        m = self.descriptor.size_multiple
        margin = self.border_margin if min(h, w) > 1 else 0
        tile = max(m * 2, tile - tile % m)
        overlap = min(DEFAULT_OVERLAP, tile // 4)
        tiles = plan_tiles(h + 2 * margin, w + 2 * margin, tile, overlap, multiple=m)
        return margin, overlap, tiles

    def prepare(
        self,
        sizes: list[tuple[int, int]],
        tile: int | None = None,
        quick: list[tuple[int, int]] | tuple = (),
    ) -> None:
        """Get ready to restore photos of these (height, width) sizes, and quick renders of
        the ``quick`` sizes (first): the backend compiles the shapes their tiles will have,
        in the background (see ``OpenVINOBackend``). With no ``sizes`` (no photo open yet)
        the shapes are compiled but not run: their working memory waits for a photo."""
        m = self.descriptor.size_multiple
        tile = tile or self.tile_size()
        photo_open = bool(sizes)
        shapes = []
        for h, w in quick:
            standard = self._quick_shape(h, w, tile, self.backend)
            if standard is not None:
                shapes.append((*standard, True))
            else:
                sizes = [(h, w), *sizes]
        for h, w in sizes:
            tiles = self._plan(h, w, tile)[2]
            for t in tiles:
                th, tw = t.shape
                shapes.append((th + (-th) % m, tw + (-tw) % m, len(tiles) == 1))
        self.backend.prepare(shapes, warm=photo_open)

    def _quick_shape(self, h: int, w: int, tile: int, backend) -> tuple[int, int] | None:
        """The standard shape a quick render of an h x w photo runs in on ``backend`` (the
        smallest of QUICK_BOXES' tile shapes its own tile fits in), or None: one tile that
        fits none, several tiles, or a backend that runs any shape as it comes (torch)."""
        if not getattr(backend, "compiles_shapes", False):
            return None
        m = self.descriptor.size_multiple
        tiles = self._plan(h, w, tile)[2]
        if len(tiles) != 1:
            return None
        th, tw = tiles[0].shape
        th, tw = th + (-th) % m, tw + (-tw) % m
        fits = []
        for bh, bw in QUICK_BOXES:
            box = self._plan(bh, bw, tile)[2]
            if len(box) == 1:
                sh, sw = box[0].shape
                sh, sw = sh + (-sh) % m, sw + (-sw) % m
                if sh >= th and sw >= tw and sh * sw <= QUICK_MAX_WASTE * th * tw:
                    fits.append((sh * sw, (sh, sw)))
        return min(fits)[1] if fits else None

    def _tiled(self, rgb, e, tile, progress, cancel, backend=None, quick=False) -> np.ndarray:
        """Run the network over ``rgb`` in blended tiles. The photo is seen with
        BORDER_MARGIN pixels of mirrored context on every side, and tiles are padded to the
        size multiple with mirrored pixels too: the network's zero padding would otherwise
        make the first and last rows and columns differ from their neighbours. A ``quick``
        render may run in a larger standard shape, mirrored pixels around the photo."""
        backend = backend or self.backend
        h, w, _ = rgb.shape
        m = self.descriptor.size_multiple
        margin, overlap, tiles = self._plan(h, w, tile)
        hp, wp = h + 2 * margin, w + 2 * margin
        single = len(tiles) == 1
        standard = self._quick_shape(h, w, tile, backend) if quick else None
        out = np.zeros((hp, wp, 3), np.float32)
        weight = None if single else np.zeros((hp, wp, 1), np.float32)

        def patches():
            for t in tiles:
                if cancel is not None and cancel():
                    raise CancelledError("Cancelled.")
                th, tw = t.shape
                if standard is not None:  # one tile, in the standard shape
                    rows = _mirror(np.arange(standard[0]) - margin, h)
                    cols = _mirror(np.arange(standard[1]) - margin, w)
                    patch = rgb[rows[:, None], cols[None, :]].transpose(2, 0, 1)
                    yield np.ascontiguousarray(patch[None], dtype=np.float32)
                    continue
                if not margin:  # the release's computation: zeros right and bottom
                    patch = np.zeros((1, 3, th + (-th) % m, tw + (-tw) % m), np.float32)
                    patch[0, :, :th, :tw] = rgb[t.y0 : t.y1, t.x0 : t.x1].transpose(2, 0, 1)
                    yield patch
                    continue
                rows = _mirror(np.arange(t.y0, t.y0 + th + (-th) % m) - margin, h)
                cols = _mirror(np.arange(t.x0, t.x0 + tw + (-tw) % m) - margin, w)
                patch = rgb[rows[:, None], cols[None, :]].transpose(2, 0, 1)
                yield np.ascontiguousarray(patch[None], dtype=np.float32)

        if single:  # one tile (a small photo, a preview): the lowest-latency path
            results = (backend.run(patch, e) for patch in patches())
        else:
            results = backend.run_many(patches(), e)
        # Results drive the loop: the backend's generator runs to its end (its clean-up
        # after the last tile included).
        for n, result in enumerate(results):
            t = tiles[n]
            th, tw = t.shape
            result = result[0, :, :th, :tw].transpose(1, 2, 0)
            if single:
                out[t.y0 : t.y1, t.x0 : t.x1] = result
            else:
                wgt = blend_weights(t, hp, wp, overlap)[..., None]
                out[t.y0 : t.y1, t.x0 : t.x1] += result * wgt
                weight[t.y0 : t.y1, t.x0 : t.x1] += wgt
            if progress is not None:
                progress((n + 1) / len(tiles), f"tile {n + 1}/{len(tiles)}")
        if cancel is not None and cancel():
            raise CancelledError("Cancelled.")
        if not single:
            np.divide(out, weight, out=out)
        return np.clip(out[margin : margin + h, margin : margin + w], 0.0, 1.0)


class _Preload:
    """Runs ``load`` on a helper thread; ``result()`` waits and re-raises its error."""

    def __init__(self, load: Callable[[], object]) -> None:
        self._error: BaseException | None = None

        def run() -> None:
            try:
                load()
            except BaseException as exc:  # noqa: BLE001 - handed to result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="instructir-text-load", daemon=True)
        self._thread.start()

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _mirror(index: np.ndarray, length: int) -> np.ndarray:
    """Indices outside 0..length-1 reflected back inside (edge pixel not repeated)."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return np.where(index >= length, period - index, index)


def _is_grey(rgb: np.ndarray) -> bool:
    """Every pixel has R = G = B (a greyscale photo opened as RGB)."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InstructIRError("The image must be an H x W x 3 (or 4) array.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InstructIRError("The image is empty.")
    return np.ascontiguousarray(image, dtype=np.float32)


def default_memory_budget(device: torch.device) -> int:
    """Bytes of activations one tile may use: a share of free GPU memory, or of system RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    from .memory import memory_budget

    # A fifth of the process's memory budget (RAM share, container and `ulimit -v` limits,
    # INSTRUCTIR_MEMORY_BUDGET_MB), at most 1.5 GB: tiles beyond that gain nothing on a CPU.
    return int(min(1.5 * (1 << 30), memory_budget() * 0.2))
