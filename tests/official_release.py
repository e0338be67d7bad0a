"""Stand-ins for the files of the official InstructIR 7D release, and an independent statement
of how the release computes an instruction's embedding.

The files have the release's names, formats, keys and shapes but seeded random values:
``im_instructir-7d.pt`` and ``lm_instructir-7d.pt`` are plain state dicts saved with
``torch.save``; the encoder is a small BERT in the layout TaylorAI/bge-micro-v2 serves
(config.json, fp16 model.safetensors, a WordPiece tokenizer, the sentence-transformers files).
Its ``modules.json`` and ``1_Pooling/config.json`` can be set to say anything, as the Hub's
have over time, to show that the official pack does not follow them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from instructir_desktop.core.network import TextHead, network_from_config
from instructir_desktop.core.network_config import OFFICIAL_7D

__all__ = [
    "ENCODER_REPO",
    "RELEASE_REPO",
    "image_state",
    "head_state",
    "state_bytes",
    "write_encoder",
    "set_sentence_files",
    "release_features",
    "release_embedding",
]

RELEASE_REPO = "marcosv/InstructIR"
ENCODER_REPO = "TaylorAI/bge-micro-v2"

# Today's modules.json on the Hub (229 bytes): Transformer + Pooling, no Normalize.
MODULES_WITHOUT_NORMALIZE = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]
MODULES_WITH_NORMALIZE = [
    *MODULES_WITHOUT_NORMALIZE,
    {
        "idx": 2,
        "name": "2",
        "path": "2_Normalize",
        "type": "sentence_transformers.models.Normalize",
    },
]
_SPECIAL_NAMES = ("cls_token", "mask_token", "pad_token", "sep_token", "unk_token")
_WORDS = (
    "the a it is too very this photo image picture please make remove fix noise noisy grain "
    "grainy dark darker bright brighten light blur blurry sharp sharpen rain haze fog foggy "
    "hazy colour color colours contrast enhance upscale resolution detail low and then my i "
    "can you of to in was with"
).split()


def image_state(seed: int = 7) -> dict[str, torch.Tensor]:
    """The official 7D image network's keys and shapes, seeded random values (the ICB and
    NAFBlock beta/gamma too, so that no block is an identity)."""
    torch.manual_seed(seed)
    net = network_from_config(OFFICIAL_7D)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")) and p.dim() == 4:
                p.normal_(0.0, 0.1)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def head_state(seed: int = 8) -> dict[str, torch.Tensor]:
    """The release's LM head: fc1 [256, 384], fc2 [7, 256] and biases, seeded random."""
    torch.manual_seed(seed)
    head = TextHead(384, 256, 7)
    with torch.no_grad():
        head.fc2.weight.mul_(200.0)  # confident logits, as a trained head gives
    return {k: v.detach().clone() for k, v in head.state_dict().items()}


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A state dict as ``torch.save`` writes it (the release's .pt format)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def write_encoder(
    folder: Path,
    *,
    seed: int = 3,
    pooling: str = "cls",
    normalize_module: bool = False,
    weights: str = "safetensors",
) -> Path:
    """A 3-layer, 384-wide BERT in bge-micro-v2's folder layout. ``pooling`` and
    ``normalize_module`` set what its sentence-transformers files claim; ``weights`` is
    ``safetensors`` (the Hub's model.safetensors, fp16) or ``bin`` (pytorch_model.bin)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = [*specials, *letters, *(f"##{c}" for c in letters), *_WORDS, *"!?.,'"]
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    tokenizer = BertTokenizerFast(vocab=ids, do_lower_case=True)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(str(folder))
    (folder / "vocab.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=384,
        num_hidden_layers=3,
        num_attention_heads=12,
        intermediate_size=512,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=True).eval().half()
    if weights == "safetensors":
        model.save_pretrained(str(folder), safe_serialization=True)
    else:
        model.config.save_pretrained(str(folder))
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({t: f"[{t[:-6].upper()}]" for t in _SPECIAL_NAMES}), encoding="utf-8"
    )
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 512, "do_lower_case": False}), encoding="utf-8"
    )
    return set_sentence_files(folder, pooling=pooling, normalize_module=normalize_module)


def set_sentence_files(folder: Path, *, pooling: str, normalize_module: bool) -> Path:
    """Rewrite what the folder's sentence-transformers files say: its modules.json (with or
    without a Normalize module) and the pooling in 1_Pooling/config.json."""
    modules = MODULES_WITH_NORMALIZE if normalize_module else MODULES_WITHOUT_NORMALIZE
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    modes = {m: pooling == m for m in ("cls", "mean", "max")}
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 384,
                "pooling_mode_cls_token": modes["cls"],
                "pooling_mode_mean_tokens": modes["mean"],
                "pooling_mode_max_tokens": modes["max"],
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        ),
        encoding="utf-8",
    )
    return folder


def release_features(folder: Path, texts: list[str]) -> torch.Tensor:
    """The release's text/models.py LanguageModel.forward for bge-micro-v2, step by step:
    AutoTokenizer(padding=True, truncation=True), AutoModel forward (float32, the default of
    the transformers the release ran on), mean pooling over the attention mask,
    F.normalize(p=2, dim=1). It reads none of the sentence-transformers files."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    inputs = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    tokens = outputs[0]
    mask = inputs["attention_mask"].unsqueeze(-1).expand(tokens.size()).float()
    pooled = torch.sum(tokens * mask, 1) / torch.clamp(mask.sum(1), min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def release_embedding(
    folder: Path, head: dict[str, torch.Tensor], text: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(e, probabilities) as the release computes them: LMHead on the features, softmax."""
    fc1 = torch.nn.functional.linear(release_features(folder, [text]), head["fc1.weight"],
                                     head["fc1.bias"])  # fmt: skip
    e = torch.nn.functional.normalize(fc1, p=2, dim=1)
    logits = torch.nn.functional.linear(e, head["fc2.weight"], head["fc2.bias"])
    return e[0], torch.softmax(logits[0], dim=0)
