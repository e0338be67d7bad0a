"""Safe loading of state dicts: safetensors, or torch.load with weights_only=True only."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from .errors import ModelCorruptError, ModelNotInstalledError

__all__ = ["load_state_dict", "save_safetensors"]


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict on the CPU as float32, never unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotInstalledError(f"The model file {path} is missing.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        OSError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as exc:
        if "weights only load failed" in str(exc).lower():
            raise ModelCorruptError(
                f"The model file {path.name} holds Python code as well as weights (a pickle "
                "that would run code when loaded), so it was not loaded. Use the file from "
                "the model's official source, or verify the pack with `instructir models "
                "verify` and download it again."
            ) from exc
        raise ModelCorruptError(
            f"The model file {path.name} is damaged or not a model file "
            f"({exc.__class__.__name__}). "
            "Verify the pack with `instructir models verify` and download it again."
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelCorruptError(f"The model file {path.name} does not hold a plain state dict.")
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def save_safetensors(state: dict[str, torch.Tensor], path: Path, *, half: bool = False) -> None:
    """Write a state dict as safetensors (fp16 floats when ``half``), from any device."""
    from safetensors.torch import save_file

    tensors = {
        k: (
            v.detach().to("cpu").half() if half and v.is_floating_point() else v.detach().cpu()
        ).contiguous()
        for k, v in state.items()
    }
    save_file(tensors, str(path))
