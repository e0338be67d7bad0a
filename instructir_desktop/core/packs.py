"""Model packs: what a pack is (manifest) and which packs exist (catalog).

A pack bundles an image network (config + weights), a text encoder id, a text head, the intent
labels, a version and the size + sha256 of every file. Manifests are JSON so that they can be
read without torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .errors import ModelCorruptError, UnknownModelError
from .network_config import OFFICIAL_7D, NetworkConfig
from .resources import resource_path

__all__ = [
    "TASKS",
    "TASK_TITLES",
    "DEFAULT_MIN_CONFIDENCE",
    "PackFile",
    "TextEncoderSpec",
    "TextEncoding",
    "RELEASE_ENCODING",
    "PackManifest",
    "catalog",
    "catalog_override",
    "with_pickled_encoder",
    "catalog_entry",
    "OFFICIAL_ID",
    "LITE_ID",
]

TASKS: tuple[str, ...] = (
    "denoise",
    "deblur",
    "derain",
    "dehaze",
    "lowlight",
    "superres",
    "enhance",
)
# Below this intent confidence an instruction is unclear: the app offers the tasks instead of
# guessing, the command line refuses it (--min-confidence). On the lite pack's held-out
# prompts 0.6 % of real instructions fall below it, and half of the unrelated ones.
DEFAULT_MIN_CONFIDENCE = 0.5
TASK_TITLES: dict[str, str] = {
    "denoise": "Denoise",
    "deblur": "Deblur",
    "derain": "Remove rain",
    "dehaze": "Dehaze",
    "lowlight": "Brighten",
    "superres": "Upscale detail",
    "enhance": "Enhance colour",
}
# A short instruction per task, used when the user picks a task from the suggestions.
TASK_PROMPTS: dict[str, str] = {
    "denoise": "Remove the noise from this photo",
    "deblur": "Remove the blur and make it sharp",
    "derain": "Remove the rain from this photo",
    "dehaze": "Remove the haze and fog",
    "lowlight": "The photo is too dark, brighten it",
    "superres": "Increase the resolution and detail",
    "enhance": "Improve the colours and contrast",
}

OFFICIAL_ID = "instructir-7d"
LITE_ID = "instructir-lite"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class PackFile:
    """One file of a pack. ``repo``/``filename`` say where the Hub has it (None: local only)."""

    role: str
    path: str
    size: int | None
    sha256: str | None
    repo: str | None = None
    filename: str | None = None
    revision: str = "main"

    def to_dict(self) -> dict:
        return {
            "role": self.role,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "repo": self.repo,
            "filename": self.filename,
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, d: dict) -> PackFile:
        return cls(
            role=str(d["role"]),
            path=str(d["path"]),
            size=None if d.get("size") is None else int(d["size"]),
            sha256=d.get("sha256"),
            repo=d.get("repo"),
            filename=d.get("filename"),
            revision=d.get("revision", "main"),
        )


@dataclass(frozen=True)
class TextEncoding:
    """How instructions become sentence features, fixed by a pack instead of read from the
    encoder folder's sentence-transformers files (``modules.json``, ``1_Pooling``), which a
    Hub repository may change after the pack was made.

    pooling: ``mean`` (over the attention mask), ``cls`` or ``max``; normalize: L2 after
    pooling; truncation and max_length: what the tokenizer is called with.
    """

    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 512
    truncation: str = "longest_first"

    def to_dict(self) -> dict:
        return {
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "truncation": self.truncation,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TextEncoding:
        pooling = str(d.get("pooling", "mean"))
        if pooling not in ("mean", "cls", "max"):
            raise ValueError(f"unknown pooling {pooling!r}")
        return cls(
            pooling=pooling,
            normalize=bool(d.get("normalize", True)),
            max_length=int(d.get("max_length", 512)),
            truncation=str(d.get("truncation", "longest_first")),
        )


# The public release's text/models.py for TaylorAI/bge-micro-v2: AutoTokenizer called with
# padding=True, truncation=True (longest_first, up to the tokenizer's model_max_length: 512
# for bge-micro-v2, also its max_position_embeddings), AutoModel forward, mean pooling over
# the attention mask, F.normalize(p=2, dim=1).
RELEASE_ENCODING = TextEncoding("mean", True, 512, "longest_first")


@dataclass(frozen=True)
class TextEncoderSpec:
    """Which frozen sentence encoder produces the 384-d text features.

    kind ``"package"``: loaded from an installed Python package (works offline);
    kind ``"hub"``: a sentence-transformers folder inside the pack (files listed as role
    ``text_encoder``), downloaded from ``id`` on the Hub. ``encoding``, when set, fixes the
    pooling, normalisation and truncation; otherwise the folder's own files decide.
    """

    id: str
    kind: str
    dim: int = 384
    package: str | None = None
    encoding: TextEncoding | None = None

    def to_dict(self) -> dict:
        d = {"id": self.id, "kind": self.kind, "dim": self.dim, "package": self.package}
        if self.encoding is not None:
            d["encoding"] = self.encoding.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TextEncoderSpec:
        encoding = d.get("encoding")
        return cls(
            id=d["id"],
            kind=d["kind"],
            dim=int(d.get("dim", 384)),
            package=d.get("package"),
            encoding=None if encoding is None else TextEncoding.from_dict(encoding),
        )


@dataclass(frozen=True)
class PackManifest:
    """Everything the app needs to know to download, verify and load a pack."""

    id: str
    name: str
    version: str
    description: str
    network: NetworkConfig
    text_encoder: TextEncoderSpec
    files: tuple[PackFile, ...]
    labels: tuple[str, ...] = TASKS
    head: dict = field(default_factory=lambda: {"in_dim": 384, "embed_dim": 256, "n_classes": 7})
    licence: str = ""
    extra: dict = field(default_factory=dict)

    def file(self, role: str) -> PackFile:
        for f in self.files:
            if f.role == role:
                return f
        raise ModelCorruptError(f"The model pack '{self.id}' has no {role} file in its manifest.")

    def files_with_role(self, role: str) -> list[PackFile]:
        return [f for f in self.files if f.role == role]

    @property
    def download_size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def to_dict(self) -> dict:
        return {
            "format": 1,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "network": self.network.to_dict(),
            "text_encoder": self.text_encoder.to_dict(),
            "head": dict(self.head),
            "labels": list(self.labels),
            "files": [f.to_dict() for f in self.files],
            "licence": self.licence,
            "extra": dict(self.extra),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> PackManifest:
        try:
            return cls(
                id=str(d["id"]),
                name=str(d.get("name", d["id"])),
                version=str(d["version"]),
                description=str(d.get("description", "")),
                network=NetworkConfig.from_dict(d["network"]),
                text_encoder=TextEncoderSpec.from_dict(d["text_encoder"]),
                files=tuple(PackFile.from_dict(f) for f in d["files"]),
                labels=tuple(d.get("labels", TASKS)),
                head=dict(d.get("head", {"in_dim": 384, "embed_dim": 256, "n_classes": 7})),
                licence=str(d.get("licence", "")),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelCorruptError(f"The model pack manifest is damaged ({exc}).") from exc

    @classmethod
    def load(cls, path: Path) -> PackManifest:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise ModelCorruptError(f"Cannot read the model pack manifest {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelCorruptError(f"The model pack manifest {path} is not a JSON object.")
        try:
            return cls.from_dict(data)
        except ModelCorruptError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise ModelCorruptError(
                f"The model pack manifest {path} is damaged ({type(exc).__name__}: {detail})."
            ) from None


ENCODER_WEIGHTS = "model.safetensors"
# What an encoder folder copied from elsewhere may hold instead: a pickle, loaded weights-only.
ENCODER_PICKLE = "pytorch_model.bin"
BGE_MICRO_REPO = "TaylorAI/bge-micro-v2"
# Everything AutoTokenizer and AutoModel read, plus the sentence-transformers files: kept so
# that the folder stays a complete sentence-transformers model, though the official pack's
# encoding ignores modules.json and 1_Pooling (TextEncoderSpec.encoding).
BGE_MICRO_FILES = (
    "config.json",
    ENCODER_WEIGHTS,
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)


def official_manifest() -> PackManifest:
    """The public InstructIR 7D release on the Hugging Face Hub."""
    repo = "marcosv/InstructIR"
    files = [
        PackFile(
            "image",
            "im_instructir-7d.pt",
            63_627_895,
            "f28d8f0f66ff57449ebe2be52241dfdd53a3dfab1003d63e65493f96ea152fd0",
            repo,
            "im_instructir-7d.pt",
        ),
        PackFile(
            "head",
            "lm_instructir-7d.pt",
            403_275,
            "b239e5d5dbc811813a90e709f9647dead0e35a96a294a7d6c5263da549016fe6",
            repo,
            "lm_instructir-7d.pt",
        ),
    ]
    # The Hub does not publish fixed hashes we could pin for the encoder's small files; their
    # sha256 is recorded at download (trust on first use) and verified from then on.
    for name in BGE_MICRO_FILES:
        files.append(
            PackFile("text_encoder", f"text_encoder/{name}", None, None, BGE_MICRO_REPO, name)
        )
    return PackManifest(
        id=OFFICIAL_ID,
        name="InstructIR 7D (official, ECCV 2024)",
        version="1.0",
        description="The paper's released model: 7 tasks, 15.8 M parameters, best quality.",
        network=OFFICIAL_7D,
        text_encoder=TextEncoderSpec(BGE_MICRO_REPO, "hub", encoding=RELEASE_ENCODING),
        files=tuple(files),
        licence="MIT (marcosv/InstructIR)",
    )


def lite_manifest() -> PackManifest | None:
    """The bundled pack trained by training/, or None when resources/ does not have it yet."""
    path = resource_path("packs", LITE_ID, MANIFEST_NAME)
    if not path.is_file():
        return None
    return PackManifest.load(path)


_OVERRIDES: dict[str, PackManifest] = {}


@contextmanager
def catalog_override(*manifests: PackManifest) -> Iterator[None]:
    """Within the block, ``catalog()`` returns these manifests in place of the entries with
    the same id: tests and scripts/gpu_check.py point the official pack at a stand-in Hub
    whose files have other hashes, while the pinned hashes of the real pack stay as they are."""
    saved = dict(_OVERRIDES)
    _OVERRIDES.update({m.id: m for m in manifests})
    try:
        yield
    finally:
        _OVERRIDES.clear()
        _OVERRIDES.update(saved)


def catalog() -> dict[str, PackManifest]:
    """All packs this version of the app knows, by id."""
    packs = {OFFICIAL_ID: official_manifest()}
    lite = lite_manifest()
    if lite is not None:
        packs[LITE_ID] = lite
    packs.update(_OVERRIDES)
    return packs


def catalog_entry(pack_id: str) -> PackManifest:
    packs = catalog()
    if pack_id not in packs:
        known = ", ".join(sorted(packs))
        raise UnknownModelError(f"Unknown model pack '{pack_id}'. Known packs: {known}.")
    return packs[pack_id]


def with_pickled_encoder(manifest: PackManifest, names: set[str]) -> PackManifest:
    """The manifest to import from files named ``names``: an encoder folder that has
    ``pytorch_model.bin`` but no ``model.safetensors`` (an older copy of the encoder) is taken
    as it is; the pickle is then only ever loaded weights-only (core.weights)."""
    files = []
    for f in manifest.files:
        if (
            f.role == "text_encoder"
            and PurePosixPath(f.path).name == ENCODER_WEIGHTS
            and not ({f.path, f.filename} & names)
            and any(PurePosixPath(n).name == ENCODER_PICKLE for n in names)
        ):
            f = replace(
                f,
                path=str(PurePosixPath(f.path).with_name(ENCODER_PICKLE)),
                filename=ENCODER_PICKLE,
                size=None,
                sha256=None,
            )
        files.append(f)
    return replace(manifest, files=tuple(files))
