"""What a restore does when the GPU runs out of memory: smaller tiles, then the CPU.

A tile size is chosen from the free GPU memory when the model loads, but other programs
(a browser, a game, a second model) take memory at any time. Rather than failing the edit,
the restore is tried again with tiles half as wide, down to MIN_GPU_TILE, and then once on
the CPU with the same weights. Each step is reported in a sentence through the progress
callback and kept in the returned notices. A CPU that runs out of memory is not retried
here: the job reports it (core.jobs.OUT_OF_MEMORY).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["MIN_GPU_TILE", "is_out_of_memory", "restore_with_fallback", "cpu_backend"]

# Below this edge, tiles spend more time on their overlaps than on the photo; the CPU,
# with the whole system memory, is then the better place to run.
MIN_GPU_TILE = 256

TiledRun = Callable[[int, object], np.ndarray]  # (tile edge, backend or None) -> result


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the errors torch raises when a device has no memory left (CUDA, MPS)."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":  # untested: no Apple GPU is available to the project's CI
        empty = getattr(getattr(torch, "mps", None), "empty_cache", None)
        if empty is not None:
            empty()


def cpu_backend(descriptor):
    """A float32 torch backend on the CPU with the same weights as ``descriptor``. The
    weights are copied tensor by tensor to host memory, never duplicated on the device."""
    from .backends import TorchBackend
    from .descriptor import ModelDescriptor
    from .network import network_from_config

    net = network_from_config(descriptor.config)
    net.load_state_dict({k: v.detach().to("cpu", torch.float32)
                         for k, v in descriptor.net.state_dict().items()})  # fmt: skip
    return TorchBackend(ModelDescriptor.wrap(net, "cpu"))


def restore_with_fallback(
    run: TiledRun,
    tile: int,
    *,
    device: torch.device,
    multiple: int,
    make_cpu_backend: Callable[[], object],
    progress: Callable[[float, str], None] | None = None,
    cpu_tile: int = 512,
) -> tuple[np.ndarray, list[str]]:
    """``run(tile, None)`` on the restorer's own backend; on a GPU out-of-memory error,
    again with half the tile edge (a multiple of ``multiple``) while it stays at least
    MIN_GPU_TILE, then ``run(CPU tile, make_cpu_backend())``. Returns the result and the
    sentences that say what was done."""
    notices: list[str] = []

    def say(message: str) -> None:
        notices.append(message)
        if progress is not None:
            progress(0.0, message)

    while True:
        try:
            return run(tile, None), notices
        except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
            if device.type == "cpu" or not is_out_of_memory(exc):
                raise
        _free_device_memory(device)
        smaller = (tile // 2) - (tile // 2) % multiple
        if smaller < MIN_GPU_TILE:
            break
        say(
            f"Not enough {device.type.upper()} memory for {tile}-pixel tiles; "
            f"trying {smaller}-pixel tiles."
        )
        tile = smaller
    say(
        f"Not enough {device.type.upper()} memory even for {tile}-pixel tiles; this photo "
        f"is restored on the CPU instead (slower)."
    )
    return run(cpu_tile, make_cpu_backend()), notices
