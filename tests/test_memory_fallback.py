"""Out of GPU memory: the restore retries with smaller tiles, then on the CPU, and says so.

No GPU is needed: the restorer is told it runs on CUDA and its backend raises torch's
out-of-memory error for tiles above a size, as a GPU with little free memory would.
scripts/gpu_check.py makes a real GPU run out of memory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructir_desktop.core.memory_fallback import MIN_GPU_TILE, is_out_of_memory
from instructir_desktop.core.restorer import Restorer

OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


class _SmallMemory:
    """The restorer's backend, out of memory for tiles wider than ``limit`` pixels."""

    def __init__(self, backend, limit: int) -> None:
        self.inner, self.limit, self.sizes = backend, limit, []
        self.name, self.precision = backend.name, backend.precision

    def run(self, tile, e):
        self.sizes.append(tile.shape[-1])
        if tile.shape[-1] > self.limit:
            raise OOM("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner.run(tile, e)

    def run_many(self, tiles, e):
        for tile in tiles:
            yield self.run(tile, e)


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return rng.random((280, 520, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def loaded(tiny_pack):
    # fp32 whatever the run's precision policy: the CPU fallback always runs fp32, and the
    # tests compare it with this backend to 1e-5.
    return Restorer(tiny_pack, device="cpu", backend="torch", precision="fp32")


@pytest.fixture
def gpu_restorer(loaded):
    reference = loaded.backend
    loaded.device = torch.device("cuda")  # what the fallback looks at
    yield loaded, reference
    loaded.device, loaded.backend = torch.device("cpu"), reference


def test_smaller_tiles_first(gpu_restorer, photo):
    restorer, reference = gpu_restorer
    restorer.backend = _SmallMemory(reference, limit=250)
    messages = []
    out = restorer.restore(photo, "remove the noise", tile=1024,
                           progress=lambda f, m: messages.append(m))  # fmt: skip
    sizes = restorer.backend.sizes  # a failed attempt stops at its first tile
    assert min(sizes[:2]) > 250 and max(sizes[2:]) <= 250
    assert restorer.notices == [
        "Not enough CUDA memory for 1024-pixel tiles; trying 512-pixel tiles.",
        "Not enough CUDA memory for 512-pixel tiles; trying 256-pixel tiles.",
    ]
    assert all(n in messages for n in restorer.notices)
    restorer.backend = reference
    expected = restorer.restore(photo, "remove the noise", tile=256)
    assert restorer.notices == []
    np.testing.assert_array_equal(out, expected)


def test_then_the_cpu(gpu_restorer, photo):
    restorer, reference = gpu_restorer
    restorer.backend = _SmallMemory(reference, limit=0)
    out = restorer.restore(photo, "remove the noise", tile=512)
    assert restorer.notices[-1].startswith("Not enough CUDA memory even for 256-pixel tiles")
    assert "on the CPU instead" in restorer.notices[-1]
    assert len(restorer.backend.sizes) == 2  # 512 and 256 (= MIN_GPU_TILE), then the CPU
    assert MIN_GPU_TILE == 256
    restorer.backend = reference
    expected = restorer.restore(photo, "remove the noise", tile=512)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_a_cpu_out_of_memory_and_other_errors_are_not_retried(gpu_restorer, photo):
    restorer, reference = gpu_restorer
    restorer.device = torch.device("cpu")
    restorer.backend = _SmallMemory(reference, limit=0)
    with pytest.raises(OOM):
        restorer.restore(photo, "remove the noise", tile=512)
    assert len(restorer.backend.sizes) == 1

    restorer.device = torch.device("cuda")

    class Broken(_SmallMemory):
        def run(self, tile, e):
            self.sizes.append(tile.shape[-1])
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")

    restorer.backend = Broken(restorer.backend.inner, 0)
    with pytest.raises(RuntimeError, match="cuDNN"):
        restorer.restore(photo, "remove the noise", tile=512)
    assert len(restorer.backend.sizes) == 1


def test_is_out_of_memory():
    assert is_out_of_memory(OOM("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(MemoryError())
